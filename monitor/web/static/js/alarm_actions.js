// What a person may do with an alarm from the list or its page: acknowledge it, note it on
// its journal, shelve it (a reason and a duration) or unshelve it. A viewer gets no buttons;
// the API refuses anyway. Who acts is the person signed in.
import {ask} from "./ask.js";
import {post} from "./api.js";
import {enc, html, toast} from "./dom.js";
import {canAct, soon} from "./state.js";
import {duration, t} from "./words.js";

const SHELVE_FOR = [1800, 3600, 7200, 14400, 28800, 86400];

export function buttons(alarm) {
  if (!canAct()) return "";
  const button = (how, main = false) => html`<button class="${main ? "main" : ""}" data-act="${how}"
    data-id="${alarm.id}">${t(`alarm_${how}`)}</button>`;
  const shelved = alarm.state === "shelved";
  return html`<div class="acts">${alarm.acked ? "" : button("ack", true)}${button("note")}
    ${shelved ? button("unshelve") : button("shelve")}</div>`;
}

const QUESTIONS = {
  ack: async () => ({note: ""}),
  note: () => ask(t("alarm_note"), [{name: "note", label: t("note"), required: true}],
                  t("alarm_note")),
  shelve: async () => {
    const answer = await ask(t("alarm_shelve"), [
      {name: "note", label: t("shelve_reason"), required: true},
      {name: "duration", label: t("shelve_for"), options: SHELVE_FOR.map(s => [s, duration(s)])}],
    t("alarm_shelve"));
    return answer && {note: answer.note, duration: Number(answer.duration)};
  },
  unshelve: async () => ({note: ""}),
};
const PATHS = {ack: "acknowledge", note: "note", shelve: "shelve", unshelve: "unshelve"};

async function perform(how, id) {
  const body = await QUESTIONS[how]();
  if (!body) return;
  await post(`/api/v1/alarms/${enc(id)}/${PATHS[how]}`, body);
  soon("alarms", 0);
}

/** Buttons inside ``element`` act on their alarm. */
export function handle(element) {
  element.addEventListener("click", e => {
    const button = e.target.closest("button[data-act]");
    if (!button) return;
    button.disabled = true;
    perform(button.dataset.act, button.dataset.id)
      .catch(err => toast(err.message))
      .finally(() => { button.disabled = false; });
  });
}
