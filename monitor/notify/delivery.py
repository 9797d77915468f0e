"""Deliveries: one message to one person, channel by channel and attempt by attempt.

Every delivery is a row of ``deliveries`` and every wait of it a durable timer (``attempt``
for a channel's next attempt, ``round`` for the next round), so a stop neither waits on a
retry nor drops it: after a restart the delivery goes on where it was (an attempt that was
under way when the daemon died is made again).

A round tries the person's channels: every ordinary one at once; the fallback ones once every
ordinary one has failed all its attempts, or, for an urgent (critical) message, right after
their first failed attempt, while they are retried beside it. A failed attempt is retried
after ``notify.retry_delay`` (doubling), ``notify.retries`` times. The first attempt that gets
through ends the delivery. A round that reached the person on no channel is followed by
another after ``notify.resend`` (doubling, at most every ``RESEND_MAX``) for messages that
must get through (``again``); any other ends with its round.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.config.directory import Contact
from monitor.core.context import Context
from monitor.core.schema import declare
from monitor.core.timers import fields, name
from monitor.notify import channels
from monitor.notify.limits import RateLimiter

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, data TEXT NOT NULL);
""")
"""The deliveries under way."""

RESEND_MAX = 600.0
"""The longest wait between rounds to someone no channel reached."""


def resend_at(resend: float, misses: int, now: float | None = None) -> float:
    """When a message that reached nobody ``misses`` times in a row goes again: after
    ``notify.resend``, doubling each time, at most every ``RESEND_MAX``."""
    return (time.time() if now is None else now) + min(resend * 2 ** (misses - 1), RESEND_MAX)


@dataclass
class Delivery:
    """One message to one person, and how far its delivery came."""

    batch: str
    """The message it is part of (the same text to several people)."""
    person: str
    kind: str
    """``page``, ``note`` (what became of an alarm) or ``incident``."""
    subjects: list[str]
    """The alarms it is about; an incident message's: the incident."""
    texts: dict[str, list[str]]
    """Form (``long``, ``short``) -> [title, body]."""
    urgent: bool = False
    again: bool = False
    """Another round after one that reached the person on no channel."""
    drill: bool = False
    step: str = ""
    """An incident message's step (for the timeline)."""
    round: int = 1
    tries: dict[str, int] = field(default_factory=dict)
    """Contact index -> attempts made in this round."""
    given_up: list[int] = field(default_factory=list)
    """Contacts whose attempts of this round are all made and failed."""
    failing: bool = False
    """Every attempt so far failed and none is under way (said once)."""
    heard: bool = False
    """Another person of its batch was reached."""

    @property
    def key(self) -> str:
        return f"{self.batch}#{self.person}"


Outcome = Callable[[Delivery, str], None]
"""(delivery, what): ``reached``, ``failing`` (no attempt got through yet, more to come),
``missed`` (a round reached the person on no channel) or ``dropped``."""
Record = Callable[[Delivery, Contact, bool, str, str], None]
"""(delivery, contact, ok, detail, text): one attempt, for the record."""


ATTEMPTS = "delivery"
"""The one-shot work of sending one attempt."""


