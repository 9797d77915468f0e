// One alarm's page: what it is, where, its state, and its journal: when it was raised and
// cleared, who acknowledged or shelved it and why.
import {buttons, handle} from "./alarm_actions.js";
import {get} from "./api.js";
import {enc, html, show, time} from "./dom.js";
import {S} from "./state.js";
import {clock, t, word} from "./words.js";

async function find(id) {
  return S.alarms.find(a => a.id === id)
    || (await get("/api/v1/alarms?all=true")).find(a => a.id === id);
}

const facts = a => html`<dl class="facts">
  <dt>${t("severity")}</dt><dd><span class="sev sev-${a.severity}">${a.severity_label}</span></dd>
  <dt>${t("state")}</dt><dd>${a.state_label}</dd>
  <dt>${t("where")}</dt><dd>${[a.area_label, a.device_label, a.class_label].filter(Boolean).join(" · ")}</dd>
  <dt>${t("raised")}</dt><dd>${time(a.raised_at)}</dd>
  ${a.cleared_at ? html`<dt>${t("cleared")}</dt><dd>${time(a.cleared_at)}</dd>` : ""}
  ${a.acked_by ? html`<dt>${t("acked_by")}</dt><dd>${a.acked_by} · ${clock(a.acked_at)} ${a.ack_note || ""}</dd>` : ""}
  ${a.shelved_by ? html`<dt>${t("shelved_by")}</dt><dd>${a.shelved_by} · ${a.shelve_note || ""}
    (${t("until", {time: clock(a.shelved_until)})})</dd>` : ""}
  ${a.suppressed_by ? html`<dt>${t("suppressed_by")}</dt><dd>${a.suppressed_by}</dd>` : ""}</dl>`;

export const alarm = {
  parts: ["alarms"],
  async draw(element, route, fresh) {
    const [id] = route.args;
    const [a, journal] = await Promise.all([
      find(id), get(`/api/v1/alarms/history?alarm=${enc(id)}&limit=200`)]);
    if (fresh) handle(element);
    if (!a) return show(element, html`<h1>${t("no_such_alarm")}</h1>`);
    show(element, html`<h1>${a.message}</h1>${facts(a)}${buttons(a)}
      <h2>${t("journal")}</h2>
      <table><thead><tr><th>${t("time")}</th><th>${t("what")}</th><th>${t("who")}</th>
        <th>${t("note")}</th></tr></thead>
      <tbody>${journal.map(j => html`<tr><td>${clock(j.ts)}</td><td>${word("alarm_action", j.action)}</td>
        <td>${j.who || ""}</td><td>${j.note || ""}</td></tr>`)}</tbody></table>`);
  },
};
