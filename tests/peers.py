"""Start and stop the real protocol peers the tests talk to, all on 127.0.0.1.

Ports (docs/testing.md): VictoriaMetrics 18428, InfluxDB 1.x 18086, Modbus TCP 15020,
Mosquitto 11883.
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
NUT_PORT = 13493
MQTT_PORT = 11883
SNMP_PORT = 11161
SNMP_V3 = {"user": "vigil", "auth_key": "authpass123", "priv_key": "privpass123"}
UPS_RECORDINGS = ("eaton-93e-80", "huawei-gse200m", "phoenixtec-power", "eastpower-istars-swv053")


def missing(what: str, package: str) -> None:
    """Fail (or skip, with VIGIL_SKIP_MISSING_PEERS=1) the test that needs ``what``."""
    msg = f"{what} is not installed (Debian package {package}); .ci/run installs it"
    if os.environ.get("VIGIL_SKIP_MISSING_PEERS"):
        pytest.skip(msg)
    pytest.fail(msg)


def need(program: str, package: str) -> str:
    path = shutil.which(program) or (program if os.access(program, os.X_OK) else None)
    if path is None:
        missing(program, package)
    assert path is not None
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
                 cwd: Path | None = None, env: dict[str, str] | None = None):
        self.name, self.args, self.ready, self.cwd, self.env = name, args, ready, cwd, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Peer:
        if self.ready():
            raise RuntimeError(f"{self.name}: something already answers on its port; stop it "
                               f"first (tests start their own peers)")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.cwd, env={**os.environ, **(self.env or {})})
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


def mosquitto(work: Path, port: int = MQTT_PORT, anonymous: bool = True) -> Peer:
    """A broker; ``anonymous=False`` with no password file refuses every client."""
    exe = need("/usr/sbin/mosquitto", "mosquitto")
    conf = work / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous {str(anonymous).lower()}\n"
                    f"persistence false\n")
    return Peer(f"mosquitto-{port}", [exe, "-c", str(conf)], lambda: tcp_open(port), work)


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


class Nut:
    """NUT's upsd with one dummy-ups driver per UPS; ``set(ups, **vars)`` rewrites its .dev."""

    def __init__(self, work: Path, upses: tuple[str, ...] = ("ups1", "ups2"),
                 port: int = NUT_PORT, maxage: int = 15, tls: bool = False):
        self.dir, self.port, self.upses = work / "nut", port, upses
        run = self.dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o777)
        (self.dir / "nut.conf").write_text("MODE=standalone\n")
        (self.dir / "ups.conf").write_text("".join(
            f"[{u}]\n  driver = dummy-ups\n  port = {self.dir / u}.dev\n  mode = dummy-once\n"
            for u in upses))
        upsd_conf = f"LISTEN 127.0.0.1 {port}\nMAXAGE {maxage}\n"
        self.ca_file: Path | None = None
        if tls:
            upsd_conf += self._certificate()
        (self.dir / "upsd.conf").write_text(upsd_conf)
        (self.dir / "upsd.users").write_text(
            "[admin]\n  password = secret\n  actions = SET\n  instcmds = ALL\n"
            "[monuser]\n  password = monpass\n  upsmon secondary\n")
        for u in upses:
            self.set(u, **{"ups.status": "OL", "battery.charge": 100, "battery.runtime": 3600,
                           "input.voltage": 230.0, "ups.load": 23})
        env = {"NUT_CONFPATH": str(self.dir), "NUT_STATEPATH": str(run),
               "NUT_ALTPIDPATH": str(run)}
        me = os.environ.get("USER") or "root"
        driver = need("/lib/nut/dummy-ups", "nut-server")
        upsd = need("/lib/nut/upsd", "nut-server")
        self.drivers = {u: Peer(f"dummy-ups-{u}", [driver, "-a", u, "-u", me, "-F"],
                                lambda u=u: (run / f"dummy-ups-{u}").exists(), work, env=env)
                        for u in upses}
        self.upsd = Peer("upsd", [upsd, "-u", me, "-F"], lambda: tcp_open(port), work, env=env)

    def _certificate(self) -> str:
        """An NSS database with a self-signed certificate for 127.0.0.1 (Debian's upsd uses
        NSS); its PEM is ``ca_file`` for clients that verify."""
        certutil = need("certutil", "libnss3-tools")
        db, pw = self.dir / "nssdb", self.dir / "nss-password"
        db.mkdir(exist_ok=True)
        pw.write_text("nss-test-password\n")
        (self.dir / "noise").write_bytes(os.urandom(64))
        subprocess.run([certutil, "-N", "-d", f"sql:{db}", "-f", str(pw)], check=True,
                       capture_output=True)
        subprocess.run([certutil, "-S", "-n", "upsd", "-s", "CN=127.0.0.1", "-x", "-t",
                        "CT,C,C", "-k", "rsa", "-g", "2048", "-v", "12", "-d", f"sql:{db}",
                        "-f", str(pw), "-z", str(self.dir / "noise"), "--extSAN",
                        "ip:127.0.0.1"],
                       check=True, capture_output=True)
        pem = subprocess.run([certutil, "-L", "-n", "upsd", "-a", "-d", f"sql:{db}"],
                             check=True, capture_output=True).stdout
        self.ca_file = self.dir / "upsd-ca.pem"
        self.ca_file.write_bytes(pem)
        return f'CERTPATH {db}\nCERTIDENT "upsd" "nss-test-password"\n'

    def set(self, ups: str, **values: object) -> None:
        """Rewrite the UPS's .dev atomically; dummy-ups re-reads it within about 2 s."""
        path = self.dir / f"{ups}.dev"
        current = {}
        if path.exists():
            current = dict(ln.split(": ", 1) for ln in path.read_text().splitlines() if ln)
        current.update({k: str(v) for k, v in values.items()})
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{k}: {v}\n" for k, v in current.items()))
        if path.exists():  # dummy-ups compares whole-second mtimes: make this one differ
            stamp = max(time.time(), int(path.stat().st_mtime) + 1)
            os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)

    def start(self) -> Nut:
        for d in self.drivers.values():
            d.start()
        self.upsd.start()
        return self

    def stop(self) -> None:
        self.upsd.stop()
        for d in self.drivers.values():
            d.stop()


