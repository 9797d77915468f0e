"""One UPS model whatever the protocol: NUT's status flags and NUT's event vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from monitor.model import Quality, Reading

STATUS_FLAGS: dict[str, str] = {
    "OL": "市电供电", "OB": "电池供电", "LB": "电池电量低", "HB": "电池电量高",
    "RB": "需更换电池", "CHRG": "充电中", "DISCHRG": "放电中", "BYPASS": "旁路供电",
    "CAL": "校准中", "OFF": "输出关闭", "OVER": "过载", "TRIM": "降压", "BOOST": "升压",
    "FSD": "强制关机", "ALARM": "告警", "WAIT": "等待驱动数据",
}

EVENTS: dict[str, str] = {
    "ONLINE": "市电恢复, UPS 回到市电供电", "ONBATT": "市电中断, UPS 转电池供电",
    "LOWBATT": "UPS 电池电量低", "FSD": "UPS 强制关机 (FSD)", "COMMOK": "与 UPS 通信恢复",
    "COMMBAD": "与 UPS 通信中断", "NOCOMM": "长时间无法与 UPS 通信",
    "REPLBATT": "UPS 电池需要更换", "BYPASS": "UPS 转旁路供电", "OVERLOAD": "UPS 过载",
}

EVENT_FLAGS = {"ONBATT": "OB", "LOWBATT": "LB", "FSD": "FSD", "REPLBATT": "RB",
               "BYPASS": "BYPASS", "OVERLOAD": "OVER"}
"""The status flag an event implies (a trap may announce it before the next poll shows it)."""

_RAISED_BY = (("LB", "LOWBATT"), ("FSD", "FSD"), ("RB", "REPLBATT"), ("BYPASS", "BYPASS"),
              ("OVER", "OVERLOAD"))

VARIABLES = frozenset("""
ups.status ups.alarm ups.load ups.temperature ups.realpower ups.power ups.test.result
ups.beeper.status ups.delay.shutdown ups.timer.shutdown ups.mfr ups.model ups.serial
ups.firmware battery.charge battery.charge.low battery.charge.warning battery.runtime
battery.runtime.low battery.voltage battery.voltage.nominal battery.temperature battery.date
battery.type battery.current input.voltage input.voltage.nominal input.frequency input.current
input.transfer.low input.transfer.high input.load output.voltage output.voltage.nominal
output.frequency output.current output.load device.mfr device.model device.serial device.type
""".split())
"""NUT's standard variable names: the canonical point keys of the ``ups`` device class."""



@dataclass(frozen=True)
class Status:
    """A parsed ``ups.status``: its flags, and what is wrong with it."""

    flags: frozenset[str]
    problems: tuple[str, ...] = ()

    @property
    def on_battery(self) -> bool:
        """OB wins over OL: a UPS that claims both is treated as on battery."""
        return "OB" in self.flags


def parse_status(text: str) -> Status:
    flags = frozenset(text.split())
    problems = []
    if {"OL", "OB"} <= flags:
        problems.append("ups.status reports OL and OB at once; taken as on battery (OB)")
    unknown = sorted(flags - STATUS_FLAGS.keys())
    if unknown:
        problems.append(f"ups.status has unknown flags: {' '.join(unknown)}")
    return Status(flags, tuple(problems))


def status_events(before: Status | None, now: Status) -> list[str]:
    """Events for the change from ``before`` to ``now``; at first sight only what is wrong."""
    was_battery = before.on_battery if before else False
    had = before.flags if before else frozenset()
    events = []
    if now.on_battery and not was_battery:
        events.append("ONBATT")
    elif was_battery and not now.on_battery and "OL" in now.flags:
        events.append("ONLINE")
    events += [event for flag, event in _RAISED_BY if flag in now.flags and flag not in had]
    return events


class UpsWatcher:
    """Turns each UPS's ``ups.status`` readings and silences into events, as they happen."""

    def __init__(self, record: Callable[[str, str, str], None]):
        self.record = record  # (device, event kind, message)
        self.on_status: Callable[[str, Status], None] | None = None
        self.status: dict[str, Status] = {}
        self.silent_since: dict[str, float] = {}
        self.nocomm_sent: set[str] = set()

    def on_readings(self, device: str, readings: Iterable[Reading]) -> list[str]:
        """Record the events of a new status; return its problems (contradictions)."""
        point = f"{device}.ups.status"
        for r in readings:
            if r.point == point and r.quality is Quality.GOOD and isinstance(r.value, str):
                now = parse_status(r.value)
                for event in status_events(self.status.get(device), now):
                    self.record(device, event, EVENTS[event])
                self.status[device] = now
                if self.on_status is not None:
                    self.on_status(device, now)
                return list(now.problems)
        return []

    def announced(self, device: str, event: str) -> None:
        """Record an event a trap announced; the poll that shows it then repeats nothing."""
        self.record(device, event, EVENTS[event] + " (SNMP trap)")
        flag = EVENT_FLAGS.get(event)
        if flag is not None:
            flags = self.status[device].flags if device in self.status else frozenset()
            if flag == "OB":
                flags -= {"OL"}
            self.status[device] = Status(flags | {flag})
            if self.on_status is not None:
                self.on_status(device, self.status[device])

    def on_comm(self, device: str, ok: bool, at: float) -> None:
        if ok:
            self.silent_since.pop(device, None)
            self.nocomm_sent.discard(device)
        else:
            self.silent_since.setdefault(device, at)

    def tick(self, now: float, nocomm_after: float) -> None:
        for device, since in self.silent_since.items():
            if now - since >= nocomm_after and device not in self.nocomm_sent:
                self.nocomm_sent.add(device)
                self.record(device, "NOCOMM", EVENTS["NOCOMM"])
