"""The SNMP trap receiver: net-snmp's snmptrap and snmpinform as senders, on udp/11162."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from monitor.alarms.model import AlarmState
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import SIM_TEMP as TEMP
from tests.fixtures import snmp_device, start_sim
from tests.util import eventually, recorded

pytestmark = pytest.mark.usefixtures("snmp_env")
TRAP_PORT = 11162
ON_BATTERY = "1.3.6.1.2.1.33.2.1"
ALARM_ADDED = "1.3.6.1.2.1.33.2.3"
V3 = ["-u", "vigil", "-l", "authPriv", "-a", "SHA", "-A", peers.SNMP_V3["auth_key"],
      "-x", "AES", "-X", peers.SNMP_V3["priv_key"]]
ENGINE_ID = "0x80001f8880a1b2c3d4e5f6"


async def send(*args: str, tool: str = "snmptrap") -> None:
    """Run net-snmp's sender without blocking the loop (an inform waits for our answer)."""
    exe = peers.need(tool, "snmp")
    proc = await asyncio.create_subprocess_exec(
        exe, "-t", "1", "-r", "1", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"MIBS": "", "PATH": "/usr/bin:/bin"})
    _, err = await proc.communicate()
    assert proc.returncode == 0, f"{tool}: {err.decode()}"


async def v2c(trap_oid: str, *varbinds: str, community: str = "traps-secret") -> None:
    await send("-v", "2c", "-c", community, f"127.0.0.1:{TRAP_PORT}", "", trap_oid, *varbinds)


@pytest.fixture
async def site(tmp_path: Path, snmpsim: Any, daemon_factory: Any,
               monkeypatch: pytest.MonkeyPatch) -> Any:
    """A UPS read over SNMP (polled every 30 s, so only a trap explains a quick poll)."""
    monkeypatch.setenv("VIGIL_TEST_TRAP_COMMUNITY", "traps-secret")
    cfg = config(tmp_path, [snmp_device("ups1", "eaton-93e-80", profile="ups-mib", interval=30)],
                 traps={"listen": "127.0.0.1", "port": TRAP_PORT,
                        "communities": [{"env": "VIGIL_TEST_TRAP_COMMUNITY"}],
                        "users": [{"user": "vigil", "auth_protocol": "SHA",
                                   "auth_key": {"env": "VIGIL_TEST_V3_AUTH"},
                                   "priv_protocol": "AES",
                                   "priv_key": {"env": "VIGIL_TEST_V3_PRIV"},
                                   "engine_id": ENGINE_ID}]})
    daemon = await daemon_factory(cfg)
    await eventually(lambda: "ups1.ups.status" in daemon.state.latest)
    return daemon


def counters(daemon: Any) -> Any:
    return SimpleNamespace(**daemon.sources.counts()["snmp_traps"])


async def events(daemon: Any) -> list[tuple[str, str]]:
    await recorded(daemon)
    return await daemon.store.read(lambda c: c.execute(
        "SELECT kind, detail FROM events ORDER BY seq").fetchall())


async def test_on_battery_trap_is_an_event_and_polls_at_once(site: Any) -> None:
    polled = site.state.devices["ups1"].last_ok
    await v2c(ON_BATTERY, "1.3.6.1.2.1.33.1.2.2.0", "i", "5")
    await eventually(lambda: counters(site).accepted == 1, 5)
    assert await events(site) == [("ONBATT", "市电中断, UPS 转电池供电 (SNMP trap)")]
    await eventually(lambda: site.state.devices["ups1"].last_ok != polled, 5)


@pytest.mark.parametrize("how", ["v1", "v3-trap", "v3-inform", "alarm-added"])
async def test_trap_kinds_and_versions(site: Any, how: str) -> None:
    target = f"127.0.0.1:{TRAP_PORT}"
    if how == "v1":   # enterprise upsTraps, enterprise-specific trap 1: upsTrapOnBattery
        await send("-v", "1", "-c", "traps-secret", target, "1.3.6.1.2.1.33.2", "", "6", "1", "")
    elif how == "v3-trap":
        await send("-v", "3", "-e", ENGINE_ID, *V3, target, "", ON_BATTERY)
    elif how == "v3-inform":
        await send("-v", "3", *V3, target, "", ON_BATTERY, tool="snmpinform")
    else:             # upsTrapAlarmEntryAdded with upsAlarmDescr = upsAlarmLowBattery
        await v2c(ALARM_ADDED, "1.3.6.1.2.1.33.1.6.2.1.2.7", "o", "1.3.6.1.2.1.33.1.6.3.3")
    await eventually(lambda: counters(site).accepted == 1, 5)
    kind = "LOWBATT" if how == "alarm-added" else "ONBATT"
    assert [k for k, _ in await events(site)] == [kind]


