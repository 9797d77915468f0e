// One incident: what it waits for from people (checklist items to confirm, an approval for
// the role's holders, a roll call), notes, its timeline as a strip and a table, and the
// review for management in a new tab.
import {ask} from "./ask.js";
import {get, post} from "./api.js";
import {enc, html, show, time, toast} from "./dom.js";
import {S, canAct, holds, soon} from "./state.js";
import {strip} from "./strip.js";
import {clock, t, word} from "./words.js";

function todo(i) {
  const {items = [], approval = null, rollcall = null} = i.todo || {};
  const act = canAct();
  return html`${items.map(x => html`<div class="card ${holds(x.role_id) ? "mine" : ""}">
      <span class="text">${x.text} <small>(${x.role})</small></span>
      ${act ? html`<button class="main" data-do="confirm" data-item="${x.item}">${t("confirm_item")}</button>` : ""}</div>`)}
    ${approval ? html`<div class="card ${holds(approval.role_id) ? "mine" : ""}">
      <span class="text">${t("approval")}: ${approval.text} <small>(${approval.role})</small></span>
      ${act && holds(approval.role_id) ? html`<button class="main" data-do="approve" data-step="${approval.step}">${t("approve")}</button>
        <button data-do="refuse" data-step="${approval.step}">${t("refuse")}</button>`
        : html`<small>${t("approval_by", {role: approval.role})}</small>`}</div>` : ""}
    ${rollcall ? html`<div class="card"><span class="text">${t("rollcall", rollcall)}</span>
      ${act ? html`<button data-do="safe">${t("i_am_safe")}</button>` : ""}</div>` : ""}`;
}

/** A delivery's line names its channel (and why it failed), then the message it carried
 * (after " | "): the channel by its word. */
function said(line) {
  if (!["delivered", "undelivered"].includes(line.kind)) return line.text;
  const [sent, ...message] = line.text.split(" | ");
  const [channel, ...why] = sent.split(": ");
  return [word("channel", channel), ...why].join(": ") + (message.length ? ` — ${message.join(" | ")}` : "");
}

function page(i) {
  const open = i.status !== "closed";
  const act = canAct() && open;
  const report = `/api/v1/incidents/${enc(i.id)}/export`;
  const lang = `&lang=${enc(S.session.language || "zh-CN")}`;   // the reader's language
  return html`<h1>${i.drill ? html`<span class="drill">${t("drill_mark")}</span>` : ""}${i.label}</h1>
    <dl class="facts"><dt>${t("status")}</dt><dd>${word("incident_status", i.status)}
        ${i.level ? html` <span class="sev sev-critical">${i.level}</span>` : ""}</dd>
      <dt>${t("started")}</dt><dd>${time(i.started)}</dd>
      <dt>${t("cause")}</dt><dd>${i.cause}</dd>
      ${i.step_label ? html`<dt>${t("at_step")}</dt><dd>${i.step_label}</dd>` : ""}
      <dt>${t("taken_on")}</dt><dd>${i.acked ? `${i.acked[0]} · ${clock(i.acked[1])}` : t("nobody_yet")}</dd>
      <dt>${t("review")}</dt><dd><a href="${report}?format=html${lang}" target="_blank" rel="noopener">${t("review_html")}</a>
        · <a href="${report}?format=pdf${lang}" target="_blank" rel="noopener">PDF</a>
        · <a href="${report}?format=csv${lang}">CSV</a></dd></dl>
    <div class="acts start">
      ${act && !i.acked ? html`<button class="main" data-do="acknowledge">${t("take_on")}</button>` : ""}
      ${act && i.status === "running" ? html`<button data-do="resolve">${t("resolve")}</button>` : ""}</div>
    ${open ? html`<h2>${t("to_do")}</h2><div class="todo">${todo(i)}</div>` : ""}
    ${act ? html`<form class="note-form" data-do="note"><label>${t("add_note")}
      <textarea name="text" maxlength="2000" required></textarea></label>
      <div><button class="main">${t("add_note")}</button></div></form>` : ""}
    <h2>${t("timeline")}</h2>${strip(i)}
    <table class="timeline"><thead><tr><th>${t("time")}</th><th>${t("step")}</th><th>${t("what")}</th><th>${t("who")}</th><th>${t("detail")}</th></tr></thead>
      <tbody>${[...i.timeline].reverse().map(l => html`<tr><td>${clock(l.ts)}</td>
        <td>${(i.step_labels || {})[l.step] || ""}</td><td>${word("timeline", l.kind)}</td>
        <td>${l.actor || ""}</td><td>${said(l)}</td></tr>`)}</tbody></table>`;
}

const BODIES = {
  confirm: target => ["confirm", {item: target.dataset.item}],
  approve: target => ["decide", {step: target.dataset.step, approve: true}],
  refuse: target => ["decide", {step: target.dataset.step, approve: false}],
  acknowledge: () => ["acknowledge", {}],
  safe: () => ["safe", {}],
  resolve: () => ["resolve", {}],
  note: target => ["note", {text: new FormData(target).get("text")}],
};

async function act(id, how, target) {
  if (how === "resolve" && !await ask(t("resolve_sure"), [], t("resolve"))) return;
  const [endpoint, body] = BODIES[how](target);
  await post(`/api/v1/incidents/${enc(id)}/${endpoint}`, body);
  soon("incidents", 0);
}

export const incident = {
  parts: ["incidents"],
  async draw(element, route) {
    const [id] = route.args;
    const i = await get(`/api/v1/incidents/${enc(id)}`);
    const writing = document.activeElement;
    if (writing?.name === "text" && element.contains(writing)) return;  // keep the note form
    show(element, page(i));
    const run = (how, target) => act(i.id, how, target).catch(err => toast(err.message));
    element.onclick = e => {
      const button = e.target.closest("button[data-do]");
      if (button) run(button.dataset.do, button);
    };
    element.onsubmit = e => {
      e.preventDefault();
      run(e.target.dataset.do, e.target);
    };
  },
};
