// What the console knows of the site, each part fetched from the API; a view re-draws when a
// part it shows has changed.
import {get} from "./api.js";
import {toast} from "./dom.js";

export const S = {session: null, site: null, alarms: [], devices: [], points: [], incidents: [],
                  notifications: []};

const SOURCES = {
  alarms: "/api/v1/alarms", devices: "/api/v1/devices", points: "/api/v1/points",
  incidents: "/api/v1/incidents?limit=50", notifications: "/api/v1/notifications?limit=8",
};
export const PARTS = Object.keys(SOURCES);

const watchers = [];
export const watch = fn => watchers.push(fn);

export async function load(part) {
  S[part] = await get(SOURCES[part]);
  for (const fn of watchers) fn(part);
}

/** Change ``part`` in place (a live update), and tell who watches. */
export function patch(part, change) {
  if (S[part] === undefined) return;
  change(S[part]);
  for (const fn of watchers) fn(part);
}

const pending = {};

/** Fetch ``part`` again shortly: a burst of changes (a storm of alarms) is one request. */
export function soon(part, ms = 150) {
  clearTimeout(pending[part]);
  pending[part] = setTimeout(() => load(part).catch(err => toast(err.message)), ms);
}

export const canAct = () => S.session.access !== "viewer";
export const holds = role => (S.session.roles || []).includes(role);
