// Incidents and drills: the list, newest first, each with its state, the step it is at, and
// how many things it waits for from people.
import {enc, html, show, time} from "./dom.js";
import {S} from "./state.js";
import {t, word} from "./words.js";

const colour = i => i.status === "closed" ? "info" : i.drill ? "warning"
  : i.status === "recovery" ? "major" : "critical";

export function waiting(i) {
  const todo = i.todo || {};
  return (todo.items || []).length + (todo.approval ? 1 : 0);
}

export function incidentCard(i) {
  const n = waiting(i);
  return html`<article class="card incident sev-${colour(i)}">
    <header>${i.drill ? html`<span class="drill">${t("drill_mark")}</span>` : ""}
      <a href="#/incident/${enc(i.id)}">${i.label}</a>
      <span>${word("incident_status", i.status)}</span>
      ${i.level ? html`<span class="sev sev-critical">${i.level}</span>` : ""}</header>
    <div><small>${t("started")} ${time(i.started)}</small>
      ${i.step_label ? html` · <span>${t("at_step")}: ${i.step_label}</span>` : ""}
      ${n ? html` · <b>${t("waiting_n", {n})}</b>` : ""}
      ${i.acked ? html` · <small>${t("taken_by", {who: i.acked[0]})}</small>` : ""}</div>
  </article>`;
}

export const incidents = {
  parts: ["incidents"],
  draw(element) {
    show(element, html`<h1>${t("incidents")}</h1>
      <div class="cards">${S.incidents.length ? S.incidents.map(incidentCard) : t("none")}</div>`);
  },
};
