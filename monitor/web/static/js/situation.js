// The site's current situations, worst first, found from the active alarms: each alarm names
// the situation it makes (its device class says which: a fire, mains lost, the machine room
// too hot, a device offline), in the order and words the labels give; then any other alarm.
import {L, t} from "./words.js";

const RANK = {critical: 0, major: 1, minor: 2, warning: 3, info: 4};
export const rank = severity => RANK[severity] ?? 5;
export const worst = alarms => alarms.map(a => a.severity).sort((a, b) => rank(a) - rank(b))[0];

/** Alarms that describe the situation now: active, and not shelved by someone. */
export const standing = alarms => alarms.filter(a => a.active && a.state !== "shelved");

/** [{kind, severity, since, alarms, text}], the worst first. */
export function situations(alarms) {
  let left = standing(alarms);
  const found = [];
  for (const {kind, text, urgent} of L.situations || []) {
    const these = left.filter(a => a.situation === kind);
    left = left.filter(a => a.situation !== kind);
    if (these.length) found.push({kind, urgent, alarms: these, text: text.replace("{n}", these.length)});
  }
  if (left.length) {
    found.push({kind: "other", alarms: left,
                text: left.length === 1 ? left[0].message : t("situation_other", {n: left.length})});
  }
  // shelved, yet still in alarm: never "all normal" while one stands
  const held = alarms.filter(a => a.active && a.state === "shelved");
  if (held.length) {
    found.push({kind: "shelved", alarms: held, text: t("situation_shelved", {n: held.length})});
  }
  for (const s of found) {
    s.severity = s.urgent ? "critical" : s.kind === "shelved" ? "warning" : worst(s.alarms);
    s.since = Math.min(...s.alarms.map(a => a.raised_at || Infinity));
  }
  return found.sort((a, b) => rank(a.severity) - rank(b.severity));
}
