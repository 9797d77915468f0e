// The site at a glance: the incidents running now, and a tile per area with its state (the
// worst alarm there, on the one severity scale) and its key values.
import {enc, html, show} from "./dom.js";
import {incidentCard} from "./incidents.js";
import {S} from "./state.js";
import {standing, worst} from "./situation.js";
import {areaName, clock, t, word} from "./words.js";

/** A true/false point away from its rest: a zone in alarm, a door open, a host check down. */
const raised = p => typeof p.value === "boolean" && p.value !== p.rest;

/** What a device's class says its tile shows: every number, the true/false points away from
 * rest (the default), or the keys it names. */
function values(device, points) {
  const mine = points.filter(p => p.device === device.name);
  if (device.tile === "numbers") return mine.filter(p => typeof p.value === "number");
  if (Array.isArray(device.tile)) return device.tile.map(k => mine.find(p => p.key === k)).filter(Boolean);
  return mine.filter(raised);
}

function line(device, points) {
  const shown = values(device, points);
  const state = device.state !== "online"
    ? html`<li><span>${device.label || device.name}</span><b class="bad">${device.state_label}</b></li>` : "";
  const quiet = !shown.length && device.state === "online" && device.tile === "raised"
    ? html`<li><span>${device.label || device.name}</span><b>${t("all_normal")}</b></li>` : "";
  return html`${state}${quiet}${shown.map(p => html`<li><span>${p.label || p.key}</span>
    <b class="${raised(p) ? "bad" : ""}">${p.display}</b></li>`)}`;
}

function tile(area) {
  const here = S.points.filter(p => p.area === area.name);   // a fire zone is where it is
  const devices = S.devices.filter(d => d.area === area.name
                                        || here.some(p => p.device === d.name));
  const alarms = standing(S.alarms).filter(a => a.area === area.name);
  const severity = alarms.length ? worst(alarms) : "ok";
  return html`<article class="tile sev-${severity}" data-area="${area.name}">
    <h2><a href="#/devices?area=${enc(area.name)}">${area.label}</a>
      <span class="sev sev-${severity}">${alarms.length ? t("n_alarms", {n: alarms.length}) : t("ok")}</span></h2>
    <ul>${devices.map(d => line(d, here))}</ul></article>`;
}

const person = name => S.site.people.find(p => p.name === name)?.label || name;

/** The messages Vigil sent last (the demo's people read them here, in their inbox). */
const sent = n => html`<tr><td>${clock(n.ts)}</td><td>${person(n.person)}</td>
  <td>${word("channel", n.channel)}</td><td class="${n.ok ? "" : "q-comm_lost"}">${n.ok
    ? t("delivered") : t("undelivered")}</td>
  <td>${n.ok ? "" : html`<small class="q-comm_lost">${n.detail}</small><br>`}${n.text.split("\n")[0]}</td></tr>`;

export const overview = {
  parts: ["alarms", "devices", "points", "incidents", "notifications"],
  draw(element) {
    const running = S.incidents.filter(i => i.status !== "closed");
    const areas = S.site.areas.map(a => ({name: a.name, label: areaName(a)}));
    show(element, html`<h1>${t("overview")}</h1>
      ${running.length ? html`<div class="incidents-now">${running.map(incidentCard)}</div>` : ""}
      <div class="tiles">${areas.map(tile)}</div>
      <h2>${t("messages")}</h2><table class="sent"><thead><tr><th>${t("time")}</th><th>${t("who")}</th>
        <th>${t("channel")}</th><th>${t("result")}</th><th>${t("detail")}</th></tr></thead>
        <tbody>${S.notifications.map(sent)}</tbody></table>`);
  },
};