class Deliveries:
    def __init__(self, ctx: Context, record: Record, outcome: Outcome,
                 wanted: Callable[[Delivery], bool],
                 renew: Callable[[Delivery], dict[str, list[str]] | None]):
        """``wanted``: whether a delivery still matters (asked before each attempt);
        ``renew``: its texts said anew for another round (None: as they were)."""
        self.ctx, self.record, self.outcome, self.wanted = ctx, record, outcome, wanted
        self.renew = renew
        self.active: dict[str, Delivery] = {}
        self.inflight: dict[str, set[int]] = {}
        self.limiter = RateLimiter()
        ctx.timers.on("attempt", self._attempt_due, legacy=lambda old: tuple(old.rsplit("#", 1)))
        ctx.timers.on("round", self._round_due)

    async def load(self) -> None:
        """Take back the deliveries under way when the daemon stopped; an attempt that was
        being made then (no timer, not given up) is made again at start."""
        rows = await self.ctx.store.read(lambda c: c.execute(
            "SELECT data FROM deliveries ORDER BY rowid").fetchall())
        if rows:
            log.warning("%d messages were being delivered when the daemon stopped: going on "
                        "with them", len(rows))
        now = time.time()
        for (data,) in rows:
            d = Delivery(**json.loads(data))
            self.active[d.key] = d
            if self.ctx.timers.get("round", d.key) is not None:
                continue
            started = [int(i) for i in d.tries if int(i) not in d.given_up]
            if not d.tries:
                started = self._first(d)
            for i in started:
                if self.ctx.timers.get("attempt", name(d.key, i)) is None:
                    self.ctx.timers.arm("attempt", name(d.key, i), now)

    def start(self, deliveries: list[Delivery],
              also: Callable[[sqlite3.Connection], Any] | None = None) -> None:
        """Store the deliveries (with ``also``, in the same transaction) and begin them."""
        rows = [(d.key, _json(d)) for d in deliveries]

        def write(c: sqlite3.Connection) -> None:
            c.executemany("INSERT OR REPLACE INTO deliveries VALUES (?, ?)", rows)
            if also is not None:
                also(c)
        self.ctx.store.submit(write)
        for d in deliveries:
            self.active[d.key] = d
        for d in deliveries:
            for i in self._first(d):
                self._try(d, i)

    def batch(self, batch: str) -> list[Delivery]:
        return [d for d in self.active.values() if d.batch == batch]

    def silent(self, batch: str) -> bool:
        """Nobody of ``batch`` was reached, and every one of them is failing."""
        mine = self.batch(batch)
        return bool(mine) and all(d.failing and not d.heard for d in mine)

    def drop(self, which: Callable[[Delivery], bool]) -> None:
        """End the deliveries ``which`` picks (they no longer matter)."""
        for d in [d for d in self.active.values() if which(d)]:
            self._end(d)

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: every delivery under way again (into a database made anew)."""
        conn.executemany("INSERT OR REPLACE INTO deliveries VALUES (?, ?)",
                         [(d.key, _json(d)) for d in self.active.values()])

    async def close(self) -> None:
        """Wait a little for attempts under way; one cut off is made again after a restart."""
        await self.ctx.supervisor.finish(ATTEMPTS, within=5)

    # -- rounds and attempts -------------------------------------------------------------------
    def _contacts(self, d: Delivery) -> list[Contact]:
        person = self.ctx.cfg.person(d.person)
        return list(person.contacts) if person is not None else []

    def _first(self, d: Delivery) -> list[int]:
        """The contacts a round begins with: the ordinary ones (the fallback ones when there
        are no others)."""
        contacts = self._contacts(d)
        ordinary = [i for i, c in enumerate(contacts) if not c.fallback]
        return ordinary or list(range(len(contacts)))

    def _try(self, d: Delivery, index: int) -> None:
        contacts = self._contacts(d)
        if index >= len(contacts):
            self._failed(d, index)
            return
        d.tries[str(index)] = d.tries.get(str(index), 0) + 1
        self.inflight.setdefault(d.key, set()).add(index)
        self._save(d)
        self.ctx.supervisor.run_once(ATTEMPTS, self._attempt(d, contacts[index], index))

    async def _attempt(self, d: Delivery, contact: Contact, index: int) -> None:
        """One attempt; whatever goes wrong in it (a secret file that cannot be read, a
        sender that raises) is a failed attempt, recorded with its reason."""
        title, body = d.texts["short" if contact.channel == "sms" else "long"]
        try:
            ok, said = await self._send(d, contact, title, body)
        except Exception as err:  # any fault of a channel is its failure;
            # the type only: a URL (with its token) may be in the exception's words
            log.warning("delivery %s: an attempt on %s raised %s", d.key, contact.channel,
                        type(err).__name__)
            ok, said = False, f"cannot send: {type(err).__name__}"
        if said is None:  # reached on another channel, or dropped, while it waited its turn
            self.inflight.get(d.key, set()).discard(index)
            return
        n = d.tries.get(str(index), 1)
        detail = said if n == 1 and d.round == 1 else \
            f"{said} (attempt {n}" + (f", round {d.round}" if d.round > 1 else "") + ")"
        self.record(d, contact, ok, detail, f"{title}\n{body}")
        self.inflight.get(d.key, set()).discard(index)
        if self.active.get(d.key) is not d:
            return
        if ok:
            for other in self.batch(d.batch):
                other.heard = True
                self._save(other)
            self._end(d)
            self.outcome(d, "reached")
        else:
            self._failed(d, index)

    async def _send(self, d: Delivery, contact: Contact, title: str, body: str
                    ) -> tuple[bool, str | None]:
        """Send within the channel's rate limit: (ok, detail); detail None when the
        delivery ended while it waited its turn (nothing was sent)."""
        url = contact.resolved()
        await self.limiter.turn(url, channels.scheme(url))
        if self.active.get(d.key) is not d:
            return False, None
        sent = await channels.send(url, title, body, self.ctx.cfg.notify.timeout)
        return sent.ok, sent.detail

    def _failed(self, d: Delivery, index: int) -> None:
        """An attempt failed: retry it later, start the fallback, or end the round."""
        cfg = self.ctx.cfg.notify
        contacts = self._contacts(d)
        n = d.tries.get(str(index), 1)
        if n <= cfg.retries and index < len(contacts):
            self.ctx.timers.arm("attempt", name(d.key, index),
                                time.time() + cfg.retry_delay * 2 ** (n - 1))
        elif index not in d.given_up:
            d.given_up.append(index)
        ordinary = [i for i, c in enumerate(contacts) if not c.fallback]
        for i in ordinary:  # one added since the round began (a reload) is tried too
            if str(i) not in d.tries:
                self._try(d, i)
        waiting = [i for i, c in enumerate(contacts)
                   if c.fallback and str(i) not in d.tries] if ordinary else []
        if waiting and (d.urgent or all(i in d.given_up for i in ordinary)):
            for i in waiting:
                self._try(d, i)
        quiet = not self.inflight.get(d.key)
        newly = quiet and not d.failing
        d.failing = d.failing or quiet
        self._save(d)
        if not quiet:
            return
        if newly:
            self.outcome(d, "failing")
        if self.active.get(d.key) is d and all(i in d.given_up for i in range(len(contacts))):
            self._missed(d)

    def _missed(self, d: Delivery) -> None:
        """A round reached the person on no channel: another later, or the end (``dropped``
        when the person has no channel left to try)."""
        if not d.again or not self._contacts(d):
            self._end(d)
            self.outcome(d, "missed" if self._contacts(d) else "dropped")
            return
        due = resend_at(self.ctx.cfg.notify.resend, d.round)
        d.round, d.tries, d.given_up = d.round + 1, {}, []
        self._save(d)
        self.ctx.timers.arm("round", d.key, due)
        self.outcome(d, "missed")

    def _attempt_due(self, timer: str) -> None:
        key, index = fields(timer)
        d = self.active.get(key)
        if d is not None and self._still(d):
            self._try(d, int(index))

    def _round_due(self, key: str) -> None:
        """The next round, with the message said anew (a fresh link, what still holds)."""
        d = self.active.get(key)
        if d is None or not self._still(d):
            return
        d.texts = self.renew(d) or d.texts
        first = self._first(d)
        if not first:  # the person has no channel left
            self._missed(d)
        for i in first:
            self._try(d, i)

    def _still(self, d: Delivery) -> bool:
        """Whether ``d`` still matters; one that no longer does ends here."""
        if self.wanted(d):
            return True
        self._end(d)
        self.outcome(d, "dropped")
        return False

    def _end(self, d: Delivery) -> None:
        self.active.pop(d.key, None)
        self.inflight.pop(d.key, None)
        for i in {int(i) for i in d.tries} | set(range(len(self._contacts(d)))):
            self.ctx.timers.cancel("attempt", name(d.key, i))
        self.ctx.timers.cancel("round", d.key)
        key = d.key
        self.ctx.store.submit(lambda c: c.execute("DELETE FROM deliveries WHERE key = ?",
                                                  (key,)))

    def _save(self, d: Delivery) -> None:
        if self.active.get(d.key) is not d:
            return
        row = (d.key, _json(d))
        self.ctx.store.submit(lambda c: c.execute(
            "UPDATE deliveries SET data = ? WHERE key = ?", (row[1], row[0])))


def _json(d: Delivery) -> str:
    return json.dumps(asdict(d), ensure_ascii=False)
