"""The recorder: a bus subscriber that keeps device events, alarm transitions and incident
milestones (events table, and ``event``, ``alarm`` and ``incident`` lines for InfluxDB)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from monitor.core.bus import AlarmEvent, DeviceEvent, IncidentMilestone
from monitor.core.context import Context
from monitor.core.lineproto import line, tag_set
from monitor.core.model import Reading
from monitor.core.part import Part
from monitor.core.schema import declare

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL,
                                   device TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT);
""")
"""Every device event."""


class Recorder(Part):
    name = "recorder"

    def __init__(self, ctx: Context, write: Callable[[list[Reading], list[str]], None],
                 tags: Callable[[str], str]):
        self.ctx, self.write, self.tags = ctx, write, tags
        self.subscription = ctx.bus.subscribe("recorder", self.on_event,
                                              kinds=(DeviceEvent, AlarmEvent,
                                                     IncidentMilestone), maxsize=100_000)

    def on_event(self, event: DeviceEvent | AlarmEvent | IncidentMilestone) -> None:
        if isinstance(event, DeviceEvent):
            self._device_event(event)
        elif isinstance(event, AlarmEvent):
            self._alarm_event(event)
        else:
            self._milestone(event)

    def _device_event(self, e: DeviceEvent) -> None:
        tags = self.tags(e.device) or tag_set({"site": self.ctx.cfg.site.name,
                                                "device": e.device})
        text = line("event", tags + tag_set({"kind": e.kind}), (("message", e.message),), e.ts)
        assert text is not None
        self.write([], [text])
        self.ctx.store.submit(lambda c: c.execute(
            "INSERT INTO events (ts, device, kind, detail) VALUES (?, ?, ?, ?)",
            (e.ts, e.device, e.kind, e.message)))

    def _alarm_event(self, e: AlarmEvent) -> None:
        tags = tag_set({"site": self.ctx.cfg.site.name, "alarm": e.alarm,
                        "severity": e.severity})
        text = line("alarm", tags, (("active", 1.0 if e.active else 0.0),
                                    ("acked", 1.0 if e.acked else 0.0),
                                    ("state", e.state), ("action", e.action),
                                    ("message", e.message)), e.ts)
        assert text is not None
        self.write([], [text])

    def _milestone(self, e: IncidentMilestone) -> None:
        tags = tag_set({"site": self.ctx.cfg.site.name, "playbook": e.playbook,
                        "scope": e.scope, "drill": "true" if e.drill else "false",
                        "kind": e.kind, "step": e.step})
        text = line("incident", tags, (("id", e.incident), ("label", e.label),
                                       ("actor", e.actor), ("text", e.text)), e.ts)
        assert text is not None
        self.write([], [text])


def recent_events(conn: sqlite3.Connection, device: str | None, since: float,
                  limit: int) -> list[dict[str, Any]]:
    sql = "SELECT ts, device, kind, detail FROM events WHERE ts >= ?"
    args: list[Any] = [since]
    if device:
        sql += " AND device = ?"
        args.append(device)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
    return [{"ts": ts, "device": dev, "kind": kind, "message": detail}
            for ts, dev, kind, detail in rows]
