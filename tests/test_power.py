"""Power topology, suppression, runtime needs, site-wide mains loss and shutdown actions, with
UPSes on a Modbus server (the generic-ups profile) so an outage can be timed to the second."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.alarms.model import AlarmState
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import LOW_BATTERY, ON_BATTERY, ON_LINE, config, modbus_device, ups_sim
from tests.fixtures import ups
from tests.servers.http_receiver import Receiver
from tests.util import eventually, made_anew


def door(port: int) -> dict[str, Any]:
    return {**modbus_device("door1", port, [{"key": "open", "table": "discrete_input",
                                             "address": 0}], cls="door", interval=0.2,
                            timeout=0.15, failures_before_unavailable=2, backoff_max=0.4),
            "area": "entrance"}


def state(daemon: Daemon, alarm_id: str) -> AlarmState | None:
    alarm = daemon.alarms.alarms.get(alarm_id)
    return alarm.state() if alarm else None


def site(tmp_path: Path, port: int, dead: int, **power: Any) -> Any:
    return config(tmp_path, [ups("ups_a", port), door(dead)],
                  areas=[{"name": "machine_room"}, {"name": "entrance"}],
                  power={"feeds": [{"ups": "ups_a", "areas": ["entrance"]}], **power})


async def test_comm_loss_of_what_a_ups_feeds_is_suppressed_on_battery(
        tmp_path: Path, sim: Any, daemon_factory: Any) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, peers.free_port()))
    await eventually(lambda: state(daemon, "comm:door1") is AlarmState.ACTIVE_UNACKNOWLEDGED)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(lambda: state(daemon, "comm:door1") is AlarmState.SUPPRESSED)
    assert daemon.alarms.alarms["comm:door1"].suppressed_by == "ups_a 电池供电"
    assert state(daemon, "power:ups_a") is AlarmState.ACTIVE_UNACKNOWLEDGED
    await server.async_setValues(1, 4, 20, [ON_LINE])
    await eventually(lambda: state(daemon, "comm:door1") is AlarmState.ACTIVE_UNACKNOWLEDGED)


async def test_runtime_shorter_than_the_loads_need_is_an_alarm(tmp_path: Path, sim: Any,
                                                               daemon_factory: Any) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, peers.free_port()))
    await eventually(lambda: "ups_a.battery.runtime" in daemon.state.latest)
    assert state(daemon, "power:runtime:ups_a") in (None, AlarmState.NORMAL)
    await server.async_setValues(1, 4, 7, [0, 1200])          # 20 minutes; doors need 30
    await eventually(lambda: state(daemon, "power:runtime:ups_a")
                     is AlarmState.ACTIVE_UNACKNOWLEDGED)
    alarm = daemon.alarms.alarms["power:runtime:ups_a"]
    assert "剩余后备时间 20 分钟, 所供设备需要 30 分钟" in alarm.message
    # routes, silences and inhibition find it by its UPS: its area, class and the feed it is about
    assert {k: daemon.ctx.facts.of(alarm)[k] for k in ("area", "device_class", "feed")} == {
        "area": "machine_room", "device_class": "ups", "feed": "ups_a"}
    await eventually(lambda: daemon.alarms.is_active("comm:door1"))  # on mains still: what
    assert state(daemon, "comm:door1") is AlarmState.ACTIVE_UNACKNOWLEDGED  # it feeds pages


@pytest.mark.parametrize(("needs", "runtime", "said"), [
    ({"camera": "10m"}, 1200, "剩余后备时间 20 分钟, 所供设备需要 30 分钟"),  # doors keep theirs
    ({"door": "15m"}, 600, "剩余后备时间 10 分钟, 所供设备需要 15 分钟")])
async def test_configured_needs_change_only_the_classes_they_name(
        tmp_path: Path, sim: Any, daemon_factory: Any, needs: dict[str, str], runtime: int,
        said: str) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, peers.free_port(), needs=needs))
    await eventually(lambda: "ups_a.battery.runtime" in daemon.state.latest)
    await server.async_setValues(1, 4, 7, [0, runtime])
    await eventually(lambda: daemon.alarms.is_active("power:runtime:ups_a"))
    assert said in daemon.alarms.alarms["power:runtime:ups_a"].message


async def test_whole_site_mains_loss_is_one_situation(tmp_path: Path, sim: Any,
                                                      daemon_factory: Any) -> None:
    server, port = sim
    second = peers.free_port()
    server2 = await ups_sim(second)
    try:
        daemon = await daemon_factory(config(tmp_path, [ups("ups_a", port),
                                                        ups("ups_b", second)]))
        await server.async_setValues(1, 4, 20, [ON_BATTERY])
        await eventually(lambda: state(daemon, "power:ups_a") is AlarmState.ACTIVE_UNACKNOWLEDGED)
        assert state(daemon, "power:site") in (None, AlarmState.NORMAL)
        await server2.async_setValues(1, 4, 20, [ON_BATTERY])
        await eventually(lambda: state(daemon, "power:site") is AlarmState.ACTIVE_UNACKNOWLEDGED)
        assert state(daemon, "power:ups_a") is AlarmState.SUPPRESSED
        assert state(daemon, "power:ups_b") is AlarmState.SUPPRESSED
        active = [a.id for a in daemon.alarms.current()
                  if a.state() is AlarmState.ACTIVE_UNACKNOWLEDGED]
        assert active == ["power:site"]
    finally:
        await server2.shutdown()


def shutdown_site(tmp_path: Path, port: int, marker: Path, **when: Any) -> Any:
    return config(tmp_path, [ups("ups_a", port)], actions={"allowed_commands": ["/bin/sh"]}, power={
        "shutdown": [{"name": "office_pcs", "ups": "ups_a", "when": when,
                      "command": ["/bin/sh", "-c", f"echo ran >> {marker}"]}]})


async def shutdown_events(daemon: Daemon, expect: int = 0) -> list[str]:
    """The SHUTDOWN events recorded; waits (10 s at most) until there are ``expect``: an
    action's result is recorded once its process has ended, a little after its effect."""
    end = time.monotonic() + 10
    while True:
        await daemon.store.committed()
        rows = [d for (d,) in await daemon.store.read(lambda c: c.execute(
            "SELECT detail FROM events WHERE kind = 'SHUTDOWN'").fetchall())]
        if len(rows) >= expect or time.monotonic() > end:
            return rows
        await asyncio.sleep(0.05)


