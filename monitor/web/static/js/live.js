// The live stream (server-sent events: alarm transitions, device events, incident
// milestones). When it drops the console says it is offline and reconnects, and fetches
// again what it may have missed.
const KINDS = ["alarm", "event", "incident"];

export function live(handlers) {
  let wait = 1000;
  let dropped = false;

  function open() {
    const source = new EventSource("/api/v1/stream");
    source.onopen = () => {
      wait = 1000;
      handlers.online(dropped);
      dropped = false;
    };
    for (const kind of KINDS) {
      source.addEventListener(kind, e => handlers[kind](JSON.parse(e.data)));
    }
    source.onerror = () => {
      source.close();
      dropped = true;
      handlers.offline();
      setTimeout(retry, wait);
    };
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
