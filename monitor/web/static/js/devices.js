// Devices and their points, grouped by area: each device's state, last error, latency and
// the age of its data; each point's value as people say it, linking to its trend.
import {enc, html, show, time} from "./dom.js";
import {S} from "./state.js";
import {areaName, t} from "./words.js";

const point = p => html`<a href="#/point/${enc(p.id)}"><span>${p.label || p.key}</span>
  <b class="q-${p.quality || ""}">${p.display}${p.quality && p.quality !== "good"
    ? html` <small>(${p.quality_label})</small>` : ""}</b></a>`;

const device = d => html`<article class="card device" id="device-${d.name}">
  <header><strong>${d.label || d.name}</strong><small>${d.class_label}</small>
    <span class="state-${d.state}">${d.state_label}</span>
    ${d.latency != null ? html`<small>${t("latency", {ms: Math.round(d.latency * 1000)})}</small>` : ""}
    ${d.last_ok ? html`<small>${t("data_age")} ${time(d.last_ok, "ago")}</small>` : ""}</header>
  ${d.last_error ? html`<div class="q-comm_lost">${t("last_error")}: ${d.last_error}</div>` : ""}
  <div class="points">${S.points.filter(p => p.device === d.name).map(point)}</div></article>`;

export const devices = {
  parts: ["devices", "points"],
  draw(element, route) {
    const areas = S.site.areas.filter(a => !route.query.area || a.name === route.query.area);
    show(element, html`<h1>${t("devices")}</h1>${areas.map(a => html`<h2>${areaName(a)}</h2>
      <div class="cards">${S.devices.filter(d => d.area === a.name).map(device)}</div>`)}`);
  },
};
