"""A device class is a part registered by name: one made up here, and nowhere else, gets its
points' words, its default rule, its situation on the banner, its events and its tile through
the same core, API and console code as the built-in ones; and a configured rule of the same
name replaces the one it brings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from monitor.config.model import DeviceConfig, Rule, ThresholdRule
from monitor.core.model import Reading
from monitor.daemon import Daemon
from monitor.devices.base import REGISTRY, DeviceClass, PointWords, Situation
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import api as client
from tests.util import eventually, recorded

LEVEL = {"key": "water.level", "table": "holding", "address": 48, "data_type": "int16"}


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


@pytest.fixture
def flood_class() -> Iterator[None]:
    REGISTRY[FloodSensor.name] = FloodSensor
    yield
    del REGISTRY[FloodSensor.name]


def site(tmp_path: Path, rules: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
    return config(tmp_path, [modbus_device("basement", peers.MODBUS_PORT, [LEVEL],
                                           cls="flood_sensor", area="archive", interval=0.1,
                                           timeout=0.08, label="地下室水位计")],
                  rules, areas=[{"name": "archive", "label": "档案室"}])


async def test_a_made_up_class_works_end_to_end(
        tmp_path: Path, modbus_peer: Path, flood_class: None, daemon_factory: Any) -> None:
    peers.set_modbus_state(modbus_peer, hr={48: 2})
    daemon: Daemon = await daemon_factory(site(tmp_path))
    async with client(daemon) as api:
        await eventually(lambda: "basement.water.level" in daemon.state.latest)
        point = (await api.get("/api/v1/points")).json()[0]
        assert (point["label"], point["unit"], point["display"]) == ("积水深度", "cm", "2 cm")
        device = (await api.get("/api/v1/devices")).json()[0]
        assert (device["class_label"], device["tile"]) == ("水位计", "numbers")
        peers.set_modbus_state(modbus_peer, hr={48: 14})          # the basement floods
        await eventually(lambda: daemon.alarms.is_active("basement_flood.high"), 5)
        alarm = next(a for a in (await api.get("/api/v1/alarms")).json()
                     if a["id"] == "basement_flood.high")
        assert alarm["situation"] == "flood" and alarm["severity"] == "critical"
        assert alarm["message"].startswith("地下室积水") and alarm["class_label"] == "水位计"
        labels = (await api.get("/api/v1/labels")).json()
        assert {"kind": "flood", "text": "水浸 {n} 处", "urgent": True} in labels["situations"]
        assert labels["event"]["RISING"] == "水位上涨"
        await recorded(daemon)
        events = await daemon.store.read(lambda c: c.execute(
            "SELECT detail FROM events WHERE kind = 'RISING'").fetchall())
        assert ("积水 14 厘米",) in events


def test_a_configured_rule_replaces_the_one_a_class_brings(
        tmp_path: Path, flood_class: None) -> None:
    from monitor.devices.intake import site_rules

    brought = site_rules(site(tmp_path))
    assert [(r.name, getattr(r, "high", None)) for r in brought] == [("basement_flood", 10)]
    mine = site_rules(site(tmp_path, [{"name": "basement_flood", "point": "basement.water.level",
                                       "kind": "threshold", "high": 30}]))
    assert [(r.name, getattr(r, "high", None)) for r in mine] == [("basement_flood", 30)]


def test_an_unknown_class_is_a_config_error_naming_the_known_ones(tmp_path: Path) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as info:
        site(tmp_path)
    assert "unknown device class 'flood_sensor' (known: camera, door" in str(info.value)
