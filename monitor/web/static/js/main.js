// The console: finds who is signed in (or sends them to /login), fetches the site, shows the
// banner and the page the address names, and follows the live stream. Pages: #/ (overview),
// #/alarms, #/alarm/ID, #/devices, #/point/ID, #/incidents, #/incident/ID.
import {allowSound, beep, flash, mute, muted, mutedUntil} from "./alert.js";
import {alarm} from "./alarm.js";
import {alarms} from "./alarms.js";
import {get, logout, useCsrf} from "./api.js";
import {banner} from "./banner.js";
import {devices} from "./devices.js";
import {$, html, refreshTimes, show, toast} from "./dom.js";
import {incident} from "./incident.js";
import {incidents} from "./incidents.js";
import {live} from "./live.js";
import {overview} from "./overview.js";
import {point} from "./point.js";
import {situations} from "./situation.js";
import {PARTS, S, load, patch, soon, watch} from "./state.js";
import {clock, t, useLabels} from "./words.js";

const ROUTES = {"": overview, alarms, alarm, devices, point, incidents, incident};
const NAV = [["", "overview"], ["alarms", "alarms"], ["devices", "devices"], ["incidents", "incidents"]];
const SECTION = {alarm: "alarms", point: "devices", incident: "incidents"};
let current = null;

function parse() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...args] = path.split("/").map(decodeURIComponent);
  return {name: name in ROUTES ? name : "", args,
          query: Object.fromEntries(new URLSearchParams(query))};
}

async function draw(fresh) {
  try {
    await current.view.draw(current.element, current.route, fresh);
  } catch (err) {
    toast(err.message);
  }
}

/** A new page gets a new element: the old page's listeners go with the old one. */
function route() {
  const found = parse();
  const element = Object.assign(document.createElement("main"), {id: "view"});
  $("#view").replaceWith(element);
  current = {view: ROUTES[found.name], route: found, element};
  nav();
  draw(true);
}

function nav() {
  const here = SECTION[current.route.name] ?? current.route.name;
  const counts = {alarms: S.alarms.filter(a => !a.acked).length,
                  incidents: S.incidents.filter(i => i.status !== "closed").length};
  show($("#nav"), html`${NAV.map(([name, key]) => html`<a href="#/${name}"
    class="${here === name ? "here" : ""}">${t(key)}${counts[name]
      ? html`<span class="count">${counts[name]}</span>` : ""}</a>`)}`);
}

const title = () => `${S.site.label || S.site.name} — Vigil`;

function situation() {
  const found = situations(S.alarms);
  banner($("#banner"), found, S.alarms);
  const waiting = S.alarms.find(a => a.severity === "critical" && !a.acked
                                     && a.state !== "shelved");
  flash(Boolean(waiting), found[0]?.text ?? waiting?.message, title());
}

/** A critical alarm nobody has acknowledged sounds again every 30 s (unless muted). */
function remind() {
  if (S.alarms.some(a => a.severity === "critical" && !a.acked && a.state !== "shelved")) beep();
}

function muteButton() {
  const button = $("#mute");
  button.hidden = false;
  button.textContent = muted() ? t("muted_until", {time: clock(mutedUntil() / 1000)})
    : t("mute_shift");
  button.setAttribute("aria-pressed", String(muted()));
}

function header() {
  $("#site").textContent = S.site.label || S.site.name;
  const me = S.session;
  $("#me").textContent = `${me.label ?? "API"} · ${t(`access_${me.access}`)}`;
  Object.assign($("#logout"), {hidden: false, textContent: t("logout"), onclick: logout});
  $("#mute").onclick = () => {
    mute(!muted());
    muteButton();
  };
  muteButton();
}

function follow() {
  live({
    alarm(e) {
      soon("alarms");
      soon("notifications", 1000);
      if (e.action === "raised" && e.severity === "critical" && !beep()) toast(t("click_for_sound"));
    },
    event: () => soon("devices"),
    readings: rows => arrived.push(...rows),
    incident() {
      soon("incidents");
      soon("notifications", 1000);
    },
    online(dropped) {
      $("#offline").hidden = true;
      if (dropped) for (const part of PARTS) soon(part, 0);   // what it may have missed
    },
    offline() {
      Object.assign($("#offline"), {hidden: false, textContent: t("offline")});
    },
  });
}

/** Readings come on the stream: those of the last half second are shown together. */
const arrived = [];
function showReadings() {
  if (!arrived.length) return;
  const rows = arrived.splice(0);
  patch("points", points => {
    const byId = new Map(points.map(p => [p.id, p]));
    for (const r of rows) {
      const p = byId.get(r.id);
      if (p) Object.assign(p, r);
    }
  });
}

/** What the stream does not carry (devices' latency and age, others' confirmations) is
 * fetched again every 10 s. */
function every10s() {
  refreshTimes();
  if (document.hidden) return;
  if (current.view.parts.includes("devices")) soon("devices", 0);
  if (current.route.name === "incident") draw(false);
}

async function start() {
  // all at once: on a slow link each round trip counts
  const [session, labels, site] = await Promise.all([
    get("/api/v1/session"), get("/api/v1/labels"), get("/api/v1/site"), ...PARTS.map(load)]);
  useCsrf(session.csrf);
  useLabels(labels);
  Object.assign(S, {session, site});
  header();
  route();
  situation();
  watch(part => {
    if (part === "alarms") situation();
    if (part === "alarms" || part === "incidents") nav();
    if (current.view.parts.includes(part)) draw(false);
  });
  addEventListener("hashchange", route);
  allowSound();
  follow();
  setInterval(every10s, 10000);
  setInterval(showReadings, 500);
  setInterval(remind, 30000);
}

start().catch(err => toast(err.message));
