"""The ``ups`` device class: one UPS model whatever the protocol. Its points are NUT's
variables; each ``ups.status`` reading and each silence becomes NUT's events as it happens;
``on_battery`` is stored beside the status (a number, to integrate time on battery); and it
brings the power topology (``power``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.core.model import Quality, Reading
from monitor.devices.base import DeviceClass, PointWords, Record, Situation, register
from monitor.devices.ups.power import PowerWatch
from monitor.devices.ups.status import (
    EVENT_FLAGS,
    EVENT_WORDS,
    EVENTS,
    FLAG_WORDS,
    POINT_WORDS,
    UPS,
    VARIABLES,
    Status,
    UpsStatusChanged,
    parse_status,
    status_events,
)
from monitor.words.labels import Language

if TYPE_CHECKING:
    from monitor.core.context import Context
    from monitor.core.part import Part

@register
class Ups(DeviceClass):
    name, label = UPS, ("UPS", "UPS")
    points: ClassVar[Mapping[str, PointWords]] = {
        key: PointWords((zh, en), unit) for key, (zh, en, unit) in POINT_WORDS.items()}
    keys = VARIABLES
    events = EVENT_WORDS
    situations: ClassVar[Mapping[str, Situation]] = {
        "power": Situation(("市电中断", "Mains lost"), 20)}
    tile = ("ups.status", "battery.charge", "battery.runtime", "ups.load")

    def __init__(self, ctx: Context, record: Record):
        super().__init__(ctx, record)
        self.status: dict[str, Status] = {}
        self.silent_since: dict[str, float] = {}
        self.nocomm_sent: set[str] = set()

    @classmethod
    def display(cls, key: str, value: Any, language: Language) -> str | None:
        if key != "ups.status" or not isinstance(value, str):
            return None
        i = 1 if language == "en" else 0
        return ("、" if i == 0 else ", ").join(
            FLAG_WORDS[f][i] if f in FLAG_WORDS else f for f in value.split())

    def parts(self) -> list[Part]:
        return [PowerWatch(self.ctx)]

    def accept(self, device: str, readings: list[Reading]) -> list[str]:
        """Record the events of a new status; its problems (contradictions)."""
        point = f"{device}.ups.status"
        for r in readings:
            if r.point == point and r.quality is Quality.GOOD and isinstance(r.value, str):
                now = parse_status(r.value)
                for event in status_events(self.status.get(device), now):
                    self.record(device, event, self._said(event))
                self._status(device, now)
                return list(now.problems)
        return []

    def derived(self, key: str, value: Any) -> list[tuple[str, float]]:
        if key == "ups.status" and isinstance(value, str):
            return [("on_battery", 1.0 if parse_status(value).on_battery else 0.0)]
        return []

    def announced(self, device: str, event: str) -> None:
        """Record an event a trap announced; the poll that shows it then repeats nothing."""
        self.record(device, event, self._said(event) + " (SNMP trap)")
        flag = EVENT_FLAGS.get(event)
        if flag is not None:
            flags = self.status[device].flags if device in self.status else frozenset()
            if flag == "OB":
                flags -= {"OL"}
            self._status(device, Status(flags | {flag}))

    def comm(self, device: str, ok: bool, at: float) -> None:
        if ok:
            self.silent_since.pop(device, None)
            self.nocomm_sent.discard(device)
        else:
            self.silent_since.setdefault(device, at)

    def tick(self, now: float) -> None:
        """NOCOMM once a UPS has been silent for ``power.nocomm_after``."""
        after = self.ctx.cfg.power.nocomm_after
        for device, since in self.silent_since.items():
            if now - since >= after and device not in self.nocomm_sent:
                self.nocomm_sent.add(device)
                self.record(device, "NOCOMM", self._said("NOCOMM"))

    def _said(self, event: str) -> str:
        return EVENTS[event][1 if self.ctx.cfg.site.language == "en" else 0]

    def _status(self, device: str, status: Status) -> None:
        self.status[device] = status
        self.ctx.bus.publish(UpsStatusChanged(device, status.flags, time.time()))
