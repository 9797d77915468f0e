// A question in a modal dialog (a shelving's reason and duration, a note, a confirmation):
// resolves to the answers by field name, or null when cancelled.
import {$, html, show} from "./dom.js";
import {t} from "./words.js";

function field(f) {
  if (f.options) {
    return html`<label>${f.label}<select name="${f.name}">${f.options.map(([value, text]) =>
      html`<option value="${value}">${text}</option>`)}</select></label>`;
  }
  return html`<label>${f.label}<textarea name="${f.name}" maxlength="1000"
    ${f.required ? html`required` : ""}></textarea></label>`;
}

export function ask(title, fields, yes) {
  const dialog = $("#ask");
  show(dialog, html`<form method="dialog"><strong>${title}</strong>${fields.map(field)}
    <div class="acts"><button value="" formnovalidate>${t("cancel")}</button>
    <button class="main" value="yes">${yes}</button></div></form>`);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise(resolve => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "yes") return resolve(null);
      resolve(Object.fromEntries(new FormData($("form", dialog))));
    }, {once: true});
  });
}
