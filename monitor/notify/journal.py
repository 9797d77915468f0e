"""The journal of every delivery attempt (``notifications``): one row per attempt and per
alarm or incident it was about; the only place that reads or writes it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from monitor.core.schema import declare

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS notifications (seq INTEGER PRIMARY KEY, ts REAL NOT NULL,
                                          alarm TEXT, person TEXT, channel TEXT, ok INTEGER,
                                          detail TEXT, text TEXT, paging INTEGER, step TEXT);
CREATE INDEX IF NOT EXISTS notifications_alarm ON notifications (alarm, ts);
""", (("notifications", "step", "TEXT"),))
"""``alarm`` is the alarm or incident the attempt was about; ``paging``: a page (not a note)."""


@dataclass(frozen=True)
class Attempt:
    ts: float
    subjects: list[str]
    person: str
    channel: str
    ok: bool
    detail: str
    text: str
    paging: bool
    step: str = ""

    def write(self, conn: sqlite3.Connection) -> None:
        """Writer op: one row per subject."""
        conn.executemany(
            "INSERT INTO notifications (ts, alarm, person, channel, ok, detail, text, paging, "
            "step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(self.ts, s, self.person, self.channel, self.ok, self.detail, self.text,
              self.paging, self.step or None) for s in self.subjects])


def recent(conn: sqlite3.Connection, subject: str | None, limit: int) -> list[dict[str, Any]]:
    """Attempts, newest first (of one alarm or incident, or of all)."""
    rows = conn.execute(
        "SELECT ts, alarm, person, channel, ok, detail, text FROM notifications"
        + (" WHERE alarm = ?" if subject else "") + " ORDER BY seq DESC LIMIT ?",
        (subject, limit) if subject else (limit,)).fetchall()
    keys = ("ts", "alarm", "person", "channel", "ok", "detail", "text")
    return [{**dict(zip(keys, r, strict=True)), "ok": bool(r[4])} for r in rows]


def attempts_of(conn: sqlite3.Connection, subject: str) -> list[tuple[Any, ...]]:
    """(ts, person, channel, ok, detail, step, the message's first line) of every attempt
    about ``subject``, in order."""
    return conn.execute(
        "SELECT ts, person, channel, ok, detail, step, "
        "substr(text, 1, instr(text || char(10), char(10)) - 1) "
        "FROM notifications WHERE alarm = ? ORDER BY seq", (subject,)).fetchall()


def last_reached(conn: sqlite3.Connection, alarm: str, since: float) -> float | None:
    """When a page for ``alarm`` last reached someone, since ``since`` (by index)."""
    (at,) = conn.execute("SELECT MAX(ts) FROM notifications WHERE alarm = ? AND ts >= ? AND "
                         "ok AND paging", (alarm, since)).fetchone()
    return float(at) if at is not None else None


def paged(conn: sqlite3.Connection, alarm: str, since: float) -> list[str]:
    """Who was paged for ``alarm`` since ``since``."""
    return [n for (n,) in conn.execute("SELECT DISTINCT person FROM notifications WHERE "
                                       "alarm = ? AND ts >= ? AND paging", (alarm, since))]
