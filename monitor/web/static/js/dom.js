// Building the page from API data: every value is escaped (labels, notes and device names
// may hold HTML); only markup built here with ``html`` is kept as markup.
import {ago, clock, siteTime} from "./words.js";

class Markup {
  constructor(text) { this.text = text; }
}

export const esc = value => String(value ?? "").replace(/[&<>"']/g, c => (
  {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

const part = value => value instanceof Markup ? value.text
  : Array.isArray(value) ? value.map(part).join("") : esc(value);

/** A template tag: the literal parts are markup, every value put in is escaped. */
export const html = (strings, ...values) =>
  new Markup(strings.reduce((out, literal, i) => out + part(values[i - 1]) + literal));

/** Put markup in ``element``. A style of its own comes as ``data-css="prop: value; ..."``
 * and is set through the CSSOM: the Content-Security-Policy allows no style attribute. */
export function show(element, markup) {
  element.innerHTML = markup.text;
  for (const el of element.querySelectorAll("[data-css]")) {
    for (const rule of el.dataset.css.split(";")) {
      const [prop, ...value] = rule.split(":");
      if (prop.trim()) el.style.setProperty(prop.trim(), value.join(":").trim());
    }
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** A point's or alarm's id in a URL (hash routes and API paths). */
export const enc = encodeURIComponent;

const said = {when: ts => `${clock(ts)} · ${ago(ts)}`, ago};

/** A time as ``14:03:12 · 3 分钟前`` (``how``: ``when``) or ``3 分钟前`` (``ago``), kept
 * fresh by ``refreshTimes``. */
export const time = (ts, how = "when") => ts ? html`<time data-ts="${ts}" data-say="${how}"
  title="${siteTime(ts)}">${said[how](ts)}</time>` : "";

export function refreshTimes() {
  for (const el of document.querySelectorAll("time[data-ts]")) {
    el.textContent = said[el.dataset.say](Number(el.dataset.ts));
  }
}

let hide = null;

export function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(hide);
  hide = setTimeout(() => { box.hidden = true; }, 6000);
}