async def armed(tmp_path: Path, sim: Any, daemon_factory: Any,
                **when: Any) -> tuple[Daemon, Any, Path]:
    """A daemon with one shutdown action on ups_a, polling; the file the action writes."""
    server, port = sim
    marker = tmp_path / "ran"
    daemon = await daemon_factory(shutdown_site(tmp_path, port, marker, **when))
    await eventually(lambda: "ups_a.ups.status" in daemon.state.latest)
    return daemon, server, marker


async def test_a_short_outage_never_shuts_anything_down(tmp_path: Path, sim: Any,
                                                        daemon_factory: Any) -> None:
    daemon, server, marker = await armed(tmp_path, sim, daemon_factory, on_battery_for=2)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(lambda: daemon.state.latest["ups_a.ups.status"].value == "OB")
    await asyncio.sleep(1.0)
    await server.async_setValues(1, 4, 20, [ON_LINE])
    await asyncio.sleep(2.5)
    assert not marker.exists()
    assert await shutdown_events(daemon) == []
    rows = await daemon.store.read(lambda c: c.execute("SELECT key FROM timers").fetchall())
    assert rows == []


async def test_a_long_outage_runs_the_action_once(tmp_path: Path, sim: Any,
                                                  daemon_factory: Any) -> None:
    daemon, server, marker = await armed(tmp_path, sim, daemon_factory, on_battery_for=1)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(marker.exists, 5)
    await asyncio.sleep(1.0)
    assert marker.read_text() == "ran\n"
    assert await shutdown_events(daemon, 1) == ["office_pcs (1 s on battery): exit 0"]


async def outage(tmp_path: Path, sim: Any, **when: Any) -> tuple[Any, Path, Daemon]:
    """A daemon (stopped by the caller) with one shutdown action, that has seen ups_a go on
    battery; its config and the file the action writes."""
    server, port = sim
    marker = tmp_path / "ran"
    cfg = shutdown_site(tmp_path, port, marker, **when)
    daemon = Daemon(cfg)
    await daemon.start()
    await eventually(lambda: "ups_a.ups.status" in daemon.state.latest)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(lambda: daemon.state.latest["ups_a.ups.status"].value == "OB")
    return cfg, marker, daemon


