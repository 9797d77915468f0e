// The site's current situations, worst first, found from the active alarms: a fire (a fire
// panel's critical rule alarm), mains lost (power:*), the machine room too hot (a high
// temperature limit there), devices offline (comm:*), then any other alarm.
import {t} from "./words.js";

const RANK = {critical: 0, major: 1, minor: 2, warning: 3, info: 4};
export const rank = severity => RANK[severity] ?? 5;
export const worst = alarms => alarms.map(a => a.severity).sort((a, b) => rank(a) - rank(b))[0];

/** Alarms that describe the situation now: active, and not shelved by someone. */
export const standing = alarms => alarms.filter(a => a.active && a.state !== "shelved");

const KINDS = [
  ["fire", () => a => a.device_class === "fire_panel" && /\.alarm$/.test(a.point || "")
                      && a.severity === "critical"],
  ["power", () => a => /^power:(?!runtime:)/.test(a.id)],
  ["heat", site => {
    const rooms = new Set(site.areas.filter(a => (a.purpose || a.name) === "machine_room")
      .map(a => a.name));
    return a => rooms.has(a.area) && a.device_class !== "ups" && /\.high(_high)?$/.test(a.id)
      && /temp/.test(a.point || "");
  }],
  ["offline", () => a => a.id.startsWith("comm:")],
];

/** [{kind, severity, since, alarms, text}], the worst first. */
export function situations(alarms, site) {
  let left = standing(alarms);
  const found = [];
  for (const [kind, matcher] of KINDS) {
    const match = matcher(site);
    const these = left.filter(match);
    left = left.filter(a => !match(a));
    if (these.length) found.push({kind, alarms: these, text: t(`situation_${kind}`, {n: these.length})});
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
    s.severity = s.kind === "fire" ? "critical" : s.kind === "shelved" ? "warning"
      : worst(s.alarms);
    s.since = Math.min(...s.alarms.map(a => a.raised_at || Infinity));
  }
  return found.sort((a, b) => rank(a.severity) - rank(b.severity));
}
