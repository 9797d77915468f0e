"""Alarms and their ISA-18.2 lifecycle; on/off delays and shelving on durable timers."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from monitor.alarms.model import Alarm, AlarmDef, AlarmState, Inhibitor, escape
from monitor.alarms.review import Period, Row
from monitor.core.bus import AlarmEvent, Bus
from monitor.core.schema import declare
from monitor.core.store import Store
from monitor.core.timers import Timers, fields, name

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS alarms (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_log (seq INTEGER PRIMARY KEY, alarm TEXT NOT NULL,
                                      ts REAL NOT NULL, action TEXT NOT NULL, state TEXT,
                                      who TEXT, note TEXT, value);
CREATE INDEX IF NOT EXISTS alarm_log_alarm ON alarm_log (alarm, ts);
""")
"""Each alarm as it stands, and its journal."""


SHELVING = ("shelved_until", "shelved_by", "shelve_note")
SOURCE_CHANGES = ("raised", "cleared", "acknowledged", "retired")
"""Actions after which an alarm may hold or stop holding others (a latched one ends with
its acknowledgement)."""


class AlarmError(Exception):
    """An operator request that cannot be carried out (unknown alarm, nothing to ack)."""


class AlarmManager:
    """Holds every alarm; rules feed it conditions, operators ack and shelve. Transitions go
    to the store (``alarms``, ``alarm_log``) and onto the bus as ``AlarmEvent``."""

    def __init__(self, store: Store, bus: Bus, timers: Timers):
        self.store, self.bus, self.timers = store, bus, timers
        self.alarms: dict[str, Alarm] = {}
        self.defs: dict[str, AlarmDef] = {}
        self.inhibitor: Inhibitor | None = None
        self._operator = asyncio.Lock()
        """Operator actions one at a time (each waits for its commit)."""
        self._came_due: dict[str, bool] = {}
        """Delays that ran out while the condition was unknown (since a restart): the next
        reading that confirms it changes the alarm at once."""
        timers.on("alarm", self._delay_due, legacy=lambda old: tuple(old.rsplit(":", 1)))
        timers.on("shelve", self._shelve_due)

    async def load(self) -> None:
        """Restore the alarms of the last run (their timers come back with the timers); one
        defined already learns from its definition what it is about (a row of an earlier
        version knows no device, feed or situation)."""
        rows = await self.store.read(lambda c: c.execute("SELECT data FROM alarms").fetchall())
        for (data,) in rows:
            alarm = Alarm(**json.loads(data))
            defn = self.defs.get(alarm.id)
            if defn is not None:
                alarm.device = defn.device or alarm.device
                alarm.feed, alarm.situation = defn.feed, defn.situation
            self.alarms[alarm.id] = alarm
            if alarm.shelved_until is not None and self.timers.get("shelve", alarm.id) is None:
                self.timers.arm("shelve", alarm.id, alarm.shelved_until)

    def define(self, defn: AlarmDef) -> None:
        self.defs[defn.id] = defn
        alarm = self.alarms.get(defn.id)
        if alarm is not None:
            defn.describe(alarm)

    def undefine(self, ids: Iterable[str]) -> None:
        """Forget these definitions (before a reload defines what is configured now)."""
        for alarm_id in list(ids):
            self.defs.pop(alarm_id, None)

    def _alarm(self, defn: AlarmDef) -> Alarm:
        alarm = self.alarms.get(defn.id)
        if alarm is None:
            alarm = self.alarms[defn.id] = defn.new()
        return alarm

    def holds(self, alarm_id: str) -> bool:
        alarm = self.alarms.get(alarm_id)
        return alarm is not None and bool(alarm.condition)

    def is_active(self, alarm_id: str) -> bool:
        alarm = self.alarms.get(alarm_id)
        return alarm is not None and alarm.active

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
        on, off = self.timers.get("alarm", name(alarm_id, "on")), \
            self.timers.get("alarm", name(alarm_id, "off"))
        if condition == alarm.active:
            if on is not None or off is not None:
                self._disarm(alarm_id)
            return
        if self._came_due.pop(alarm_id, None) == condition:
            self._transition(alarm, condition, value, now)
            return
        pending = on if condition else off
        if pending is not None:
            if now >= pending:
                self._transition(alarm, condition, value, now)
            return
        delay = defn.on_delay if condition else defn.off_delay
        if delay <= 0:
            self._transition(alarm, condition, value, now)
        else:
            self._disarm(alarm_id)
            self.timers.arm("alarm", name(alarm_id, "on" if condition else "off"), now + delay)

    def _disarm(self, alarm_id: str) -> None:
        self.timers.cancel("alarm", name(alarm_id, "on"))
        self.timers.cancel("alarm", name(alarm_id, "off"))

    def _delay_due(self, timer: str) -> None:
        alarm_id, target = fields(timer)
        alarm = self.alarms.get(alarm_id)
        if alarm is None or alarm.condition is None:
            self._came_due[alarm_id] = target == "on"
            return
        if alarm.condition == (target == "on") and alarm.active != alarm.condition:
            self._transition(alarm, alarm.condition, alarm.value, time.time())

    def _transition(self, alarm: Alarm, active: bool, value: Any, now: float) -> None:
        self._disarm(alarm.id)
        alarm.active = active
        if active:
            alarm.acked, alarm.raised_at, alarm.cleared_at = False, now, None
            alarm.acked_at = alarm.acked_by = alarm.ack_note = None
            alarm.value = value
            alarm.suppressed_by = self._inhibited(alarm)
            log.warning("alarm %s raised (%s): %s", alarm.id, alarm.severity, alarm.message)
        else:
            alarm.cleared_at = now
            log.info("alarm %s cleared", alarm.id)
        self._record(alarm, "raised" if active else "cleared", now)

    # -- suppression by design ------------------------------------------------------------
    def _inhibited(self, alarm: Alarm) -> str | None:
        if self.inhibitor is None:
            return None
        return self.inhibitor.reason(alarm, self.alarms.values())

    def refresh_suppression(self) -> None:
        """Judge every alarm against the inhibition rules again (a source alarm came or
        went, or the rules changed)."""
        for alarm in list(self.alarms.values()):
            reason = self._inhibited(alarm) if alarm.active else None
            if alarm.suppressed_by != reason:
                alarm.suppressed_by = reason
                self._record(alarm, "suppressed" if reason else "unsuppressed", time.time(),
                             None, reason)

    # -- operators -----------------------------------------------------------------------
    async def acknowledge(self, alarm_id: str, who: str, note: str = "") -> Alarm:
        async with self._operator:
            alarm = self._get(alarm_id)
            if alarm.acked:
                raise AlarmError(
                    f"alarm {alarm_id} was already acknowledged by {alarm.acked_by} at "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(alarm.acked_at))}"
                    if alarm.acked_by and alarm.acked_at else
                    f"alarm {alarm_id} needs no acknowledgement")
            now = time.time()
            changes: dict[str, Any] = {"acked": True, "acked_at": now, "acked_by": who,
                                       "ack_note": note}
            defn = self.defs.get(alarm_id)
            if defn is not None and defn.latched and alarm.active:  # it ends with the ack
                changes.update(active=False, cleared_at=now, condition=False)
            await self._commit(alarm, changes, "acknowledged", now, who, note)
        log.info("alarm %s acknowledged by %s", alarm_id, escape(who))
        return alarm

    async def note(self, alarm_id: str, who: str, note: str) -> Alarm:
        """A note on the alarm's journal; its state does not change."""
        async with self._operator:
            alarm = self._get(alarm_id)
            await self._commit(alarm, {}, "noted", time.time(), who, note)
        return alarm

    async def shelve(self, alarm_id: str, who: str, note: str, duration: float) -> Alarm:
        async with self._operator:
            alarm = self._get(alarm_id)
            now = time.time()
            await self._commit(alarm, {"shelved_until": now + duration, "shelved_by": who,
                                       "shelve_note": note}, "shelved", now, who, note)
            self.timers.arm("shelve", alarm_id, now + duration)
        log.info("alarm %s shelved by %s for %g s", alarm_id, escape(who), duration)
        return alarm

    async def unshelve(self, alarm_id: str, who: str, note: str = "") -> Alarm:
        async with self._operator:
            alarm = self._get(alarm_id)
            if alarm.shelved_until is None:
                raise AlarmError(f"alarm {alarm_id} is not shelved")
            await self._commit(alarm, dict.fromkeys(SHELVING), "unshelved", time.time(), who,
                               note)
            self.timers.cancel("shelve", alarm_id)
        return alarm

    def _shelve_due(self, alarm_id: str) -> None:
        alarm = self.alarms.get(alarm_id)
        if alarm is not None and alarm.shelved_until is not None:
            alarm.shelved_until = alarm.shelved_by = alarm.shelve_note = None
            log.info("alarm %s: shelving expired", alarm_id)
            self._record(alarm, "unshelved", time.time(), "system", "shelving expired")

    async def _commit(self, alarm: Alarm, changes: dict[str, Any], action: str, now: float,
                      who: str, note: str) -> None:
        """An operator's change: committed first, then applied; when the database cannot
        commit it (StoreUnavailable), nothing changes."""
        candidate = replace(alarm, **changes)
        await self.store.call(self._writer(candidate, action, now, who, note))
        for key, value in changes.items():
            setattr(alarm, key, value)
        if alarm != candidate:  # something else changed it meanwhile: store the whole again
            blob = _blob(alarm)
            self.store.submit(lambda c: c.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?)",
                                                  (alarm.id, blob)))
        self._publish(alarm, action, now, who, note)

    def _get(self, alarm_id: str) -> Alarm:
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            raise AlarmError(f"no alarm {alarm_id!r}")
        return alarm

    def current(self) -> list[Alarm]:
        """Alarms an operator should see: anything not back to normal, and shelved ones."""
        return [a for a in self.alarms.values() if a.state() is not AlarmState.NORMAL]

    def retire_undefined(self) -> list[str]:
        """Alarms whose device or rule is gone from the configuration: cleared (with a log
        entry saying why) and forgotten. Returns their ids."""
        gone = [a for a in self.alarms.values() if a.id not in self.defs]
        now = time.time()
        for alarm in gone:
            if alarm.active or not alarm.acked or alarm.shelved_until is not None:
                alarm.active, alarm.acked, alarm.cleared_at = False, True, now
                alarm.shelved_until = alarm.shelved_by = alarm.shelve_note = None
                alarm.suppressed_by = None
                log.info("alarm %s retired: its device or rule is no longer configured",
                         alarm.id)
                self._record(alarm, "retired", now, "system",
                             "its device or rule is no longer configured")
            del self.alarms[alarm.id]
            self._disarm(alarm.id)
            self.timers.cancel("shelve", alarm.id)
            alarm_id = alarm.id
            self.store.submit(lambda c, i=alarm_id: c.execute(  # type: ignore[misc]
                "DELETE FROM alarms WHERE id = ?", (i,)))
        return [a.id for a in gone]

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: write every alarm again (into a database made anew)."""
        conn.executemany("INSERT OR REPLACE INTO alarms VALUES (?, ?)",
                         [(a.id, _blob(a)) for a in self.alarms.values()])

    def _writer(self, alarm: Alarm, action: str, now: float, who: str | None,
                note: str | None) -> Callable[[sqlite3.Connection], None]:
        blob, state = _blob(alarm), alarm.state().value
        value = alarm.value if isinstance(alarm.value, int | float | str) else None
        alarm_id = alarm.id

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?)", (alarm_id, blob))
            c.execute("INSERT INTO alarm_log (alarm, ts, action, state, who, note, value) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (alarm_id, now, action, state, who, note, value))
        return write

    def _record(self, alarm: Alarm, action: str, now: float, who: str | None = None,
                note: str | None = None) -> None:
        self.store.submit(self._writer(alarm, action, now, who, note))
        self._publish(alarm, action, now, who, note)

    def _publish(self, alarm: Alarm, action: str, now: float, who: str | None,
                 note: str | None) -> None:
        self.bus.publish(AlarmEvent(alarm.id, action, alarm.state().value, alarm.severity,
                                    alarm.message, alarm.active, alarm.acked, now, who, note))
        if action in SOURCE_CHANGES and self.inhibitor is not None \
                and self.inhibitor.is_source(alarm):
            self.refresh_suppression()


def _blob(alarm: Alarm) -> str:
    data = alarm.as_dict()
    data.pop("state")
    return json.dumps(data, default=str)


def alarm_log(conn: sqlite3.Connection, alarm_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The alarm history, newest first."""
    sql = "SELECT alarm, ts, action, state, who, note, value FROM alarm_log"
    args: tuple[Any, ...] = ()
    if alarm_id:
        sql, args = sql + " WHERE alarm = ?", (alarm_id,)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
    keys = ("alarm", "ts", "action", "state", "who", "note", "value")
    return [dict(zip(keys, r, strict=True)) for r in rows]


ACTIVITY_SQL = ("(action IN ('raised', 'cleared', 'retired') OR (action = 'acknowledged' AND "
                "state = 'normal'))")
SHELVING_SQL = "action IN ('shelved', 'unshelved', 'retired')"


def period_rows(conn: sqlite3.Connection, period: Period) -> list[Row]:
    """The period's log entries, and before them each alarm's last raise or end and its last
    shelve or unshelve: what was active or shelved when the period began."""
    before = ("SELECT seq, alarm, ts, action, state, who, note FROM alarm_log WHERE seq IN "
              "(SELECT MAX(seq) FROM alarm_log WHERE ts < :start AND {} GROUP BY alarm)")
    rows = conn.execute(
        f"{before.format(ACTIVITY_SQL)} UNION {before.format(SHELVING_SQL)} UNION "
        "SELECT seq, alarm, ts, action, state, who, note FROM alarm_log "
        "WHERE ts >= :start AND ts < :end ORDER BY seq",
        {"start": period.start, "end": period.until}).fetchall()
    return [Row(*r) for r in rows]
