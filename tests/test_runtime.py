"""The polling runtime: isolation of bad devices, availability, protocol errors, alarms."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.server import ModbusTcpServer

from monitor.alarms.model import AlarmState
from monitor.core.model import DeviceState, Quality
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import SIM_TEMP as TEMP
from tests.fixtures import start_sim
from tests.servers import misbehaving
from tests.util import eventually, until


@pytest.fixture
async def sim() -> AsyncIterator[tuple[ModbusTcpServer, int]]:
    port = peers.free_port()
    server = await start_sim(port)
    yield server, port
    await server.shutdown()


async def history(daemon: Any, point: str) -> list[tuple[float, Any, str]]:
    await daemon.store.committed()  # wait for the writer to commit what is queued
    return await daemon.store.read(lambda c: c.execute(
        "SELECT ts, value, quality FROM history WHERE point = ? ORDER BY ts", (point,))
        .fetchall())


@pytest.mark.parametrize("behaviour", ["hang", "slow"])
async def test_a_hung_or_slow_device_never_delays_another(tmp_path: Path, sim: Any,
                                                          daemon_factory: Any,
                                                          behaviour: str) -> None:
    _, good_port = sim
    bad_server, bad_port = await misbehaving.start(behaviour)
    cfg = config(tmp_path, [
        modbus_device("good", good_port, [TEMP], interval=0.2, timeout=0.15),
        modbus_device("bad", bad_port, [TEMP], interval=5, timeout=4)])
    daemon = await daemon_factory(cfg)
    await asyncio.sleep(3)
    rows = await history(daemon, "good.temperature")
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(rows)]
    assert len(rows) >= 10
    assert max(gaps) < 1.0, f"the good device waited {max(gaps):.2f} s behind the bad one"
    bad = daemon.state.devices["bad"]
    if behaviour == "hang":
        assert bad.state is not DeviceState.ONLINE and bad.last_ok is None
    else:  # slow but within its timeout: read, just late
        assert bad.latency is not None and bad.latency >= 1.5
        assert daemon.state.latest["bad.temperature"].value == pytest.approx(0.7)
    bad_server.close()


async def test_unavailable_after_n_failures_then_recovered(
        tmp_path: Path, daemon_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    port = peers.free_port()
    cfg = config(tmp_path, [modbus_device("env", port, [TEMP], interval=0.1, timeout=0.05,
                                          failures_before_unavailable=3, backoff_max=0.3)])
    caplog.set_level(logging.INFO)
    daemon = await daemon_factory(cfg)
    poller = daemon.pollers["env"]
    await eventually(lambda: daemon.state.devices["env"].state is DeviceState.UNAVAILABLE
                     and poller.failures >= 4, 5)
    assert daemon.state.latest["env.temperature"].quality is Quality.COMM_LOST
    comm = daemon.alarms.alarms["comm:env"]
    assert comm.state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert comm.message.startswith("env 通信中断: 无法连接 127.0.0.1:")  # said in Chinese
    assert "cannot connect" in comm.value                   # the driver's words, for the log
    assert poller.next_delay() == pytest.approx(0.3)  # backed off
    server = await start_sim(port)
    try:
        await server.async_setValues(1, 3, 0, [215])
        await eventually(lambda: daemon.state.devices["env"].state is DeviceState.ONLINE, 5)
        assert daemon.state.latest["env.temperature"].value == pytest.approx(21.5)
        assert daemon.alarms.alarms["comm:env"].state() is AlarmState.CLEARED_UNACKNOWLEDGED
    finally:
        await server.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.name == "monitor.devices.poller"]
    assert len([m for m in lines if "unavailable" in m]) == 1
    assert len([m for m in lines if "recovered" in m]) == 1
    qualities = [q for _, _, q in await history(daemon, "env.temperature")]
    assert qualities[0] == "comm_lost" and qualities[-1] == "good"


async def test_exception_response_is_invalid_with_protocol_alarm(tmp_path: Path, sim: Any,
                                                                 daemon_factory: Any) -> None:
    _, port = sim
    cfg = config(tmp_path, [modbus_device("env", port, [
        TEMP, {"key": "humidity", "table": "input", "address": 900}], interval=0.1,
        timeout=0.05)])
    daemon = await daemon_factory(cfg)
    await eventually(lambda: daemon.state.devices["env"].state is DeviceState.PROTOCOL_ERROR, 5)
    assert daemon.state.latest["env.humidity"].quality is Quality.INVALID
    assert daemon.state.latest["env.humidity"].value is None
    assert daemon.state.latest["env.temperature"].quality is Quality.GOOD
    assert daemon.alarms.alarms["protocol:env"].active
    assert "illegal data address" in str(daemon.alarms.alarms["protocol:env"].value)
    rows = await history(daemon, "env.humidity")
    assert rows and all(q == "invalid" and v is None for _, v, q in rows)


async def test_garbled_replies_mean_invalid_not_comm_loss(tmp_path: Path,
                                                         daemon_factory: Any) -> None:
    server, port = await misbehaving.start("garbage")
    cfg = config(tmp_path, [modbus_device("env", port, [TEMP], interval=0.3, timeout=0.1,
                                          failures_before_unavailable=2)])
    daemon = await daemon_factory(cfg)
    await until(lambda: daemon.store.read(lambda c: c.execute(   # garbled replies past
        "SELECT COUNT(*) FROM history WHERE quality = 'invalid'").fetchone()[0] >= 4))  # the 2
    server.close()
    assert daemon.state.devices["env"].state is DeviceState.PROTOCOL_ERROR
    assert daemon.state.latest["env.temperature"].quality is Quality.INVALID
    assert daemon.alarms.alarms["protocol:env"].active
    assert "garbled reply" in str(daemon.alarms.alarms["protocol:env"].value)
    assert "comm:env" not in daemon.alarms.alarms or not daemon.alarms.alarms["comm:env"].active


async def test_register_change_raises_and_clears_alarm(tmp_path: Path, sim: Any,
                                                       daemon_factory: Any) -> None:
    server, port = sim
    await server.async_setValues(1, 3, 0, [220])
    cfg = config(tmp_path, [modbus_device("env", port, [TEMP], interval=0.1, timeout=0.05)],
                 [{"name": "hot", "point": "env.temperature", "kind": "threshold",
                   "high": 27, "deadband": 0.5}])
    daemon = await daemon_factory(cfg)
    await eventually(lambda: "env.temperature" in daemon.state.latest, 5)
    assert not daemon.alarms.alarms["hot.high"].active
    await server.async_setValues(1, 3, 0, [300])
    await eventually(lambda: daemon.alarms.alarms["hot.high"].active, 2)
    assert daemon.alarms.alarms["hot.high"].value == pytest.approx(30.0)
    await server.async_setValues(1, 3, 0, [268])   # inside the deadband
    await eventually(lambda: daemon.state.latest["env.temperature"].value == 26.8, 5)
    assert daemon.alarms.alarms["hot.high"].active
    await server.async_setValues(1, 3, 0, [250])
    await eventually(lambda: daemon.alarms.alarms["hot.high"].state()
                     is AlarmState.CLEARED_UNACKNOWLEDGED, 5)


async def test_stop_always_completes_while_polls_race(tmp_path: Path, sim: Any) -> None:
    """Cancellation must reach every poll task, whatever moment the stop comes at."""
    _, port = sim
    for i in range(15):
        cfg = config(tmp_path / str(i), [modbus_device(f"d{k}", port, [dict(TEMP, address=k)],
                                                       interval=0.01, timeout=0.009)
                                         for k in range(3)])
        daemon = Daemon(cfg)
        await daemon.start()
        await asyncio.sleep(random.uniform(0, 0.1))
        async with asyncio.timeout(5):
            await daemon.stop()


async def test_a_failing_result_handler_does_not_end_polling(
        tmp_path: Path, sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A bug downstream of a poll is logged; the device goes on being polled."""
    from drivers.modbus import ModbusDriver
    from monitor.devices.poller import DevicePoller

    _, port = sim
    dev = config(tmp_path, [modbus_device("env", port, [TEMP], interval=0.05,
                                          timeout=0.04)]).devices[0]
    polls = []

    class Broken:
        def on_poll(self, device: Any, result: Any, latency: float) -> None:
            polls.append(result)
            raise RuntimeError("downstream bug")

        def on_failure(self, *args: Any) -> None: ...
        def on_recovered(self, device: Any) -> None: ...

    driver = ModbusDriver(dev)
    poller = DevicePoller(dev, driver, Broken())
    task = asyncio.create_task(poller.run())
    await eventually(lambda: len(polls) >= 5, 5)
    poller.stop()
    await task
    await driver.close()
    assert "handling the poll result failed" in caplog.text