async def test_the_timer_survives_a_restart(tmp_path: Path, sim: Any,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Down across the due time: the stored timer fires at start. A timer armed afresh at
    start would wait another 2 s, and fail this test."""
    cfg, marker, first = await outage(tmp_path, sim, on_battery_for=2)
    outage_at = time.time()
    await first.stop()
    await asyncio.sleep(max(0.0, outage_at + 2.5 - time.time()))    # due while stopped
    second = Daemon(cfg)
    started = time.time()
    await second.start()
    try:
        await eventually(marker.exists, 5)
        assert time.time() - started < 1.5
        assert "timer shutdown:office_pcs was due" in caplog.text
        assert await shutdown_events(second, 1) == ["office_pcs (2 s on battery): exit 0"]
    finally:
        await second.stop()


async def test_low_battery_and_http_actions(tmp_path: Path, sim: Any,
                                            daemon_factory: Any) -> None:
    server, port = sim
    receiver = Receiver().start()
    try:
        daemon = await daemon_factory(config(tmp_path, [ups("ups_a", port)], power={
            "shutdown": [{"name": "nas", "ups": "ups_a", "when": {"low_battery": True},
                          "http": {"url": f"{receiver.url}/shutdown", "body": {"host": "nas1"}}}]}))
        await eventually(lambda: "ups_a.ups.status" in daemon.state.latest)
        await server.async_setValues(1, 4, 20, [ON_BATTERY])
        await asyncio.sleep(0.6)
        assert receiver.requests == []
        await server.async_setValues(1, 4, 20, [LOW_BATTERY])
        await eventually(lambda: len(receiver.requests) == 1, 5)
        assert receiver.requests[0].path == "/shutdown"
        assert receiver.requests[0].body == b'{"host":"nas1"}'
        assert await shutdown_events(daemon, 1) == ["nas (low battery): HTTP 204"]
    finally:
        receiver.stop()


async def test_runtime_threshold_action_only_on_battery(tmp_path: Path, sim: Any,
                                                        daemon_factory: Any) -> None:
    daemon, server, marker = await armed(tmp_path, sim, daemon_factory, runtime_below=600)
    await server.async_setValues(1, 4, 7, [0, 300])          # 5 minutes left, but on mains
    await asyncio.sleep(0.6)
    assert not marker.exists()
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(marker.exists, 5)
    assert await shutdown_events(daemon, 1) == [
        "office_pcs (runtime 300 s below 600 s): exit 0"]


async def test_what_mains_feeds_directly_is_suppressed_while_mains_is_out(
        tmp_path: Path, sim: Any, daemon_factory: Any) -> None:
    server, port = sim
    daemon = await daemon_factory(config(
        tmp_path, [ups("ups_a", port), door(peers.free_port())],
        areas=[{"name": "machine_room"}, {"name": "entrance"}],
        power={"feeds": [{"ups": "mains", "devices": ["door1"]}]}))
    await eventually(lambda: state(daemon, "comm:door1") is AlarmState.ACTIVE_UNACKNOWLEDGED)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(lambda: state(daemon, "comm:door1") is AlarmState.SUPPRESSED)
    assert daemon.alarms.alarms["comm:door1"].suppressed_by == "市电中断 (ups_a 电池供电)"


async def test_an_action_runs_once_per_outage_across_a_restart(tmp_path: Path, sim: Any) -> None:
    server, _ = sim
    cfg, marker, first = await outage(tmp_path, sim, on_battery_for=0.5)
    await eventually(marker.exists, 5)
    await shutdown_events(first, 1)
    await first.stop()
    second = Daemon(cfg)                       # still on battery: it already ran
    await second.start()
    try:
        await eventually(lambda: "ups_a.ups.status" in second.state.latest)
        await asyncio.sleep(1.5)
        assert marker.read_text() == "ran\n"
        await server.async_setValues(1, 4, 20, [ON_LINE])   # mains back: the next outage may
        await eventually(lambda: second.state.latest["ups_a.ups.status"].value == "OL")
        await server.async_setValues(1, 4, 20, [ON_BATTERY])
        await eventually(lambda: marker.read_text() == "ran\nran\n", 5)
    finally:
        await second.stop()


async def test_an_action_that_ran_before_a_database_made_anew_does_not_run_again(
        tmp_path: Path, sim: Any) -> None:
    cfg, marker, first = await outage(tmp_path, sim, on_battery_for=0.5)
    await eventually(marker.exists, 5)
    await shutdown_events(first, 1)
    await made_anew(first)                     # the new database is told it ran
    await first.stop()
    second = Daemon(cfg)                       # still on battery, in the same outage
    await second.start()
    try:
        await eventually(lambda: "ups_a.ups.status" in second.state.latest)
        await asyncio.sleep(1.5)
        assert marker.read_text() == "ran\n"
    finally:
        await second.stop()
