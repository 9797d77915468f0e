"""Silences: maintenance windows for planned work (a power cut property management announced).
A silenced alarm is recorded, not dropped, and announced when the window ends if it is still
active and unacknowledged. Windows live in the store; their ends are durable timers."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.config.notify import Match
from monitor.core.context import Context
from monitor.core.schema import declare

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS silences (id INTEGER PRIMARY KEY, match TEXT NOT NULL,
                                     start REAL NOT NULL, end_ REAL NOT NULL, who TEXT,
                                     reason TEXT);
CREATE TABLE IF NOT EXISTS silenced (silence INTEGER NOT NULL, alarm TEXT NOT NULL, ts REAL,
                                     PRIMARY KEY (silence, alarm));
""")
"""The windows, and what each held back."""


@dataclass(frozen=True)
class Silence:
    id: int
    match: Match
    start: float
    end: float
    who: str
    reason: str

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "match": self.match.model_dump(), "start": self.start,
                "end": self.end, "who": self.who, "reason": self.reason}


class Silences:
    """The windows, and the alarms each held back; ``announce`` is called at a window's end
    with the alarms it held back."""

    def __init__(self, ctx: Context, announce: Callable[[list[str]], None]):
        self.ctx, self.announce = ctx, announce
        self.windows: dict[int, Silence] = {}
        self.held: dict[int, dict[str, float]] = {}
        """Window -> the alarms it held back, and when."""
        ctx.timers.on("silence", self._ended)

    async def load(self) -> None:
        def read(c: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            since = time.time() - 86400
            return (c.execute("SELECT id, match, start, end_, who, reason FROM silences "
                              "WHERE end_ > ?", (since,)).fetchall(),
                    c.execute("SELECT silence, alarm, ts FROM silenced WHERE silence IN "
                              "(SELECT id FROM silences WHERE end_ > ?)", (since,)).fetchall())
        windows, held = await self.ctx.store.read(read)
        for sid, match, start, end, who, reason in windows:
            self.windows[sid] = Silence(sid, Match.model_validate(json.loads(match)), start,
                                        end, who, reason)
        for sid, alarm, ts in held:
            self.held.setdefault(sid, {})[alarm] = ts

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: the windows and what each held back again (into a database made
        anew), so a window's end still announces them."""
        conn.executemany("INSERT OR REPLACE INTO silences (id, match, start, end_, who, reason) "
                         "VALUES (?, ?, ?, ?, ?, ?)", [_row(s) for s in self.windows.values()])
        conn.executemany("INSERT OR REPLACE INTO silenced VALUES (?, ?, ?)",
                         [(sid, alarm, ts) for sid, held in self.held.items()
                          for alarm, ts in held.items()])

    def holding(self, found: dict[str, str], now: float | None = None) -> Silence | None:
        """The active window that holds back an alarm with these facts, if any."""
        now = time.time() if now is None else now
        return next((s for s in self.windows.values() if s.active(now)
                     and s.match.matches(found)), None)

    async def add(self, match: Match, start: float, end: float, who: str,
                  reason: str) -> Silence:
        """Committed before it counts (StoreUnavailable otherwise)."""
        def insert(c: sqlite3.Connection) -> int:
            cur = c.execute("INSERT INTO silences (match, start, end_, who, reason) "
                            "VALUES (?, ?, ?, ?, ?)",
                            _row(Silence(0, match, start, end, who, reason))[1:])
            return int(cur.lastrowid or 0)
        sid = await self.ctx.store.call(insert)
        silence = self.windows[sid] = Silence(sid, match, start, end, who, reason)
        self.ctx.timers.arm("silence", str(sid), end)
        log.info("silence %d by %s until %s: %s", sid, who, time.ctime(end), reason)
        return silence

    async def expire(self, sid: int, who: str) -> Silence:
        """End a window now (it then announces what it held back)."""
        silence = self.windows[sid]
        now = time.time()
        await self.ctx.store.call(lambda c: c.execute(
            "UPDATE silences SET end_ = ?, reason = reason || ? WHERE id = ?",
            (now, f" (ended early by {who})", sid)))
        self.windows[sid] = Silence(sid, silence.match, silence.start, now, silence.who,
                                    silence.reason)
        self.ctx.timers.cancel("silence", str(sid))
        self._ended(str(sid))
        return self.windows[sid]

    def hold(self, silence: Silence, alarm_id: str) -> None:
        """Record that ``silence`` held back ``alarm_id``."""
        log.info("alarm %s held back by silence %d (%s)", alarm_id, silence.id, silence.reason)
        held = self.held.setdefault(silence.id, {})
        if alarm_id in held:
            return
        held[alarm_id] = now = time.time()
        self.ctx.store.submit(lambda c: c.execute(
            "INSERT OR IGNORE INTO silenced VALUES (?, ?, ?)", (silence.id, alarm_id, now)))

    def _ended(self, name: str) -> None:
        sid = int(name)
        alarms = list(self.held.get(sid, {}))
        log.info("silence %d ended; %d alarms it held back", sid, len(alarms))
        self.announce(alarms)


def _row(s: Silence) -> tuple[Any, ...]:
    return (s.id, json.dumps(s.match.model_dump(), ensure_ascii=False), s.start, s.end, s.who,
            s.reason)
