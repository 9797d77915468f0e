// The API, as the signed-in person: the session cookie goes with every request, and every
// change carries the session's CSRF token. A session that ended sends the person to /login.
let csrf = "";

export const useCsrf = token => { csrf = token || ""; };

export class Refused extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

async function answer(response) {
  if (response.status === 401) {
    location.assign("/login");
    throw new Refused(401, "");
  }
  const json = (response.headers.get("content-type") || "").includes("json");
  const data = json ? await response.json() : await response.text();
  if (!response.ok) throw new Refused(response.status, json ? data.detail : data);
  return data;
}

export const get = path => fetch(path, {credentials: "same-origin"}).then(answer);

export const post = (path, body = {}) => fetch(path, {
  method: "POST", credentials: "same-origin", body: JSON.stringify(body),
  headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
}).then(answer);

export async function logout() {
  await fetch("/logout", {method: "POST", credentials: "same-origin",
                          headers: {"X-CSRF-Token": csrf}});
  location.assign("/login");
}
