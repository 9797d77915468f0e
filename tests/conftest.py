"""Shared fixtures: real peers on loopback, a config factory, a daemon in the test's loop."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import SiteConfig, load_config_text
from monitor.core.store import Store
from monitor.daemon import Daemon
from tests import peers


@pytest.fixture(scope="session")
def peer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


@pytest.fixture(scope="session")
def vm(peer_dir: Path) -> Iterator[str]:
    """VictoriaMetrics (InfluxDB v2 write API) on 18428."""
    peer = peers.victoria_metrics(peer_dir).start()
    yield f"http://127.0.0.1:{peers.VM_PORT}"
    peer.stop()


@pytest.fixture(scope="session")
def influx1(peer_dir: Path) -> Iterator[str]:
    """Debian's InfluxDB 1.x (InfluxQL, /write) on 18086."""
    peer = peers.influxdb1(peer_dir).start()
    yield f"http://127.0.0.1:{peers.INFLUX_PORT}"
    peer.stop()


@pytest.fixture(scope="session")
def modbus_peer(peer_dir: Path) -> Iterator[Path]:
    """pymodbus SimDevice server on 15020; yields its state file (see peers.set_modbus_state)."""
    peer, state = peers.modbus_peer(peer_dir)
    peer.start()
    yield state
    peer.stop()


@pytest.fixture(scope="session")
def nut(peer_dir: Path) -> Iterator[peers.Nut]:
    """upsd on 13493 with dummy-ups UPSes ups1 and ups2 (MAXAGE 5 s)."""
    server = peers.Nut(peer_dir, maxage=5).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def snmpsim(peer_dir: Path) -> Iterator[peers.Snmpsim]:
    """snmpsim on udp/11161 with real UPS recordings; see peers.Snmpsim."""
    agent = peers.Snmpsim(peer_dir)
    agent.start(timeout=60)
    yield agent
    agent.stop()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a disk the test can fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def snmp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SNMP secrets come from the environment, as in production: one variable per community
    (VIGIL_TEST_COMMUNITY_<recording>) and the v3 keys; MIBs compile into the test's cache."""
    for name in (*peers.UPS_RECORDINGS, "vigil-odd", "wrong"):
        monkeypatch.setenv(f"VIGIL_TEST_COMMUNITY_{name.replace('-', '_')}", name)
    monkeypatch.setenv("VIGIL_TEST_V3_AUTH", peers.SNMP_V3["auth_key"])
    monkeypatch.setenv("VIGIL_TEST_V3_PRIV", peers.SNMP_V3["priv_key"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def site_yaml(tmp_path: Path, devices: list[dict[str, Any]], rules: list[dict[str, Any]] = (),
              **extra: Any) -> str:
    """A minimal valid site config around ``devices`` and ``rules``."""
    data: dict[str, Any] = {"site": {"name": "test"}, "data_dir": str(tmp_path / "data"),
                            "areas": [{"name": "machine_room"}], "devices": devices,
                            "rules": list(rules), "api": {"enabled": False}}
    data.update(extra)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def modbus_device(name: str, port: int | None, points: list[dict[str, Any]],
                  **kw: Any) -> dict[str, Any]:
    """A Modbus device entry: TCP to 127.0.0.1:``port``, or as ``connection`` says."""
    tcp = {"host": "127.0.0.1", "port": port} if port is not None else {}
    dev = {"name": name, "area": "machine_room", "class": kw.pop("cls", "environment"),
           "type": "modbus", "interval": kw.pop("interval", 0.2),
           "timeout": kw.pop("timeout", 0.1), "jitter": 0,
           "connection": {**tcp, **kw.pop("connection", {})}, "points": points}
    dev.update(kw)
    return dev


def config(tmp_path: Path, devices: list[dict[str, Any]], rules: list[dict[str, Any]] = (),
           **extra: Any) -> SiteConfig:
    return load_config_text(site_yaml(tmp_path, devices, rules, **extra), "test.yaml")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An embedded store in the test's data directory, committing every 20 ms."""
    s = Store(tmp_path, flush_interval=0.02)
    yield s
    if not s._stop:
        s.close()


@pytest.fixture
async def daemon_factory() -> AsyncIterator[Any]:
    """Start daemons in the test's loop; all are stopped at the end."""
    started: list[Daemon] = []

    async def make(cfg: SiteConfig) -> Daemon:
        d = Daemon(cfg)
        await d.start()
        started.append(d)
        return d

    yield make
    for d in started:
        if not d.store._stop:
            await d.stop()


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


ON_LINE, ON_BATTERY, LOW_BATTERY = 0b000, 0b010, 0b110
"""The generic-ups profile's status register."""


async def ups_sim(port: int) -> Any:
    """A UPS on line (a Modbus server), as the generic-ups profile reads it."""
    from monitor.demo.simulator import serve_sim

    server = await serve_sim(port, bits=8, registers=32)
    await server.async_setValues(1, 4, 0, [2300, 500, 2200, 500, 30, 540, 100, 0, 3600])
    await server.async_setValues(1, 4, 20, [ON_LINE])
    return server


@pytest.fixture
async def sim() -> Any:
    """A simulated UPS on a free port: (server, port)."""
    from tests import peers

    port = peers.free_port()
    server = await ups_sim(port)
    yield server, port
    await server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright (imported here: only browser tests need it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=peers.need("chromium", "chromium"),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()
