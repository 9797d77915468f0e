"""Host and service checks against real peers on loopback: ICMP, TCP, HTTP, SNMP IF-MIB."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.host import HostDriver
from monitor.core.model import Quality
from tests import peers
from tests.conftest import config
from tests.servers.http_receiver import Receiver

UNROUTED = "198.51.100.1"
"""TEST-NET-2 (RFC 5737): never answers."""


def host(name: str, address: str, checks: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": name, "area": "machine_room", "class": "host", "type": "host",
            "interval": kw.pop("interval", 0.2), "timeout": kw.pop("timeout", 0.15),
            "jitter": 0, "connection": {"host": address, **kw}, "points": checks}


def driver(tmp_path: Path, address: str, checks: list[dict[str, Any]], **kw: Any) -> HostDriver:
    return HostDriver(config(tmp_path, [host("h", address, checks, **kw)]).devices[0])


def values(result: Any) -> dict[str, Any]:
    return {r.point.removeprefix("h."): r.value for r in result.readings}


@pytest.fixture
def web() -> Iterator[Receiver]:
    server = Receiver(reply=b'{"status": "ok", "db": "connected"}').start()
    yield server
    server.stop()


async def test_icmp_up_and_down(tmp_path: Path) -> None:
    up = await driver(tmp_path, "127.0.0.1", [{"key": "ping", "check": "icmp"}],
                      interval=5, timeout=1).poll()
    got = values(up)
    assert got["ping"] is True and got["ping.loss"] == 0 and got["ping.rtt"] >= 0
    assert got["ping.detail"] == "" and not up.problems
    started = time.monotonic()
    down = await driver(tmp_path, UNROUTED, [{"key": "ping", "check": "icmp", "count": 2}],
                        interval=5, timeout=1).poll()
    got = values(down)
    assert got["ping"] is False and got["ping.loss"] == 100 and got["ping.rtt"] is None
    assert "no echo reply" in got["ping.detail"] and not down.problems  # down is an answer
    assert time.monotonic() - started < 3.0      # cut at the check's timeout (1 s, 2 echoes)
    assert all(r.quality == Quality.GOOD for r in down.readings)


async def test_tcp_accepted_refused_and_silent(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    closed = peers.free_port()
    try:
        drv = driver(tmp_path, "127.0.0.1", [
            {"key": "db", "check": "tcp", "port": listener.getsockname()[1]},
            {"key": "gone", "check": "tcp", "port": closed}])
        got = values(await drv.poll())
        assert got["db"] is True and got["db.ms"] >= 0 and got["db.detail"] == ""
        assert got["gone"] is False and "refused" in got["gone.detail"].lower()
    finally:
        listener.close()
    # a server that takes no more connections (its backlog is full): the SYN goes unanswered
    hung = socket.create_server(("127.0.0.1", 0), backlog=0)
    queued = socket.create_connection(hung.getsockname())
    try:
        started = time.monotonic()
        got = values(await driver(tmp_path, "127.0.0.1", [
            {"key": "db", "check": "tcp", "port": hung.getsockname()[1]}],
            timeout=0.5, interval=5).poll())
        assert got["db"] is False and got["db.detail"] == "no answer on port " \
            f"{hung.getsockname()[1]} within 0.5 s"
        assert time.monotonic() - started < 1.2
    finally:
        queued.close()
        hung.close()


async def test_http_status_body_and_a_server_that_hangs(tmp_path: Path, web: Receiver) -> None:
    checks = [{"key": "erp", "check": "http", "url": f"{web.url}/health", "expect_body": "ok"},
              {"key": "path", "check": "http", "url": "/health", "port": web.port,
               "expect_body": "connected"},
              {"key": "wrong", "check": "http", "url": f"{web.url}/", "expect_body": "healthy"},
              {"key": "teapot", "check": "http", "url": f"{web.url}/", "expect_status": [418]}]

    async def poll() -> dict[str, Any]:
        return values(await driver(tmp_path, "127.0.0.1", checks, interval=5,
                                   timeout=0.5).poll())
    got = await poll()
    assert got["erp"] is True and got["erp.status"] == 200 and got["erp.ms"] > 0
    assert got["path"] is True and [r.path for r in web.requests].count("/health") == 2
    assert got["wrong"] is False and "healthy" in got["wrong.detail"]
    assert got["teapot"] is False and got["teapot.detail"] == "HTTP 200, expected 418"
    web.mode = "500"
    got = await poll()
    assert got["erp"] is False and got["erp.status"] == 500 and "HTTP 500" in got["erp.detail"]
    web.mode, web.delay = "slow", 3.0
    started = time.monotonic()
    got = await poll()
    assert got["erp"] is False and "no answer within 0.5 s" in got["erp.detail"]
    assert got["erp.status"] is None
    assert time.monotonic() - started < 1.5


async def test_interface_status_over_snmp(tmp_path: Path, snmpsim: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_SWITCH", "vigil-switch")
    snmp = {"version": "2c", "community": {"env": "VIGIL_TEST_SWITCH"},
            "port": peers.SNMP_PORT}
    drv = driver(tmp_path, "127.0.0.1", [
        {"key": "uplink", "check": "interface", "interface": "Gi0/1"},
        {"key": "backup", "check": "interface", "interface": "GigabitEthernet0/2"},
        {"key": "odd", "check": "interface", "interface": 3},
        {"key": "nosuch", "check": "interface", "interface": "Gi0/9"}],
        snmp=snmp, interval=5, timeout=1)
    result = await drv.poll()
    got = values(result)
    assert got["uplink"] is True and got["uplink.status"] == "up"
    assert got["backup"] is False and got["backup.status"] == "lowerLayerDown"
    assert got["backup.detail"] == "interface GigabitEthernet0/2 is lowerLayerDown"
    # an answer that means nothing, and a name the agent does not have: unknown, not down
    assert got["odd"] is None and got["nosuch"] is None
    invalid = {r.point for r in result.readings if r.quality == Quality.INVALID}
    assert {"h.odd", "h.nosuch"} <= invalid and "h.uplink" not in invalid
    assert any("ifOperStatus is 9" in p for p in result.problems)
    assert any("no interface named 'Gi0/9'" in p for p in result.problems)


async def test_a_silent_snmp_agent_leaves_the_interface_unknown(tmp_path: Path) -> None:
    drv = driver(tmp_path, "127.0.0.1", [{"key": "uplink", "check": "interface",
                                          "interface": 1}],
                 snmp={"version": "2c", "port": peers.free_port(), "retries": 0},
                 interval=5, timeout=0.5)
    result = await drv.poll()
    assert values(result)["uplink"] is None
    assert result.problems and "no answer from 127.0.0.1" in result.problems[0]


async def test_each_check_runs_on_its_own_interval(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        drv = driver(tmp_path, "127.0.0.1", [
            {"key": "fast", "check": "tcp", "port": port},
            {"key": "slow", "check": "tcp", "port": port, "interval": 60}], interval=0.2)
        assert {"fast", "slow"} <= set(values(await drv.poll()))
        later = {}
        end = time.monotonic() + 5
        while "fast" not in later and time.monotonic() < end:
            await asyncio.sleep(0.05)
            later = values(await drv.poll())
        assert "fast" in later and "slow" not in later
    finally:
        listener.close()


def test_each_reading_of_a_check_has_a_label_and_unit(tmp_path: Path) -> None:
    device = config(tmp_path, [host("h", "127.0.0.1", [
        {"key": "web", "check": "http", "url": "/", "label": "登录页"},
        {"key": "ping", "check": "icmp"}])]).devices[0]
    described = {k: (p.label, p.unit) for k, p in device.described_points().items()}
    assert described["web.ms"] == ("登录页 响应时间", "ms")
    assert described["ping.loss"] == ("ping 丢包率", "%")
    assert set(described) == set(HostDriver(device).point_keys())