class Snmpsim(Peer):
    """snmpsim serving snmpsim-data's real UPS recordings (community = recording name) and
    tests/snmp/*.snmprec; SNMPv3 user vigil (SHA/AES), the context naming the recording."""

    def __init__(self, work: Path, port: int = SNMP_PORT):
        import bz2

        import snmpsim_data

        self.data = work / "snmp" / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        recordings = Path(snmpsim_data.__file__).parent / "data" / "UPS"
        for name in UPS_RECORDINGS:
            (self.data / f"{name}.snmprec").write_bytes(
                bz2.decompress((recordings / f"{name}.snmprec.bz2").read_bytes()))
        for own in (HERE / "snmp").glob("*.snmprec"):
            (self.data / own.name).write_bytes(own.read_bytes())
        exe = str(Path(sys.executable).parent / "snmpsim-command-responder")
        super().__init__("snmpsim", [
            exe, f"--data-dir={self.data}", f"--cache-dir={work / 'snmp' / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}", f"--v3-user={SNMP_V3['user']}",
            f"--v3-auth-key={SNMP_V3['auth_key']}", "--v3-auth-proto=SHA",
            f"--v3-priv-key={SNMP_V3['priv_key']}", "--v3-priv-proto=AES"],
            lambda: self._answers(port), work, env={"SNMPSIM_ALLOW_ROOT": "true"})

    @staticmethod
    def _answers(port: int) -> bool:
        import asyncio

        from pysnmp.hlapi.v3arch.asyncio import (
            CommunityData,
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            get_cmd,
        )

        async def ask() -> bool:
            target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=0.3, retries=0)
            ind, _, _, _ = await get_cmd(SnmpEngine(), CommunityData("eaton-93e-80"), target,
                                         ContextData(), ObjectType(ObjectIdentity(
                                             "1.3.6.1.2.1.33.1.2.1.0")), lookupMib=False)
            return ind is None
        return asyncio.run(ask())


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
        missing("libmodbus (pkg-config)", "libmodbus-dev")
    exe = work / "libmodbus_server"
    if not exe.exists():
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "servers" / "libmodbus_server.c"),
                        *flags], check=True)
    return Peer(f"libmodbus-{port}", [str(exe), str(port)], lambda: tcp_open(port), work)
