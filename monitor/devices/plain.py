"""The classes of boxes that need nothing but words (yet): environment sensors, leak
detectors, fire panels, door controllers, cameras, recorders and hosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.devices.base import DeviceClass, Situation, register
from monitor.words.labels import ZONE_STATE, Language, label

HOUR_HALF = 30 * 60.0


@register
class Environment(DeviceClass):
    name, label, tile = "environment", ("温湿度", "environment"), "numbers"
    situations: ClassVar[Mapping[str, Situation]] = {
        "heat": Situation(("机房超温", "Machine room too hot"), 30)}

    @classmethod
    def situation(cls, key: str, level: str, severity: str, purpose: str) -> str | None:
        hot = level in ("high", "high_high") and "temp" in key
        return "heat" if hot and purpose == "machine_room" else None


@register
class Leak(DeviceClass):
    name, label, booleans = "leak", ("漏水", "leak"), "leak"


@register
class FirePanel(DeviceClass):
    name, label, measurement = "fire_panel", ("消防主机", "fire panel"), "fire_zone"
    situations: ClassVar[Mapping[str, Situation]] = {
        "fire": Situation(("火警", "FIRE"), 10, urgent=True)}
    events: ClassVar[Mapping[str, tuple[str, str]]] = {
        "COMPONENT": ("部件状态", "component state"), "SYSTEM": ("系统状态", "system state"),
        "ANALOGUE": ("模拟量", "analogue value"), "OPERATION": ("操作", "operation"),
        "TRANSMITTER": ("传输装置状态", "transmitter state"),
        "UNKNOWN_DATA": ("未识别的数据", "data not understood"),
        "DEVICE_CLOCK": ("设备时钟有误 (其时间不采用)", "device clock wrong (its time not used)")}

    @classmethod
    def display(cls, key: str, value: Any, language: Language) -> str | None:
        known = isinstance(value, str) and value in ZONE_STATE
        return label(ZONE_STATE, value, language) if known else None

    @classmethod
    def situation(cls, key: str, level: str, severity: str, purpose: str) -> str | None:
        return "fire" if key.split(".")[-1] == "alarm" and severity == "critical" else None


@register
class Door(DeviceClass):
    name, label, needs = "door", ("门禁", "door"), HOUR_HALF


@register
class Camera(DeviceClass):
    name, label, needs = "camera", ("摄像机", "camera"), HOUR_HALF


@register
class Recorder(DeviceClass):
    name, label, needs = "nvr", ("录像机", "NVR"), HOUR_HALF


@register
class Host(DeviceClass):
    name, label, booleans = "host", ("主机", "host"), "check"
