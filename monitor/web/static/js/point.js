// One point's trend over the last hours from the embedded history (Grafana keeps the long
// trends), its threshold limits drawn; a text point as its recent values.
import {get} from "./api.js";
import {$, enc, html, show, time, toast} from "./dom.js";
import {LIMIT_COLOUR, chart} from "./chart.js";
import {S} from "./state.js";
import {L, clock, duration, t, word} from "./words.js";

const HOURS = [1, 6, 24, 72];
const MOST = 20000;

const limitsOf = p => Object.entries(p.limits || {}).map(([level, value]) => (
  {value, colour: LIMIT_COLOUR[level], text: `${word("level", level)} ${value}`}));

function recent(rows) {
  const changes = rows.filter((r, i) => i === 0 || r.value !== rows[i - 1].value).slice(-50).reverse();
  return html`<table><thead><tr><th>${t("time")}</th><th>${t("value")}</th></tr></thead>
    <tbody>${changes.map(r => html`<tr><td>${clock(r.ts)}</td><td>${r.value}</td></tr>`)}</tbody></table>`;
}

export const point = {
  parts: [],
  async draw(element, route) {
    const [id] = route.args;
    const p = S.points.find(x => x.id === id);
    if (!p) return show(element, html`<h1>${t("no_such_point")}</h1>`);
    const device = S.devices.find(d => d.name === p.device) || {};
    const hours = Number(route.query.h) || 6;
    const until = Date.now() / 1000;
    const limits = limitsOf(p);
    show(element, html`<h1>${p.label || p.key}</h1>
      <dl class="facts"><dt>${t("device")}</dt><dd><a href="#/devices?area=${enc(device.area)}">${device.label || device.name}</a></dd>
        <dt>${t("value")}</dt><dd>${p.display} ${time(p.ts, "ago")}</dd>
        ${limits.length ? html`<dt>${t("limits")}</dt><dd class="limits">${limits.map(l =>
          html`<span data-css="--sev:${l.colour}">${l.text} ${p.unit}</span>`)}</dd>` : ""}</dl>
      <nav class="ranges">${HOURS.map(h => html`<a class="${h === hours ? "here" : ""}"
        href="#/point/${enc(id)}?h=${h}">${duration(h * 3600)}</a>`)}</nav>
      <div class="chart"></div><p class="muted" id="cut"></p>`);
    const history = await get(`/api/v1/points/${enc(id)}/history?since=${until - hours * 3600}&until=${until}&limit=${MOST}`);
    const rows = history.values.reverse();
    if (rows.length >= MOST) $("#cut", element).textContent = t("cut", {n: MOST, since: clock(rows[0].ts)});
    const box = $(".chart", element);
    const kind = typeof p.value;
    if (!rows.length) return show(box, html`${t("no_history")}`);
    if (kind !== "number" && kind !== "boolean") return show(box, recent(rows));
    await chart(box, {times: rows.map(r => r.ts), label: p.label || p.key, unit: p.unit, limits,
                      since: until - hours * 3600, until,
                      values: rows.map(r => (r.value === null ? null : Number(r.value))),
                      words: kind === "boolean" ? L.boolean[p.meaning] : null})
      .catch(err => toast(err.message));
  },
};
