"""Pacing: a storm becomes one message per person and group, within the person limit.

A message to a person goes at once, unless that person had a message of the same group within
the group interval, or has had as many as the person limit allows; then it is held and goes
with the others of its group, as one message, when that ends. A page for a critical alarm
(kind ``urgent``) is never held by the person limit, only by its group's interval (it counts
towards the limit all the same). What is held is durable: each
held item is a row of the ``held`` table and each hold a durable timer (kind ``held``), so a
daemon killed during a hold sends the held message after its restart, at the time it was due.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.config.notify import PERSON_LIMIT_MAX
from monitor.core.context import Context
from monitor.core.schema import declare
from monitor.core.timers import fields, name

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS held (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,
                                 person TEXT NOT NULL, grp TEXT NOT NULL, item TEXT NOT NULL);
""")
"""What pacing holds back, by group."""

Key = tuple[str, str, str]
"""(kind, person, group): kind is ``page`` or ``urgent`` (items are alarm ids; urgent: a
critical one's) or ``notice`` (items are what became of an alarm, as dicts)."""
URGENT = "urgent"
Send = Callable[[str, str, list[Any]], bool]
"""(kind, person, items) -> whether a message went (False: nothing held still mattered)."""


@dataclass
class _Held:
    """One group's messages to one person: when the last went (loop time), what waits."""

    last: float = float("-inf")
    pending: list[Any] = field(default_factory=list)


class Pacer:
    def __init__(self, ctx: Context, send: Send):
        self.ctx, self.send = ctx, send
        self.groups: dict[Key, _Held] = {}
        self.sent: dict[str, deque[float]] = {}
        """Person -> when their latest messages went (loop time), for the person limit."""
        ctx.timers.on("held", self._due, legacy=lambda old: tuple(old.split("#", 2)))

    async def load(self) -> None:
        """Take back what was held when the daemon stopped; a hold whose timer is missing
        (killed between the two writes) goes at start."""
        rows = await self.ctx.store.read(lambda c: c.execute(
            "SELECT kind, person, grp, item FROM held ORDER BY seq").fetchall())
        for kind, person, grp, item in rows:
            self.groups.setdefault((kind, person, grp), _Held()).pending.append(
                json.loads(item))
        for key in self.groups:
            if self.ctx.timers.get("held", name(*key)) is None:
                self.ctx.timers.arm("held", name(*key), time.time())

    def pace(self, kind: str, person: str, grp: str, item: Any, interval: float) -> None:
        """Send ``item`` now, or hold it with the others of its group until the group
        interval and the person limit allow."""
        key = (kind, person, grp)
        group = self.groups.setdefault(key, _Held())
        now = asyncio.get_running_loop().time()
        at = max(group.last + interval, self._free_at(kind, person))
        group.pending.append(item)
        if len(group.pending) == 1 and at <= now:
            self._release(key, stored=False)
            return
        self.ctx.store.submit(lambda c: c.execute(
            "INSERT INTO held (kind, person, grp, item) VALUES (?, ?, ?, ?)",
            (*key, json.dumps(item, ensure_ascii=False))))
        if self.ctx.timers.get("held", name(*key)) is None:
            self._hold(key, at)

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: write everything held again (into a database made anew)."""
        conn.executemany("INSERT INTO held (kind, person, grp, item) VALUES (?, ?, ?, ?)",
                         [(*key, json.dumps(item, ensure_ascii=False))
                          for key, group in self.groups.items() for item in group.pending])

    def _hold(self, key: Key, at: float) -> None:
        """Arm the group's release for loop time ``at`` (stored as wall-clock time)."""
        wall = time.time() + (at - asyncio.get_running_loop().time())
        self.ctx.timers.arm("held", name(*key), wall)

    def _due(self, timer: str) -> None:
        kind, person, grp = fields(timer)
        if (kind, person, grp) in self.groups:
            self._release((kind, person, grp))

    def _release(self, key: Key, *, stored: bool = True) -> None:
        """Send what the group holds as one message, unless the person limit holds it back
        (another group took the person's last slot): then again when the limit allows.
        ``stored``: the items are rows of ``held`` (they were held, not sent at once)."""
        kind, person, _ = key
        group = self.groups[key]
        now = asyncio.get_running_loop().time()
        free = self._free_at(kind, person)
        if free > now:
            self._hold(key, free)
            return
        items, group.pending = group.pending, []
        went = bool(items) and self.send(kind, person, items)  # stored before the rows go
        if stored:
            self.ctx.store.submit(lambda c: c.execute(
                "DELETE FROM held WHERE kind = ? AND person = ? AND grp = ?", key))
        if went:
            group.last = now
            self.sent.setdefault(person, deque(maxlen=PERSON_LIMIT_MAX)).append(now)

    def _free_at(self, kind: str, person: str) -> float:
        """When (loop time) the person limit next lets a message of ``kind`` to ``person``
        go (an urgent one: now)."""
        limit = self.ctx.cfg.notify.person_limit
        sent = self.sent.get(person)
        if kind == URGENT or limit is None or sent is None or len(sent) < limit.messages:
            return float("-inf")
        return sent[-limit.messages] + limit.per
