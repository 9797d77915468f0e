"""Durable timers: every wait of the daemon in one table, re-armed at start.

A timer is ``KIND:NAME`` with a due time (wall clock, seconds). Parts register a handler for
their kind (``alarm``, ``shelve``, ``shutdown``, ...). Once armed, a timer runs on the event
loop's monotonic clock, so a wall-clock jump neither fires it early nor holds it back. A timer
whose due time passed while the daemon was down fires once at start, and the log says how late.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable

from monitor.core.schema import declare
from monitor.core.store import Store

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS timers (key TEXT PRIMARY KEY, due REAL NOT NULL);
""")
"""Every durable timer: ``KIND:NAME`` and when it is due."""

Handler = Callable[[str], None]
"""Called with the timer's NAME when it fires."""
Legacy = Callable[[str], tuple[str, ...]]
"""The fields of a name an earlier version wrote as one string (read once, at load)."""


def name(*fields: object) -> str:
    """A timer's name of several fields (an alarm and its delay's direction; a delivery, its
    person and contact), said as fields: no field is ever parsed out of another."""
    return _said(tuple(str(f) for f in fields))


@functools.lru_cache(maxsize=8192)
def _said(fields: tuple[str, ...]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def fields(timer: str) -> tuple[str, ...]:
    """The fields of a name ``name`` made."""
    return tuple(json.loads(timer))


class Timers:
    def __init__(self, store: Store):
        self.store = store
        self.handlers: dict[str, Handler] = {}
        self.legacy: dict[str, Legacy] = {}
        self.due: dict[str, float] = {}
        self._handles: dict[str, asyncio.Handle] = {}
        self._started = False

    def on(self, kind: str, handler: Handler, legacy: Legacy | None = None) -> None:
        """Handle timers of ``kind``; register before ``load``. One handler per kind: a
        second is refused (RuntimeError), never silently put in the first's place.
        ``legacy``: the kind's names are ``name``'s fields, and this reads the fields of one
        an earlier version wrote as a plain string (it is written again in fields)."""
        if kind in self.handlers:
            raise RuntimeError(f"timers of kind {kind!r} have a handler already")
        self.handlers[kind] = handler
        if legacy is not None:
            self.legacy[kind] = legacy

    async def load(self) -> None:
        """Read every stored timer (armed by ``start``, once the handlers are registered);
        an earlier version's name of a kind with fields is written again in fields."""
        rows = await self.store.read(lambda c: c.execute("SELECT key, due FROM timers")
                                     .fetchall())
        for key, due in rows:
            kind, _, old = key.partition(":")
            legacy = self.legacy.get(kind)
            if legacy is not None and not old.startswith("["):
                self.store.submit(lambda c, k=key: c.execute(  # type: ignore[misc]
                    "DELETE FROM timers WHERE key = ?", (k,)))
                self.arm(kind, name(*legacy(old)), due)
            else:
                self.due[key] = due

    def start(self) -> None:
        """Arm every loaded timer; those already due fire now, once."""
        self._started = True
        now = time.time()
        late = sorted((due, key) for key, due in self.due.items() if due <= now)
        for key, due in list(self.due.items()):
            if due > now:
                self._schedule(key, due)
        for n, (due, key) in enumerate(late):
            if n < 20:
                log.warning("timer %s was due %s ago, while the daemon was down: firing it now",
                            key, _ago(now - due))
            elif n == 20:
                log.warning("%d more timers were due while the daemon was down: firing them now",
                            len(late) - 20)
            self._handles[key] = asyncio.get_running_loop().call_soon(self._fire, key)

    def arm(self, kind: str, name: str, due: float) -> None:
        """(Re)arm ``kind:name`` for wall-clock time ``due`` and store it."""
        key = f"{kind}:{name}"
        self.due[key] = due
        self.store.submit(lambda c: c.execute("INSERT OR REPLACE INTO timers VALUES (?, ?)",
                                              (key, due)))
        if self._started:
            self._schedule(key, due)

    def cancel(self, kind: str, name: str) -> bool:
        """Forget ``kind:name``; True when it was armed."""
        key = f"{kind}:{name}"
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()
        if self.due.pop(key, None) is None:
            return False
        self.store.submit(lambda c: c.execute("DELETE FROM timers WHERE key = ?", (key,)))
        return True

    def get(self, kind: str, name: str) -> float | None:
        return self.due.get(f"{kind}:{name}")

    def pending(self, kind: str) -> dict[str, float]:
        """NAME -> due of the armed timers of ``kind``."""
        prefix = f"{kind}:"
        return {k[len(prefix):]: d for k, d in self.due.items() if k.startswith(prefix)}

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: write every armed timer again (into a database made anew)."""
        conn.executemany("INSERT OR REPLACE INTO timers VALUES (?, ?)", list(self.due.items()))

    def stop(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._started = False

    def _schedule(self, key: str, due: float) -> None:
        old = self._handles.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_at(loop.time() + max(0.0, due - time.time()),
                                          self._fire, key)

    def _fire(self, key: str) -> None:
        """Run the handler, then forget the timer: its row goes in the same or a later
        transaction than what the handler wrote, so a kill in between fires it again at
        start rather than losing it (handlers take a repeat as a no-op)."""
        self._handles.pop(key, None)
        due = self.due.pop(key, None)
        if due is None:
            return  # cancelled meanwhile
        kind, _, name = key.partition(":")
        handler = self.handlers.get(kind)
        if handler is None:
            log.error("timer %s fired but nothing handles timers of kind %r", key, kind)
        else:
            try:
                handler(name)
            except Exception:
                log.exception("timer %s: its handler failed", key)
        if key not in self.due:  # not armed again by its handler
            self.store.submit(lambda c: c.execute("DELETE FROM timers WHERE key = ?", (key,)))


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
