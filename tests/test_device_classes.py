"""A device class is a part registered by name: one made up for the tests (tests/flood.py),
and nowhere else, gets its points' words, its default rule, its situation on the banner, its
events and its tile through the same core, API and console code as the built-in ones (seen
in a browser too); and a configured rule of the same name replaces the one it brings."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from monitor.core.credentials import hash_password
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import api as client
from tests.fixtures import signed_in, start, write_config
from tests.flood import LEVEL, registered
from tests.util import eventually, recorded

PASSWORD = "flood-passw0rd"
SHOTS = Path("/tmp/console-shots")
BASEMENT = modbus_device("basement", peers.MODBUS_PORT, [LEVEL], cls="flood_sensor",
                         area="archive", interval=0.1, timeout=0.08, label="地下室水位计")
ARCHIVE = [{"name": "archive", "label": "档案室"}]


@pytest.fixture
def flood_class() -> Iterator[None]:
    with registered():
        yield


def site(tmp_path: Path, rules: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
    return config(tmp_path, [BASEMENT], rules, areas=ARCHIVE)


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


def test_a_made_up_class_shows_its_situation_and_tile_in_the_console(
        tmp_path: Path, modbus_peer: Path, browser: Browser) -> None:
    peers.set_modbus_state(modbus_peer, hr={48: 2})
    cfg = write_config(tmp_path, [BASEMENT], areas=ARCHIVE, people=[{
        "name": "zhang_san", "label": "张三", "credential": hash_password(PASSWORD)}])
    daemon = start(cfg, module="tests.flood")          # the class is registered there alone
    try:
        page = signed_in(browser, daemon.url, "zhang_san", PASSWORD)
        tile = page.locator(".tile", has_text="档案室")
        expect(tile).to_contain_text("积水深度")
        expect(tile).to_contain_text("2 cm")
        expect(page.locator("#banner")).to_contain_text("一切正常")
        peers.set_modbus_state(modbus_peer, hr={48: 14})   # the basement floods
        expect(page.locator("#banner.urgent .head")).to_contain_text("水浸 1 处",
                                                                     timeout=10_000)
        expect(page.locator("#banner")).to_contain_text("地下室积水")
        expect(tile).to_contain_text("14 cm")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "made-up-class.png"), full_page=True)
    finally:
        peers.set_modbus_state(modbus_peer, hr={48: 2})
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(10)
