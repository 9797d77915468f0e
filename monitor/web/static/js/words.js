// The words people read: every label comes from GET /api/v1/labels (the signed-in person's
// language); times and durations are said as people say them (1 小时 30 分).
export const L = {language: "zh-CN", timezone: undefined, console: {}};

export function useLabels(data) {
  Object.assign(L, data);
  document.documentElement.lang = data.language;
}

/** The console's word for ``key``, with ``{name}`` filled in from ``vars``. */
export function t(key, vars = {}) {
  return (L.console[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** The label of an id in one of the API's tables (severity, alarm_state, device_class, ...). */
export const word = (table, id) => (L[table] || {})[id] ?? id;

/** An area as people call it: its label, else its purpose's word, else its name. */
export const areaName = area => area.label || (L.area_purpose || {})[area.purpose] || area.name;

const english = () => L.language === "en";

/** ``5400`` -> ``1 小时 30 分`` (``1 h 30 min``), as monitor/text.py says it. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor(s % 86400 / 3600), Math.floor(s % 3600 / 60)];
  if (english()) {
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${m} min`;
    if (s < 86400) return `${h} h` + (m ? ` ${m} min` : "");
    return `${d} d` + (h ? ` ${h} h` : "");
  }
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${m} 分钟` + (s % 60 ? ` ${s % 60} 秒` : "");
  if (s < 86400) return `${h} 小时` + (m ? ` ${m} 分` : "");
  return `${d} 天` + (h ? ` ${h} 小时` : "");
}

/** Whether this browser's clock is in another zone than the site's. */
const elsewhere = () => L.timezone !== undefined
  && Intl.DateTimeFormat().resolvedOptions().timeZone !== L.timezone;

/** A moment as the site's clock says it (exports and messages say it so too), ``shown``
 * as for toLocaleString; with the zone when this browser is in another. */
export function siteTime(ts, shown = {}) {
  const when = new Date(ts * 1000);
  const said = when.toLocaleString(L.language, {timeZone: L.timezone, hour12: false, ...shown});
  if (!elsewhere()) return said;
  const zone = new Intl.DateTimeFormat(L.language, {timeZone: L.timezone, timeZoneName: "short"})
    .formatToParts(when).find(part => part.type === "timeZoneName");
  return zone ? `${said} (${zone.value})` : said;
}

const day = ts => new Date(ts * 1000).toLocaleDateString("en-CA", {timeZone: L.timezone});

/** A time: the clock today, with the date on other days (the site's day and clock). */
export function clock(ts) {
  if (!ts) return "";
  return siteTime(ts, day(ts) === day(Date.now() / 1000)
    ? {hour: "2-digit", minute: "2-digit", second: "2-digit"}
    : {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
}

/** How long ago: ``3 分钟前``. */
export const ago = ts => t("ago", {d: duration(Date.now() / 1000 - ts)});
