"""The NUT driver against Debian's upsd with dummy-ups: values, events, ERR codes, outages."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drivers.base import AuthError, ConfigurationError, ProtocolError
from drivers.nut import NutDriver
from monitor.alarms.model import AlarmState
from monitor.core.model import DeviceState, Quality
from monitor.devices.ups.kind import Ups
from tests import peers
from tests.conftest import config
from tests.servers import misbehaving
from tests.util import eventually

DEVICE_KEYS = ("failures_before_unavailable", "backoff_max")


def nut_device(name: str, ups: str, port: int = peers.NUT_PORT, points: Any = (),
               **kw: Any) -> dict[str, Any]:
    """A NUT UPS entry; ``kw`` goes to the connection, but for the device-level keys."""
    device = {k: kw.pop(k) for k in DEVICE_KEYS if k in kw}
    return {"name": name, "area": "machine_room", "class": "ups", "type": "nut",
            "interval": kw.pop("interval", 0.3), "timeout": kw.pop("timeout", 0.25),
            "jitter": 0, "connection": {"host": "127.0.0.1", "port": port, "ups": ups, **kw},
            "points": list(points), **device}


def driver(tmp_path: Path, **kw: Any) -> NutDriver:
    cfg = config(tmp_path, [nut_device("ups_a", kw.pop("ups", "ups1"), **kw)])
    return NutDriver(cfg.devices[0])


def active(daemon: Any, alarm_id: str) -> bool:
    alarm = daemon.alarms.alarms.get(alarm_id)
    return alarm is not None and bool(alarm.active)


async def poll(drv: NutDriver) -> Any:
    try:
        return await drv.poll()
    finally:
        await drv.close()


async def test_discovers_every_variable_upsd_reports(tmp_path: Path, nut: peers.Nut) -> None:
    result = await poll(driver(tmp_path))
    values = {r.point: r.value for r in result.readings}
    assert values["ups_a.ups.status"] == "OL"
    assert values["ups_a.battery.charge"] == 100.0
    assert values["ups_a.input.voltage"] == 230.0
    assert values["ups_a.device.model"] == "Dummy UPS"
    assert not any(k.startswith("ups_a.driver.") for k in values)
    assert all(r.quality is Quality.GOOD for r in result.readings)


async def test_configured_points_map_variables(tmp_path: Path, nut: peers.Nut) -> None:
    result = await poll(driver(tmp_path, points=[
        {"key": "battery.charge", "unit": "%"}, {"key": "mains", "var": "input.voltage"},
        {"key": "battery.voltage"}]))
    assert {r.point: r.value for r in result.readings} == {"ups_a.battery.charge": 100.0,
                                                           "ups_a.mains": 230.0}
    assert result.problems == ["upsd does not report battery.voltage"]


@pytest.mark.parametrize(("kw", "error", "text"), [
    ({"ups": "nope"}, ConfigurationError,
     "has no UPS named 'nope' (ERR UNKNOWN-UPS); it serves: ups1, ups2"),
    ({"username": "monuser", "password": {"env": "VIGIL_TEST_NUT_PW"}, "login": True},
     AuthError, "upsd refused LOGIN: ERR ACCESS-DENIED"),
    ({"tls": "require"}, AuthError, "upsd refused STARTTLS: ERR FEATURE-NOT-CONFIGURED"),
])
async def test_refusals_are_operator_errors(tmp_path: Path, nut: peers.Nut,
                                            monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any],
                                            error: type[Exception], text: str) -> None:
    monkeypatch.setenv("VIGIL_TEST_NUT_PW", "wrong-password")
    with pytest.raises(error) as info:
        await poll(driver(tmp_path, **kw))
    assert text in str(info.value)
    assert "wrong-password" not in str(info.value)


async def test_right_credentials_log_in(tmp_path: Path, nut: peers.Nut,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_NUT_PW", "monpass")
    drv = driver(tmp_path, username="monuser", password={"env": "VIGIL_TEST_NUT_PW"},
                 login=True)
    result = await poll(drv)
    assert any(r.point == "ups_a.ups.status" for r in result.readings)


async def test_garbage_from_the_server_is_a_protocol_error(tmp_path: Path) -> None:
    server, port = await misbehaving.start("garbage")
    try:
        with pytest.raises(ProtocolError, match="a line that is not text"):
            await poll(driver(tmp_path, port=port, tls="off"))
    finally:
        server.close()


@pytest.mark.parametrize(("language", "said"), [
    ("zh-CN", ["市电中断, UPS 转电池供电", "UPS 电池电量低", "市电恢复, UPS 回到市电供电"]),
    ("en", ["mains lost, the UPS is on battery", "the UPS's battery is low",
            "mains restored, the UPS is back on mains"])])
async def test_status_changes_are_events_at_once(tmp_path: Path, nut: peers.Nut,
                                                 daemon_factory: Any, language: str,
                                                 said: list[str]) -> None:
    cfg = config(tmp_path, [nut_device("ups_b", "ups2")],
                 [{"name": "on_battery", "point": "ups_b.ups.status", "kind": "state",
                   "equals": ["OB", "OB DISCHRG", "OB LB", "OB DISCHRG LB"]}],
                 site={"name": "test", "language": language})
    daemon = await daemon_factory(cfg)

    async def events() -> list[tuple[str, str]]:
        await daemon.store.committed()
        return await daemon.store.read(lambda c: c.execute(
            "SELECT kind, detail FROM events WHERE device = 'ups_b' ORDER BY seq").fetchall())
    await eventually(lambda: "ups_b.ups.status" in daemon.state.latest)
    nut.set("ups2", **{"ups.status": "OB DISCHRG", "battery.charge": 80})
    await eventually(lambda: daemon.alarms.alarms["on_battery"].active, 10)
    assert [k for k, _ in await events()] == ["ONBATT"]
    nut.set("ups2", **{"ups.status": "OB DISCHRG LB", "battery.charge": 9})
    await eventually(lambda: daemon.state.latest["ups_b.battery.charge"].value == 9.0, 10)
    nut.set("ups2", **{"ups.status": "OL CHRG", "battery.charge": 10})
    await eventually(lambda: daemon.state.latest["ups_b.ups.status"].value == "OL CHRG", 10)
    assert await events() == list(zip(["ONBATT", "LOWBATT", "ONLINE"], said, strict=True))
    nut.set("ups2", **{"ups.status": "OL", "battery.charge": 100})
    await eventually(lambda: daemon.state.latest["ups_b.ups.status"].value == "OL", 10)


async def test_stale_driver_then_vanished_upsd(tmp_path: Path, daemon_factory: Any,
                                               peer_dir: Path) -> None:
    """A hung UPS driver gives stale readings, then COMMBAD; upsd gone: COMMBAD until back."""
    port = peers.free_port()
    server = peers.Nut(peer_dir / "stale", upses=("ups9",), port=port, maxage=2).start()
    try:
        cfg = config(tmp_path, [nut_device("ups9", "ups9", port=port, interval=0.5,
                                           timeout=0.4, failures_before_unavailable=4)])
        daemon = await daemon_factory(cfg)
        await eventually(lambda: "ups9.ups.status" in daemon.state.latest and
                         daemon.state.latest["ups9.ups.status"].value == "OL", 10)
        pid = server.drivers["ups9"].proc.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)
        try:
            await eventually(lambda: daemon.state.latest["ups9.ups.status"].quality
                             is Quality.STALE, 10)
            assert daemon.state.latest["ups9.ups.status"].value == "OL"   # last value kept
            assert "DATA-STALE" in str(daemon.state.devices["ups9"].last_error)
            await eventually(lambda: active(daemon, "comm:ups9"), 10)
        finally:
            os.kill(pid, signal.SIGCONT)
        await eventually(lambda: not active(daemon, "comm:ups9"), 15)
        server.upsd.stop()
        await eventually(lambda: active(daemon, "comm:ups9"), 10)
        assert daemon.state.latest["ups9.ups.status"].quality is Quality.COMM_LOST
        server.upsd.start()
        await eventually(lambda: daemon.state.devices["ups9"].state is DeviceState.ONLINE, 15)
        await daemon.store.committed()   # what is queued is committed
        kinds = [k for (k,) in await daemon.store.read(lambda c: c.execute(
            "SELECT kind FROM events ORDER BY seq").fetchall())]
        assert kinds == ["COMMBAD", "COMMOK", "COMMBAD", "COMMOK"]
    finally:
        server.stop()


async def test_unknown_ups_is_an_operator_alarm_without_retry_storm(
        tmp_path: Path, nut: peers.Nut, daemon_factory: Any) -> None:
    cfg = config(tmp_path, [nut_device("ghost", "ups7", backoff_max=30)])
    daemon = await daemon_factory(cfg)
    await eventually(lambda: active(daemon, "operator:ghost"))
    alarm = daemon.alarms.alarms["operator:ghost"]
    assert alarm.state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert "no UPS named 'ups7'" in alarm.message
    assert daemon.state.devices["ghost"].state is DeviceState.UNAVAILABLE
    assert daemon.pollers["ghost"].next_delay() == 30
    await asyncio.sleep(1)
    assert daemon.pollers["ghost"].failures == 1


def test_nocomm_follows_commbad_after_upsmon_time() -> None:
    seen: list[tuple[str, str]] = []
    site = SimpleNamespace(cfg=SimpleNamespace(power=SimpleNamespace(nocomm_after=300),
                                               site=SimpleNamespace(language="zh-CN")))
    watcher = Ups(site, lambda dev, kind, msg: seen.append((dev, kind)))  # type: ignore[arg-type]
    watcher.comm("ups1", False, 1000.0)
    watcher.tick(1299.0)
    assert seen == []
    watcher.tick(1300.0)
    watcher.tick(1400.0)
    assert seen == [("ups1", "NOCOMM")]
    watcher.comm("ups1", True, 1500.0)
    watcher.comm("ups1", False, 1600.0)
    watcher.tick(1901.0)
    assert seen == [("ups1", "NOCOMM"), ("ups1", "NOCOMM")]


async def test_starttls_encrypts_and_verifies(tmp_path: Path, peer_dir: Path) -> None:
    """upsd with a certificate (NSS): STARTTLS, verified against its CA file, or refused."""
    port = peers.free_port()
    server = peers.Nut(peer_dir / "tls", upses=("ups5",), port=port, tls=True).start()
    try:
        assert server.ca_file is not None
        client = await driver(tmp_path, ups="ups5", port=port, tls="require",
                              ca_file=str(server.ca_file))._connect()
        assert client.encrypted
        await client.close()
        result = await poll(driver(tmp_path, ups="ups5", port=port, tls="try",
                                   ca_file=str(server.ca_file)))
        assert any(r.point == "ups_a.ups.status" for r in result.readings)
        with pytest.raises(AuthError, match="certificate is not trusted"):
            await poll(driver(tmp_path, ups="ups5", port=port, tls="require",
                              ca_file="/etc/ssl/certs/ca-certificates.crt"))
    finally:
        server.stop()
