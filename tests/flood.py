"""A device class made up for the tests, and registered by them alone: a water-level gauge in
a basement, whose high water is a flood it says itself. ``registered()`` adds it for a test;
``python -m tests.flood run SITE`` runs the daemon with it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import ClassVar

from monitor.cli import main
from monitor.config.model import DeviceConfig, Rule, ThresholdRule
from monitor.core.model import Reading
from monitor.devices.base import REGISTRY, DeviceClass, PointWords, Situation
from tests import util

LEVEL = {"key": "water.level", "table": "holding", "address": 48, "data_type": "int16"}
"""The gauge's depth in cm, at the Modbus peer's holding register 48."""


class FloodSensor(DeviceClass):
    """A water-level gauge in a basement: high water is a flood, and it says so itself."""

    name, label, tile = "flood_sensor", ("水位计", "water gauge"), "numbers"
    points: ClassVar[Mapping[str, PointWords]] = {
        "water.level": PointWords(("积水深度", "water depth"), "cm")}
    events: ClassVar[Mapping[str, tuple[str, str]]] = {"RISING": ("水位上涨", "water rising")}
    situations: ClassVar[Mapping[str, Situation]] = {
        "flood": Situation(("水浸 {n} 处", "{n} places flooded"), 15, urgent=True)}

    @classmethod
    def rules(cls, device: DeviceConfig) -> list[Rule]:
        return [ThresholdRule(name=f"{device.name}_flood", point=f"{device.name}.water.level",
                              kind="threshold", high=10, severity="critical",
                              message="地下室积水")]

    @classmethod
    def situation(cls, key: str, level: str, severity: str, purpose: str) -> str | None:
        return "flood" if key == "water.level" and level else None

    def accept(self, device: str, readings: list[Reading]) -> list[str]:
        depth = next((r.value for r in readings if r.point.endswith(".water.level")), None)
        if isinstance(depth, int | float) and depth > 5:
            self.record(device, "RISING", f"积水 {depth} 厘米")
        return []


def registered() -> contextlib.AbstractContextManager[None]:
    return util.registered(REGISTRY, FloodSensor.name, FloodSensor)


if __name__ == "__main__":
    with registered():
        sys.exit(main())
