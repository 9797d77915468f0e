"""What a transmission device's information objects mean for its device: a state reading for
each configured system or component, and an event for each state, operation or device
state (a component no point names is an event too, with its address and description: shown,
never dropped)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from drivers.gb26875.data import (
    AnalogueValue,
    ComponentState,
    DeviceState,
    Info,
    Operation,
    SystemState,
    Unknown,
)
from drivers.gb26875.spec import Gb26875Point
from monitor.core.model import Quality, Reading
from monitor.words.labels import ZONE_STATE, Language, label

ORDER = (("fire", "alarm"), ("fault", "fault"), ("power_fault", "fault"),
         ("main_power_fault", "fault"), ("backup_power_fault", "fault"),
         ("bus_fault", "fault"), ("disabled", "disabled"), ("supervisory", "supervisory"),
         ("start", "start"), ("feedback", "feedback"), ("delay", "delay"))
"""From the status bits, the one state said, most urgent first (else ``normal``)."""


WORDS: dict[str, tuple[str, str]] = {
    "system": ("系统 {n}", "system {n}"), "component": ("部件 {n}", "component {n}"),
    "device": ("装置", "transmitter"), "unset": ("未配置", "not configured"),
    "operator": ("操作员 {n}", "operator {n}"), "value": ("类型 {kind} 值 {raw}",
                                                          "kind {kind} value {raw}"),
    "type": ("类型 {n}", "type {n}")}
"""The words of the events' details, in zh-CN and English."""


def _w(key: str, language: str, **values: object) -> str:
    return WORDS[key][1 if language == "en" else 0].format(**values)


def state(status: frozenset[str]) -> str:
    return next((word for bit, word in ORDER if bit in status), "normal")


@dataclass
class Heard:
    readings: list[Reading] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    """(kind, message) for the device's timeline."""


def meaning(device: str, points: Iterable[Gb26875Point], infos: Iterable[Info],
            now: float, language: str = "zh-CN") -> Heard:
    lang: Language = "en" if language == "en" else "zh-CN"
    by_place = {(p.system, p.address): p for p in points}
    out = Heard()
    for info in infos:
        if isinstance(info, ComponentState | SystemState):
            where = (info.system, info.component if isinstance(info, ComponentState) else None)
            said = state(info.status)
            point = by_place.get(where)
            if point is not None:
                out.readings.append(Reading(f"{device}.{point.key}", said, now, Quality.GOOD))
            out.events.append(("COMPONENT" if where[1] is not None else "SYSTEM",
                               describe(info, point, label(ZONE_STATE, said, lang), lang)))
        elif isinstance(info, AnalogueValue):
            place = (f"{_w('system', language, n=info.system)} "
                     f"{_w('component', language, n=f'{info.component:08x}')}")
            value = _w("value", language, kind=info.kind, raw=info.raw)
            out.events.append(("ANALOGUE", f"{place}: {value}"))
        elif isinstance(info, Operation):
            who = _w("device", language) if info.system is None else \
                _w("system", language, n=info.system)
            out.events.append(("OPERATION", f"{who}: {' '.join(sorted(info.operation))} "
                                            f"({_w('operator', language, n=info.operator)})"))
        elif isinstance(info, DeviceState):
            out.events.append(("TRANSMITTER", label(ZONE_STATE, state(info.status), lang)))
        elif isinstance(info, Unknown):
            out.events.append(("UNKNOWN_DATA", f"{_w('type', language, n=info.type_code)}: "
                                               f"{info.data.hex()}"))
    return out


def describe(info: ComponentState | SystemState, point: Gb26875Point | None, said: str,
             language: str) -> str:
    where = _w("system", language, n=info.system)
    if isinstance(info, ComponentState):
        where += " " + _w("component", language, n=f"{info.component:08x}")
        if info.description:
            where += f" ({info.description})"
    if point is None:
        where += f" [{_w('unset', language)}]"
    elif point.label:
        where = f"{point.label}: {where}"
    return f"{where}: {said}"
