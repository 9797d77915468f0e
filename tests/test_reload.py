"""Reloads and restarts are exact: one reload at a time, alarms of what was removed retired,
comm alarms judged from what is seen now, what cannot change refused, and InfluxDB and the
history agree on every timestamp."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitor.alarms.manager import alarm_log
from monitor.alarms.model import AlarmState
from monitor.daemon import Daemon
from monitor.demo.simulator import serve_sim
from tests import peers
from tests.conftest import config, modbus_device
from tests.util import eventually, recorded

TEMP = {"key": "temperature", "table": "holding", "address": 0, "data_type": "int16",
        "scale": 0.1}


def site(tmp_path: Path, *devices: dict[str, Any], **extra: Any) -> Any:
    return config(tmp_path, list(devices), **extra)


async def test_concurrent_reloads_leave_one_poll_task_per_device(tmp_path: Path,
                                                                 daemon_factory: Any) -> None:
    port = peers.free_port()
    server = await serve_sim(port, bits=16, registers=16)
    try:
        cfg = site(tmp_path, modbus_device("env", port, [TEMP], interval=0.2, timeout=0.1))
        daemon = await daemon_factory(cfg)
        results = await asyncio.gather(*(daemon.reload(cfg) for _ in range(5)))
        assert results == [[]] * 5
        polling = [t for t in asyncio.all_tasks() if t.get_name() == "device:env"]
        assert len(polling) == 1 and list(daemon.pollers) == ["env"]
    finally:
        await server.shutdown()


async def test_reload_retires_the_alarms_of_removed_devices_and_rules(
        tmp_path: Path, daemon_factory: Any) -> None:
    dead = modbus_device("gone", peers.free_port(), [TEMP], interval=0.1, timeout=0.05,
                         failures_before_unavailable=1)
    daemon = await daemon_factory(site(tmp_path, dead))
    await eventually(lambda: daemon.alarms.is_active("comm:gone"))
    assert await daemon.reload(site(tmp_path)) == []
    assert "comm:gone" not in daemon.alarms.alarms
    assert [a.id for a in daemon.alarms.current()] == []
    await recorded(daemon)
    log = await daemon.store.read(lambda c: alarm_log(c, "comm:gone", 10))
    assert log[0]["action"] == "retired" and log[0]["who"] == "system"


async def test_a_comm_alarm_from_before_a_restart_clears_when_the_device_answers(
        tmp_path: Path) -> None:
    port = peers.free_port()
    cfg = site(tmp_path, modbus_device("env", port, [TEMP], interval=0.1, timeout=0.05,
                                       failures_before_unavailable=1))
    first = Daemon(cfg)
    await first.start()
    await eventually(lambda: first.alarms.is_active("comm:env"))
    await first.stop()
    server = await serve_sim(port, bits=16, registers=16)   # back while Vigil was down
    second = Daemon(cfg)
    await second.start()
    try:
        await eventually(lambda: not second.alarms.is_active("comm:env"), 5)
        await recorded(second)
        kinds = await second.store.read(lambda c: [k for (k,) in c.execute(
            "SELECT kind FROM events WHERE device = 'env' ORDER BY seq")])
        assert kinds == ["COMMBAD", "COMMOK"]
        assert second.alarms.alarms["comm:env"].state() is AlarmState.CLEARED_UNACKNOWLEDGED
    finally:
        await second.stop()
        await server.shutdown()


@pytest.mark.parametrize("change", ["api.port", "api.listen", "data_dir"])
async def test_what_cannot_change_while_running_is_refused(
        tmp_path: Path, daemon_factory: Any, change: str,
        caplog: pytest.LogCaptureFixture) -> None:
    daemon = await daemon_factory(site(tmp_path, api={"enabled": False, "port": 8320}))
    extra: dict[str, Any] = {"api": {"enabled": False, "port": 8320}}
    if change == "api.port":
        extra["api"]["port"] = 8321
    elif change == "api.listen":
        extra["api"]["listen"] = "0.0.0.0"
    else:
        extra["data_dir"] = str(tmp_path / "elsewhere")
    errors = await daemon.reload(site(tmp_path, **extra))
    assert errors == [f"{change} cannot change while running (restart vigil to apply it)"]
    assert f"reload refused, keeping the running configuration: {change}" in caplog.text
    assert "configuration reloaded" not in caplog.text


async def test_influxdb_lines_carry_the_history_timestamps(tmp_path: Path,
                                                           daemon_factory: Any) -> None:
    port = peers.free_port()
    server = await serve_sim(port, bits=16, registers=16)
    try:
        two_blocks = [TEMP, {**TEMP, "key": "humidity", "address": 12}]  # max_gap splits them
        daemon = await daemon_factory(site(
            tmp_path, modbus_device("env", port, two_blocks, interval=0.1, timeout=0.05,
                                    connection={"max_gap": 0}),
            sink={"type": "influxdb_v1", "url": f"http://127.0.0.1:{peers.free_port()}",
                  "retry_max": 60}))
        await asyncio.sleep(1.0)
        await recorded(daemon)
        history = await daemon.store.read(lambda c: c.execute(
            "SELECT point, ts FROM history WHERE quality = 'good'").fetchall())
        bodies = await daemon.store.read(lambda c: [b for (b,) in c.execute(
            "SELECT body FROM outbox")])
    finally:
        await server.shutdown()
    sent: set[tuple[str, int]] = set()
    for body in bodies:
        for text in body.decode().splitlines():
            if text.startswith("environment,"):
                fields, stamp = text.split(" ")[1:]
                sent.update((f"env.{f.split('=')[0]}", int(stamp)) for f in fields.split(","))
    stored = {(point, int(ts * 1e9)) for point, ts in history}
    assert len(stored) > 10 and stored == sent
