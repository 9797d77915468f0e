// The live stream (server-sent events: alarm transitions, device events, incident
// milestones, readings; a ping when nothing else is said for 15 s). When it drops, or says
// nothing for 40 s (a connection that died silently), the console says it is offline,
// reconnects, and fetches again what it may have missed.
const KINDS = ["alarm", "event", "incident", "readings"];
const SILENCE = 40000;

export function live(handlers) {
  let wait = 1000;
  let dropped = false;
  let watchdog = null;

  function open() {
    const source = new EventSource("/api/v1/stream");
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => lost(source), SILENCE);
    };
    source.onopen = () => {
      wait = 1000;
      heard();
      handlers.online(dropped);
      dropped = false;
    };
    for (const kind of KINDS) {
      source.addEventListener(kind, e => {
        heard();
        handlers[kind](JSON.parse(e.data));
      });
    }
    source.addEventListener("ping", heard);
    source.onerror = () => lost(source);
  }

  function lost(source) {
    clearTimeout(watchdog);
    source.close();
    dropped = true;
    handlers.offline();
    setTimeout(retry, wait);
  }

  async function retry() {
    wait = Math.min(wait * 2, 5000);
    try {
      const response = await fetch("/api/v1/session", {credentials: "same-origin"});
      if (response.status === 401) return location.assign("/login");
    } catch {
      return setTimeout(retry, wait);   // the daemon is not back yet
    }
    open();
  }

  open();
}
