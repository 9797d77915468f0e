// The alarm list: by priority (severity), then newest first; filters by area, device class,
// severity and state; a card per alarm (a row on a wide screen) with its actions.
import {buttons, handle} from "./alarm_actions.js";
import {$, enc, html, show, time} from "./dom.js";
import {S} from "./state.js";
import {rank} from "./situation.js";
import {L, areaName, t} from "./words.js";

const PAGE = 100;
const chosen = {area: "", device_class: "", severity: "", state: ""};
let showing = PAGE;

export const byPriority = (a, b) => rank(a.severity) - rank(b.severity)
  || (b.raised_at || 0) - (a.raised_at || 0);

export const alarmCard = a => html`<article class="card alarm sev-${a.severity} state-${a.state}"
    data-alarm="${a.id}">
  <span class="sev">${a.severity_label}</span>
  <div class="what"><a href="#/alarm/${enc(a.id)}">${a.message}</a>
    <small>${[a.area_label, a.device_label, a.class_label].filter(Boolean).join(" · ")}</small></div>
  <span class="state">${a.state_label}</span>${time(a.raised_at)}${buttons(a)}</article>`;

function filter(name, label, options) {
  return html`<select name="${name}" aria-label="${label}"><option value="">${label}</option>
    ${options.map(([value, text]) => html`<option value="${value}" ${chosen[name] === value
      ? html`selected` : ""}>${text}</option>`)}</select>`;
}

function list(element) {
  const shown = S.alarms.filter(a => Object.entries(chosen).every(([k, v]) => !v || a[k] === v))
    .sort(byPriority);
  const rest = shown.length - showing;
  show($(".cards", element), html`${shown.length ? shown.slice(0, showing).map(alarmCard) : t("none")}
    ${rest > 0 ? html`<button class="more" data-more>${t("show_more", {n: rest})}</button>` : ""}`);
  $(".count", element).textContent = t("shown_of", {n: Math.min(showing, shown.length),
                                                     of: shown.length});
}

export const alarms = {
  parts: ["alarms"],
  draw(element, route, fresh) {
    if (fresh) {
      showing = PAGE;
      for (const name of Object.keys(chosen)) chosen[name] = route.query[name] || "";
      const pairs = table => Object.entries(L[table] || {});
      show(element, html`<h1>${t("alarms")}</h1><form class="filters">
        ${filter("area", t("all_areas"), S.site.areas.map(a => [a.name, areaName(a)]))}
        ${filter("device_class", t("all_classes"), pairs("device_class"))}
        ${filter("severity", t("all_severities"), pairs("severity"))}
        ${filter("state", t("all_states"), pairs("alarm_state").filter(([s]) => s !== "normal"))}
        <small class="count"></small></form><div class="cards"></div>`);
      $(".filters", element).onchange = e => {
        chosen[e.target.name] = e.target.value;
        list(element);
      };
      $(".cards", element).addEventListener("click", e => {
        if (!e.target.closest("[data-more]")) return;
        showing += PAGE;
        list(element);
      });
      handle(element);
    }
    list(element);
  },
};