async def test_wrong_community_and_unknown_sources_are_dropped(tmp_path: Path, snmpsim: Any,
                                                               daemon_factory: Any,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("VIGIL_TEST_TRAP_COMMUNITY", "traps-secret")
    cfg = config(tmp_path, [snmp_device("far", "eaton-93e-80", profile="ups-mib",
                                        connection={"host": "127.0.0.2"}, interval=30)],
                 traps={"listen": "127.0.0.1", "port": TRAP_PORT,
                        "communities": [{"env": "VIGIL_TEST_TRAP_COMMUNITY"}]})
    daemon = await daemon_factory(cfg)
    await v2c(ON_BATTERY)                              # from 127.0.0.1: not a configured source
    await v2c(ON_BATTERY, community="guess")           # wrong community: pysnmp drops it
    await eventually(lambda: counters(daemon).unknown_source == 1, 5)
    await asyncio.sleep(0.3)
    assert counters(daemon).accepted == 0
    assert counters(daemon).unknown_source == 1
    assert await events(daemon) == []
    daemon.refresh_gauges(time.time())  # the ticker does this every second
    metrics = daemon.ctx.metrics.render().decode()
    assert 'vigil_push_messages{outcome="unknown_source",source="snmp_traps"} 1.0' in metrics


async def test_garbage_packets_do_not_stop_the_receiver(site: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for packet in (b"", b"\x30", b"\x30\x82\xff\xff" + b"\x00" * 20, b"GET / HTTP/1.1\r\n",
                       bytes(range(256)) * 4):
            s.sendto(packet, ("127.0.0.1", TRAP_PORT))
    await v2c(ON_BATTERY)
    await eventually(lambda: counters(site).accepted == 1, 5)
    assert [k for k, _ in await events(site)] == ["ONBATT"]


async def test_authentication_failure_trap_is_an_alarm_of_its_own(site: Any) -> None:
    await v2c("1.3.6.1.6.3.1.1.5.5")
    await eventually(lambda: site.alarms.is_active("auth:ups1"), 5)
    alarm = site.alarms.alarms["auth:ups1"]
    assert alarm.state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert "authenticationFailure" in alarm.message
    assert [k for k, _ in await events(site)] == ["AUTH_FAILURE"]
    polled = site.state.devices["ups1"].last_ok
    site.core.poll_now("ups1")             # a good poll does not clear it: a person must look
    await eventually(lambda: site.state.devices["ups1"].last_ok != polled, 5)
    assert alarm.state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert not site.alarms.is_active("operator:ups1")
    await site.alarms.acknowledge("auth:ups1", "张三", "已核对社区名")
    assert alarm.state() is AlarmState.NORMAL


async def captured_trap(*args: str) -> bytes:
    """The bytes snmptrap sends, caught on a spare port, to replay fast."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        await send("-v", "2c", "-c", "traps-secret", f"127.0.0.1:{port}", "", *args)
        return s.recv(65535)


async def test_trap_flood_keeps_polling_on_time_and_loses_no_onbatt(
        tmp_path: Path, snmpsim: Any, daemon_factory: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 traps/s for 10 s from the UPS's agent, one upsTrapOnBattery among them."""
    monkeypatch.setenv("VIGIL_TEST_TRAP_COMMUNITY", "traps-secret")
    port = peers.free_port()
    sim = await start_sim(port)
    cfg = config(tmp_path, [snmp_device("ups1", "eaton-93e-80", profile="ups-mib", interval=30),
                            modbus_device("env", port, [TEMP], interval=0.2, timeout=0.15)],
                 traps={"listen": "127.0.0.1", "port": TRAP_PORT,
                        "communities": [{"env": "VIGIL_TEST_TRAP_COMMUNITY"}]})
    daemon = await daemon_factory(cfg)
    noise = await captured_trap("1.3.6.1.6.3.1.1.5.1")      # coldStart
    onbatt = await captured_trap(ON_BATTERY)
    loop = asyncio.get_running_loop()

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.monotonic()
            for n in itertools.count():
                if n >= 10_000:
                    return
                time.sleep(max(0.0, start + n / 1000 - time.monotonic()))
                s.sendto(onbatt if n == 5000 else noise, ("127.0.0.1", TRAP_PORT))
    await eventually(lambda: "env.temperature" in daemon.state.latest)
    started = time.time()
    await loop.run_in_executor(None, flood)
    ended = time.time()
    # none dropped: what the loop could not take at once waits in the socket's buffer
    await eventually(lambda: counters(daemon).accepted == 10_000, 60)
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT ts FROM history WHERE point = 'env.temperature' AND ts BETWEEN ? AND ? "
        "ORDER BY ts", (started, ended)).fetchall())
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(rows)]
    await sim.shutdown()
    # the trap's ONBATT, then the poll it triggered finds the (simulated) UPS on line again
    assert [k for k, _ in await events(daemon)] == ["ONBATT", "ONLINE"]
    # a stall would be seconds: five polls (1 s) is the bound
    assert len(rows) >= 30 and max(gaps) < 1.0, f"polling stalled {max(gaps):.2f} s"
