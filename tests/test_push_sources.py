"""A push source is registered by type like a driver: one made up for the tests
(tests/gateway.py, a gateway that sends JSON lines over TCP), and nowhere else, is configured
as a listener with its own settings, binds its devices by type, acknowledges a message only
once it is committed, drops a resend (also after a restart), goes stale when silent (the
source's alarm and its device's availability), and is started, reloaded and stopped with the
daemon. With the disk full, nothing is acknowledged and nothing is lost, also when the daemon
is killed while the gateway waits."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import SiteConfig, load_config_text
from monitor.core.model import Quality
from monitor.daemon import Daemon
from monitor.devices.sources import KEEP_FOR
from tests import gateway, peers
from tests.conftest import config
from tests.fixtures import fill, start
from tests.gateway import Sender, registered
from tests.util import eventually


@pytest.fixture
def gateway_type() -> Iterator[None]:
    with registered():
        yield


def site(tmp_path: Path, port: int, **extra: Any) -> SiteConfig:
    return load_config_text(gateway.site(tmp_path, port, **extra), "site.yaml")


async def history(daemon: Daemon) -> list[float]:
    return [v for (v,) in await daemon.store.read(lambda c: c.execute(
        "SELECT value FROM history WHERE point = 'tank.level' AND quality = 'good' "
        "ORDER BY ts").fetchall())]


async def test_a_made_up_push_source_works_end_to_end(
        tmp_path: Path, gateway_type: None, daemon_factory: Any) -> None:
    port = peers.free_port()
    cfg = site(tmp_path, port)
    daemon: Daemon = await daemon_factory(cfg)
    tank = Sender(port)
    assert await tank.send("m1", 35.0) == "ok m1"
    assert await history(daemon) == [35.0]              # committed before it was acknowledged
    assert await tank.send("m1", 35.0) == "dup m1"       # a resend is dropped
    assert await history(daemon) == [35.0]
    assert daemon.state.latest["tank.level"].value == 35.0
    await eventually(lambda: daemon.alarms.is_active("comm:tank"), 5)  # silent: stale
    assert daemon.state.devices["tank"].state.value == "unavailable"
    assert daemon.state.latest["tank.level"].quality is Quality.COMM_LOST
    await eventually(lambda: daemon.alarms.is_active("push:gateway"), 5)
    assert await tank.send("m2", 15.0) == "ok m2"        # heard again, and judged
    assert not daemon.alarms.is_active("comm:tank")
    assert not daemon.alarms.is_active("push:gateway")
    await eventually(lambda: daemon.alarms.is_active("tank_low.low"), 2)
    await tank.will("gateway offline: power cut")       # it says goodbye: at once
    await eventually(lambda: daemon.alarms.is_active("push:gateway"), 2)
    assert "gateway offline: power cut" in daemon.alarms.alarms["push:gateway"].message
    assert await daemon.reload(site(tmp_path, port)) == []   # stopped and started again
    assert await tank.send("m3", 25.0) == "ok m3"
    await daemon.stop()
    with pytest.raises(OSError):                          # stopped with the daemon
        await Sender(port).send("m4", 25.0)
    again = await daemon_factory(cfg)                     # ids survive a restart
    assert await tank.send("m3", 25.0) == "dup m3"
    assert await tank.send("m4", 26.0) == "ok m4"
    assert await history(again) == [35.0, 15.0, 25.0, 26.0]
    both = await asyncio.gather(tank.send("m5", 27.0), tank.send("m5", 27.0))  # at once
    assert sorted(both) == ["dup m5", "ok m5"]
    assert await history(again) == [35.0, 15.0, 25.0, 26.0, 27.0]


def test_a_push_only_device_needs_its_listener(tmp_path: Path, gateway_type: None) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as info:
        config(tmp_path, [{"name": "tank", "area": "machine_room", "class": "environment",
                           "type": "line_gateway", "points": [{"key": "level"}]}])
    assert "devices[0].type: no listener of type 'line_gateway' hears it" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config(tmp_path, [], listeners=[{"name": "g", "type": "line_gateway",
                                         "settings": {"port": "eighty"}}])
    assert "listeners[0].settings.port: Input should be a valid integer" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config(tmp_path, [], listeners=[{"name": "g", "type": "carrier_pigeon"}])
    assert "listeners[0].type: unknown listener type 'carrier_pigeon' (known: " in \
        str(info.value)


async def tank_heard(where: Path, daemon_factory: Any) -> tuple[Daemon, Sender]:
    """A daemon with the gateway's tank, and its first message taken."""
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(where, port))
    tank = Sender(port)
    assert await tank.send("m1", 35.0) == "ok m1"
    return daemon, tank


async def test_with_the_disk_full_nothing_is_acknowledged_and_a_resend_waits_for_the_commit(
        disk: Path, gateway_type: None, daemon_factory: Any) -> None:
    daemon, tank = await tank_heard(disk, daemon_factory)
    filler = fill(disk)
    assert await tank.send("m2", 30.0) == "fail m2"      # not committed: not acknowledged
    assert await tank.send("m2", 30.0) == "fail m2"      # nor its resend, as a duplicate
    await eventually(lambda: daemon.alarms.is_active("store:write_failed"), 5)
    filler.unlink()
    await eventually(lambda: not daemon.alarms.is_active("store:write_failed"), 15)
    assert await tank.send("m2", 30.0) == "dup m2"       # the first copy was kept, and is in
    assert await history(daemon) == [35.0, 30.0]        # once


def test_killed_while_the_gateway_waits_for_a_commit_a_resend_is_taken(disk: Path) -> None:
    port = peers.free_port()
    cfg_path = disk / "site.yaml"
    api = peers.free_port()
    cfg_path.write_text(gateway.site(disk, port, api={"port": api,
                                                      "token": {"env": "VIGIL_API_TOKEN"}}),
                        encoding="utf-8")
    daemon = start(cfg_path, module="tests.gateway")
    tank = Sender(port)
    assert asyncio.run(tank.send("m1", 35.0)) == "ok m1"
    filler = fill(disk)
    assert asyncio.run(tank.send("m2", 30.0)) == "fail m2"
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(10)
    filler.unlink()
    daemon = start(cfg_path, module="tests.gateway")
    try:
        assert asyncio.run(tank.send("m2", 30.0)) == "ok m2"   # its mark died with the daemon
        assert asyncio.run(tank.send("m1", 35.0)) == "dup m1"
        with daemon.db() as db:
            levels = [v for (v,) in db.execute(
                "SELECT value FROM history WHERE point = 'tank.level' ORDER BY ts")]
        assert levels == [35.0, 30.0]
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(10)


async def test_ids_older_than_two_days_are_forgotten_by_the_pruner(
        tmp_path: Path, gateway_type: None, daemon_factory: Any) -> None:
    daemon, tank = await tank_heard(tmp_path, daemon_factory)
    for part in daemon.parts:
        part.prune(time.time() + KEEP_FOR + 1)          # as the pruner does, two days later
    await daemon.store.committed()
    assert await daemon.store.read(lambda c: c.execute(
        "SELECT count(*) FROM push_seen").fetchone()) == (0,)
    assert await tank.send("m1", 36.0) == "ok m1"        # no longer known as a resend
