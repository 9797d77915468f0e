// The banner on every page: the worst current situation and since when, the others beside
// it, and how many alarms are active, unacknowledged and shelved. An urgent one (a fire)
// fills it in red.
import {html, show, time} from "./dom.js";
import {standing} from "./situation.js";
import {t} from "./words.js";

const where = alarms => [...new Set(alarms.map(a => a.area_label).filter(Boolean))].join("、");

export function banner(element, found, alarms) {
  const active = standing(alarms).length;
  const unacked = alarms.filter(a => !a.acked).length;
  const shelved = alarms.filter(a => a.state === "shelved").length;
  const counts = html`<span>${t("active_count", {n: active})}</span>
    <span>${t("unacked_count", {n: unacked})}</span>
    ${shelved ? html`<span>${t("shelved_count", {n: shelved})}</span>` : ""}`;
  const [top, ...others] = found;
  element.className = `banner sev-${top ? top.severity : "ok"}${top?.urgent ? " urgent" : ""}`;
  element.dataset.kind = top ? top.kind : "ok";
  if (!top) {
    show(element, html`<div class="head">${t("all_normal")}</div><div class="line">${counts}</div>`);
    return;
  }
  const detail = top.kind === "other" ? "" : top.alarms.slice(0, 3).map(a => a.message).join("; ");
  show(element, html`<div class="head"><span>${top.text}</span>
      <span class="where">${where(top.alarms)} ${detail}</span></div>
    <div class="line"><span>${t("since")} ${time(top.since)}</span>${counts}</div>
    ${others.length ? html`<div class="line">${others.map(s => html`<span class="chip">${s.text}</span>`)}</div>` : ""}`);
}
