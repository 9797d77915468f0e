// An incident's milestones over time, as a strip: each marker where it happened between the
// start and now (or the end), coloured by what it means, its words staggered in rows.
import {html} from "./dom.js";
import {clock, word} from "./words.js";

const TONE = {
  started: "start", retriggered: "start", escalated: "bad", deadline_missed: "bad",
  timeout: "bad", rejected: "bad", action_failed: "bad", action_timeout: "bad",
  rollcall_missing: "bad", deadline_late: "bad", acknowledged: "good", confirmed: "good",
  approved: "good", deadline_met: "good", action_ok: "good", safe: "good",
  resolved: "end", closed: "end",
};

export function strip(incident) {
  const marks = incident.timeline.filter(l => TONE[l.kind]);
  const last = incident.timeline.at(-1)?.ts ?? incident.started;
  const end = incident.status === "closed" ? last : Math.max(last, Date.now() / 1000);
  const span = Math.max(end - incident.started, 1);
  const at = ts => Math.min(100, Math.max(0, (ts - incident.started) / span * 100)).toFixed(2);
  return html`<div class="strip" role="img"><div class="track">
    ${marks.map((l, n) => html`<span class="mark ${TONE[l.kind]} row${n % 4}" data-css="left:${at(l.ts)}%"
      title="${clock(l.ts)} ${word("timeline", l.kind)} ${l.actor || ""}"><i></i><b>${word("timeline", l.kind)}</b></span>`)}
    </div><div class="ends"><span>${clock(incident.started)}</span><span>${clock(end)}</span></div></div>`;
}
