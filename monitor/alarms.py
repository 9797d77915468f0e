"""Alarms and their ISA-18.2 lifecycle, with on/off delays kept as stored due times."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from monitor.config.model import Severity
from monitor.store import Store

log = logging.getLogger(__name__)


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKNOWLEDGED = "active_unacknowledged"
    ACTIVE_ACKNOWLEDGED = "active_acknowledged"
    CLEARED_UNACKNOWLEDGED = "cleared_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class AlarmDef:
    """What raises an alarm: id, severity, message, delays, and the point it watches."""

    id: str
    severity: Severity
    message: str
    point: str | None = None
    on_delay: float = 0.0
    off_delay: float = 0.0


@dataclass
class Alarm:
    id: str
    severity: str
    message: str
    point: str | None = None
    active: bool = False
    acked: bool = True
    value: Any = None
    raised_at: float | None = None
    cleared_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_note: str | None = None
    suppressed_by: str | None = None
    condition: bool | None = field(default=None, repr=False)

    def state(self, now: float | None = None) -> AlarmState:
        now = time.time() if now is None else now
        if self.shelved_until is not None and self.shelved_until > now:
            return AlarmState.SHELVED
        if self.suppressed_by is not None and self.active:
            return AlarmState.SUPPRESSED
        if self.active:
            return (AlarmState.ACTIVE_ACKNOWLEDGED if self.acked
                    else AlarmState.ACTIVE_UNACKNOWLEDGED)
        return AlarmState.NORMAL if self.acked else AlarmState.CLEARED_UNACKNOWLEDGED

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        data = asdict(self)
        data.pop("condition")
        data["state"] = self.state(now).value
        return data


class AlarmError(Exception):
    """An operator request that cannot be carried out (unknown alarm, nothing to ack)."""


@dataclass
class _Pending:
    target: bool
    due: float
    handle: asyncio.TimerHandle | None = None


Listener = Callable[[Alarm, str], None]


class AlarmManager:
    """Holds every alarm; rules feed it conditions, operators ack and shelve."""

    def __init__(self, store: Store):
        self.store = store
        self.alarms: dict[str, Alarm] = {}
        self.defs: dict[str, AlarmDef] = {}
        self._pending: dict[str, _Pending] = {}
        self.listeners: list[Listener] = []

    async def load(self) -> None:
        """Restore alarms and re-arm the delay timers that were pending at the last stop."""
        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            return (conn.execute("SELECT data FROM alarms").fetchall(),
                    conn.execute("SELECT key, due FROM timers WHERE key LIKE 'alarm:%'")
                    .fetchall())
        rows, timers = await self.store.read(read)
        for (data,) in rows:
            alarm = Alarm(**json.loads(data))
            self.alarms[alarm.id] = alarm
        for key, due in timers:
            alarm_id, _, target = key.removeprefix("alarm:").rpartition(":")
            self._arm(alarm_id, target == "on", due, persist=False)

    def define(self, defn: AlarmDef) -> None:
        self.defs[defn.id] = defn
        alarm = self.alarms.get(defn.id)
        if alarm is not None:
            alarm.severity, alarm.message = defn.severity.value, defn.message

    def _alarm(self, defn: AlarmDef) -> Alarm:
        alarm = self.alarms.get(defn.id)
        if alarm is None:
            alarm = self.alarms[defn.id] = Alarm(defn.id, defn.severity.value, defn.message,
                                                 defn.point)
        return alarm

    # -- conditions ----------------------------------------------------------------------
    def set_condition(self, alarm_id: str, condition: bool, value: Any = None,
                      now: float | None = None, message: str | None = None) -> None:
        """The watched condition now holds (or not); raise or clear after the delays."""
        now = time.time() if now is None else now
        defn = self.defs[alarm_id]
        alarm = self._alarm(defn)
        alarm.condition = condition
        if condition:
            alarm.value = value
            if message:
                alarm.message = message
        pending = self._pending.get(alarm_id)
        if condition == alarm.active:
            if pending is not None:
                self._disarm(alarm_id)
            return
        if pending is not None and pending.target == condition:
            if now >= pending.due:
                self._transition(alarm, condition, value, now)
            return
        delay = defn.on_delay if condition else defn.off_delay
        if delay <= 0:
            self._transition(alarm, condition, value, now)
        else:
            self._arm(alarm_id, condition, now + delay)

    def _arm(self, alarm_id: str, target: bool, due: float, *, persist: bool = True) -> None:
        self._disarm(alarm_id)
        pending = self._pending[alarm_id] = _Pending(target, due)
        loop = asyncio.get_running_loop()
        pending.handle = loop.call_later(max(0.0, due - time.time()), self._fire, alarm_id)
        if persist:
            key = f"alarm:{alarm_id}:{'on' if target else 'off'}"
            self.store.submit(lambda c: (
                c.execute("DELETE FROM timers WHERE key LIKE ?", (f"alarm:{alarm_id}:%",)),
                c.execute("INSERT INTO timers VALUES (?, ?)", (key, due))))

    def _disarm(self, alarm_id: str) -> None:
        pending = self._pending.pop(alarm_id, None)
        if pending is None:
            return
        if pending.handle is not None:
            pending.handle.cancel()
        self.store.submit(lambda c: c.execute("DELETE FROM timers WHERE key LIKE ?",
                                              (f"alarm:{alarm_id}:%",)))

    def _fire(self, alarm_id: str) -> None:
        pending = self._pending.get(alarm_id)
        alarm = self.alarms.get(alarm_id)
        if pending is None or alarm is None or alarm.condition is None:
            return  # condition unknown since a restart: the next reading decides
        if alarm.condition == pending.target:
            self._transition(alarm, pending.target, alarm.value, time.time())

    def _transition(self, alarm: Alarm, active: bool, value: Any, now: float) -> None:
        self._disarm(alarm.id)
        alarm.active = active
        if active:
            alarm.acked, alarm.raised_at, alarm.cleared_at = False, now, None
            alarm.acked_at = alarm.acked_by = alarm.ack_note = None
            alarm.value = value
            log.warning("alarm %s raised (%s): %s", alarm.id, alarm.severity, alarm.message)
        else:
            alarm.cleared_at = now
            log.info("alarm %s cleared", alarm.id)
        self._record(alarm, "raised" if active else "cleared", now)

    # -- operators -----------------------------------------------------------------------
    def acknowledge(self, alarm_id: str, who: str, note: str = "") -> Alarm:
        alarm = self._get(alarm_id)
        if alarm.acked:
            raise AlarmError(f"alarm {alarm_id} needs no acknowledgement")
        now = time.time()
        alarm.acked, alarm.acked_at, alarm.acked_by, alarm.ack_note = True, now, who, note
        log.info("alarm %s acknowledged by %s", alarm_id, who)
        self._record(alarm, "acknowledged", now, who, note)
        return alarm

    def shelve(self, alarm_id: str, who: str, note: str, duration: float) -> Alarm:
        alarm = self._get(alarm_id)
        now = time.time()
        alarm.shelved_until, alarm.shelved_by, alarm.shelve_note = now + duration, who, note
        self._record(alarm, "shelved", now, who, note)
        asyncio.get_running_loop().call_later(duration, self._unshelve_due, alarm_id)
        return alarm

    def unshelve(self, alarm_id: str, who: str, note: str = "") -> Alarm:
        alarm = self._get(alarm_id)
        if alarm.shelved_until is None:
            raise AlarmError(f"alarm {alarm_id} is not shelved")
        alarm.shelved_until = alarm.shelved_by = alarm.shelve_note = None
        self._record(alarm, "unshelved", time.time(), who, note)
        return alarm

    def _unshelve_due(self, alarm_id: str) -> None:
        alarm = self.alarms.get(alarm_id)
        if alarm and alarm.shelved_until is not None and alarm.shelved_until <= time.time():
            self.unshelve(alarm_id, "system", "shelving expired")

    def _get(self, alarm_id: str) -> Alarm:
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            raise AlarmError(f"no alarm {alarm_id!r}")
        return alarm

    def suppress(self, alarm_id: str, reason: str | None) -> None:
        """Mark an alarm suppressed by design (kept and shown, not annunciated), or lift it."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None or alarm.suppressed_by == reason:
            return
        alarm.suppressed_by = reason
        self._record(alarm, "suppressed" if reason else "unsuppressed", time.time(),
                     None, reason)

    def current(self) -> list[Alarm]:
        """Alarms an operator should see: anything not back to normal, and shelved ones."""
        now = time.time()
        return [a for a in self.alarms.values() if a.state(now) is not AlarmState.NORMAL
                or a.shelved_until is not None]

    def _record(self, alarm: Alarm, action: str, now: float, who: str | None = None,
                note: str | None = None) -> None:
        data = alarm.as_dict(now)
        state = data.pop("state")
        blob = json.dumps(data, default=str)
        value = alarm.value if isinstance(alarm.value, int | float | str) else None
        self.store.submit(lambda c: (
            c.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?)", (alarm.id, blob)),
            c.execute("INSERT INTO alarm_log (alarm, ts, action, state, who, note, value) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (alarm.id, now, action, state, who, note, value))))
        for listener in self.listeners:
            listener(alarm, action)


def alarm_log(conn: sqlite3.Connection, alarm_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The alarm history, newest first."""
    sql = "SELECT alarm, ts, action, state, who, note, value FROM alarm_log"
    args: tuple[Any, ...] = ()
    if alarm_id:
        sql, args = sql + " WHERE alarm = ?", (alarm_id,)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
    keys = ("alarm", "ts", "action", "state", "who", "note", "value")
    return [dict(zip(keys, r, strict=True)) for r in rows]
