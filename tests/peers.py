"""Start and stop the real protocol peers the tests talk to, all on 127.0.0.1.

Ports follow shared/peers: VictoriaMetrics 18428, InfluxDB 1.x 18086, Modbus TCP 15020.
A missing peer program fails the test that needs it, with the package to install; set
VIGIL_SKIP_MISSING_PEERS=1 to skip those tests instead (CI never sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).parent
VM_PORT, INFLUX_PORT, INFLUX_RPC_PORT, MODBUS_PORT = 18428, 18086, 18088, 15020


def need(program: str, package: str) -> str:
    path = shutil.which(program) or (program if os.access(program, os.X_OK) else None)
    if path is None:
        msg = f"{program} is not installed (Debian package {package}); .ci/run installs it"
        if os.environ.get("VIGIL_SKIP_MISSING_PEERS"):
            pytest.skip(msg)
        pytest.fail(msg)
    return path


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bool(resp.status < 300)
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peer:
    """One server process; ``ready()`` tells when it serves."""

    def __init__(self, name: str, args: list[str], ready: Callable[[], bool], log_dir: Path,
                 cwd: Path | None = None):
        self.name, self.args, self.ready, self.cwd = name, args, ready, cwd
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Peer:
        if self.ready():
            raise RuntimeError(f"{self.name}: something already answers on its port; stop it "
                               f"first (tests start their own peers)")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.cwd)
        end = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"{self.name} did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def victoria_metrics(work: Path) -> Peer:
    exe = need("victoria-metrics", "victoria-metrics")
    return Peer("victoria-metrics", [exe, f"-storageDataPath={work / 'vm'}",
                                     f"-httpListenAddr=127.0.0.1:{VM_PORT}", "-retentionPeriod=1",
                                     "-loggerLevel=WARN", "-search.latencyOffset=0s",
                                     "-search.disableCache"],
                lambda: http_ok(f"http://127.0.0.1:{VM_PORT}/health"), work)


def influxdb1(work: Path) -> Peer:
    exe = need("influxd", "influxdb")
    conf = work / "influxdb.conf"
    conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{INFLUX_RPC_PORT}"
[meta]
  dir = "{work}/influx/meta"
[data]
  dir = "{work}/influx/data"
  wal-dir = "{work}/influx/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{INFLUX_PORT}"
  log-enabled = false
[logging]
  level = "warn"
""")
    return Peer("influxd", [exe, "-config", str(conf)],
                lambda: http_ok(f"http://127.0.0.1:{INFLUX_PORT}/ping"), work)


def modbus_peer(work: Path, port: int = MODBUS_PORT) -> tuple[Peer, Path]:
    state = work / f"modbus-{port}.json"
    state.write_text("{}")
    peer = Peer(f"modbus-{port}", [sys.executable, "-m", "tests.servers.modbus_peer",
                                   str(port), str(state)], lambda: tcp_open(port), work,
                cwd=HERE.parent)
    return peer, state


def set_modbus_state(state: Path, **tables: dict[int, int | bool]) -> None:
    """Rewrite the peer's state file atomically (the server applies it within 0.1 s)."""
    current = json.loads(state.read_text() or "{}")
    for table, values in tables.items():
        current.setdefault(table, {}).update({str(k): v for k, v in values.items()})
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(current))
    os.replace(tmp, state)


def serial_pair(work: Path) -> tuple[Peer, Path, Path]:
    """Two linked pseudo-terminals (socat): a serial line between a server and a client."""
    exe = need("socat", "socat")
    a, b = work / "tty-server", work / "tty-client"
    peer = Peer("socat", [exe, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                lambda: a.exists() and b.exists(), work)
    return peer, a, b


def libmodbus_server(work: Path, port: int) -> Peer:
    cc = need("gcc", "gcc")
    if subprocess.run(["pkg-config", "--exists", "libmodbus"]).returncode != 0:
        need("/nonexistent/libmodbus", "libmodbus-dev")
    exe = work / "libmodbus_server"
    if not exe.exists():
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "servers" / "libmodbus_server.c"),
                        *flags], check=True)
    return Peer(f"libmodbus-{port}", [str(exe), str(port)], lambda: tcp_open(port), work)
