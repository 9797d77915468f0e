"""The daemon as a user runs it: `vigil run`, the API and its token, the CLI, signals, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import peers
from tests.conftest import modbus_device, site_yaml
from tests.test_sink import vm_export

TOKEN = "test-token-2718281828"
TEMP = {"key": "temperature", "table": "holding", "address": 40, "data_type": "int16",
        "scale": 0.1, "unit": "°C", "label": "机房温度"}


class Running:
    def __init__(self, proc: subprocess.Popen[str], port: int, cfg_path: Path, log: Path):
        self.proc, self.port, self.cfg_path, self.log = proc, port, cfg_path, log
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, headers=headers, timeout=5)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})

    def wait(self, cond: Any, within: float = 10) -> Any:
        end = time.monotonic() + within
        while time.monotonic() < end:
            value = cond()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"not met within {within} s; log:\n{self.log.read_text()[-3000:]}")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.cfg_path.parent / "data" / "vigil.db")


def write_config(tmp_path: Path, devices: list[dict[str, Any]], **extra: Any) -> Path:
    port = extra.pop("api_port", None) or peers.free_port()
    text = site_yaml(tmp_path, devices, extra.pop("rules", []),
                     api={"port": port, "token": {"env": "VIGIL_API_TOKEN"}}, **extra)
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def start(cfg_path: Path, env: dict[str, str] | None = None) -> Running:
    port = yaml.safe_load(cfg_path.read_text())["api"]["port"]
    log = cfg_path.parent / f"daemon-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", str(cfg_path)],
                                stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "VIGIL_API_TOKEN": TOKEN, **(env or {})})
    running = Running(proc, port, cfg_path, log)
    running.wait(lambda: proc.poll() is not None or peers.http_ok(f"{running.url}/health"), 20)
    assert proc.poll() is None, log.read_text()
    return running


@pytest.fixture
def daemon(tmp_path: Path, modbus_peer: Path) -> Iterator[Running]:
    peers.set_modbus_state(modbus_peer, hr={40: 215})
    cfg = write_config(tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP],
                                                interval=0.2, timeout=0.1)],
                       rules=[{"name": "mr_hot", "point": "mr_env.temperature",
                               "kind": "threshold", "high": 27}])
    running = start(cfg)
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_health_is_open_everything_else_needs_the_token(daemon: Running) -> None:
    health = daemon.get("/health", token=None)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    spec = httpx.get(daemon.url + "/openapi.json").json()
    guarded = [p for p in spec["paths"] if p.startswith("/api/")] + ["/metrics"]
    assert "/api/v1/points" in guarded and "/api/v1/alarms/{alarm_id}/acknowledge" in guarded
    for path in guarded:
        url = path.replace("{point_id}", "mr_env.temperature").replace("{alarm_id}", "x")
        assert daemon.get(url, token=None).status_code in (401, 405), url
        assert daemon.get(url, token="wrong").status_code in (401, 405), url
    assert daemon.get("/api/v1/points").status_code == 200
    assert TOKEN not in daemon.log.read_text()


def test_points_history_and_metrics(daemon: Running) -> None:
    point = daemon.wait(lambda: next((p for p in daemon.get("/api/v1/points").json()
                                      if p["value"] is not None), None))
    assert point["id"] == "mr_env.temperature" and point["value"] == pytest.approx(21.5)
    assert point["unit"] == "°C" and point["quality"] == "good" and point["label"] == "机房温度"
    assert time.time() - point["ts"] < 5
    daemon.wait(lambda: len(daemon.get("/api/v1/points/mr_env.temperature/history")
                            .json()["values"]) >= 3)
    hist = daemon.get("/api/v1/points/mr_env.temperature/history?limit=2").json()
    assert len(hist["values"]) == 2 and hist["values"][0]["ts"] > hist["values"][1]["ts"]
    assert daemon.get("/api/v1/points/nope.x/history").status_code == 404
    devices = daemon.get("/api/v1/devices").json()
    assert devices[0]["name"] == "mr_env" and devices[0]["state"] == "online"
    metrics = daemon.get("/metrics").text
    assert 'vigil_poll_latency_seconds_count{device="mr_env"}' in metrics
    assert "vigil_outbox_lines" in metrics and "vigil_sink_lag_seconds" in metrics


def cli(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "VIGIL_API_TOKEN": token}, timeout=30)


def test_acknowledge_and_shelve_by_cli_and_api(daemon: Running, modbus_peer: Path) -> None:
    peers.set_modbus_state(modbus_peer, hr={40: 301})
    daemon.wait(lambda: any(a["id"] == "mr_hot.high" for a in
                            daemon.get("/api/v1/alarms").json()))
    out = cli("alarms", "--url", daemon.url)
    assert "mr_hot.high" in out.stdout and "active_unacknowledged" in out.stdout
    out = cli("ack", "mr_hot.high", "--who", "张三", "--note", "空调报修", "--url", daemon.url)
    assert out.returncode == 0, out.stderr
    assert "active_acknowledged" in out.stdout and "张三" in out.stdout
    again = daemon.post("/api/v1/alarms/mr_hot.high/acknowledge", {"who": "李四"})
    assert again.status_code == 409
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "30m", "--url", daemon.url)
    assert out.returncode == 0, out.stderr
    alarm = next(a for a in daemon.get("/api/v1/alarms").json() if a["id"] == "mr_hot.high")
    assert alarm["state"] == "shelved" and alarm["shelved_by"] == "王五"
    assert alarm["shelved_until"] == pytest.approx(time.time() + 1800, abs=30)
    out = cli("unshelve", "mr_hot.high", "--who", "王五", "--url", daemon.url)
    assert out.returncode == 0 and "active_acknowledged" in out.stdout, out.stderr
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "30m", "--url", daemon.url)
    hist = daemon.get("/api/v1/alarms/history?alarm=mr_hot.high").json()
    assert [h["action"] for h in hist][:5] == ["shelved", "unshelved", "shelved",
                                               "acknowledged", "raised"]
    assert hist[3]["who"] == "张三" and hist[3]["note"] == "空调报修"
    bad = cli("ack", "mr_hot.high", "--who", "x", "--url", daemon.url, token="wrong")
    assert bad.returncode != 0 and "valid bearer token" in bad.stderr
    peers.set_modbus_state(modbus_peer, hr={40: 215})


def test_reload_refuses_a_broken_config_and_keeps_running(daemon: Running) -> None:
    good = daemon.cfg_path.read_text()
    daemon.cfg_path.write_text(good.replace("kind: threshold", "kind: thresold"))
    os.kill(daemon.proc.pid, signal.SIGHUP)
    resp = daemon.post("/api/v1/reload")
    assert resp.status_code == 422
    assert any("rules[0].kind: unknown kind 'thresold'" in e
               for e in resp.json()["detail"]["errors"])
    assert daemon.proc.poll() is None
    assert [d["name"] for d in daemon.get("/api/v1/devices").json()] == ["mr_env"]
    assert "reload refused" in daemon.log.read_text()
    data = yaml.safe_load(good)
    extra = dict(data["devices"][0], name="office_env", points=[dict(TEMP, address=42)])
    data["devices"].append(extra)
    daemon.cfg_path.write_text(yaml.safe_dump(data, allow_unicode=True))
    os.kill(daemon.proc.pid, signal.SIGHUP)
    daemon.wait(lambda: [d["name"] for d in daemon.get("/api/v1/devices").json()] ==
                ["mr_env", "office_env"])
    daemon.wait(lambda: daemon.get("/api/v1/devices").json()[1]["state"] == "online")


def test_sigterm_stops_cleanly_and_commits(daemon: Running) -> None:
    daemon.wait(lambda: daemon.get("/api/v1/devices").json()[0]["state"] == "online")
    time.sleep(0.5)
    seen = daemon.get("/api/v1/points").json()[0]["ts"]
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(10) == 0
    with daemon.db() as db:
        last = db.execute("SELECT MAX(ts) FROM history").fetchone()[0]
    assert last >= seen
    assert "stopped; everything queued is committed" in daemon.log.read_text()


def test_sigkill_with_sink_down_loses_nothing(tmp_path: Path, modbus_peer: Path, vm: str) -> None:
    peers.set_modbus_state(modbus_peer, hr={41: 222})
    site = f"kill{time.time_ns()}"
    point = dict(TEMP, address=41)
    dead_port = peers.free_port()
    cfg = write_config(tmp_path, [modbus_device("env", peers.MODBUS_PORT, [point],
                                                interval=0.2, timeout=0.15)],
                       site={"name": site},
                       sink={"type": "influxdb_v2", "url": f"http://127.0.0.1:{dead_port}",
                             "flush_interval": 0.1, "retry_max": 0.5})
    first = start(cfg)
    first.wait(lambda: first.get("/metrics").text.count("vigil_outbox_lines 0.0") == 0, 10)
    time.sleep(2)
    first.proc.kill()                        # SIGKILL while points wait for the sink
    first.proc.wait()
    with first.db() as db:
        queued = db.execute("SELECT COALESCE(SUM(lines), 0) FROM outbox").fetchone()[0]
    assert queued >= 10
    cfg.write_text(cfg.read_text().replace(f"http://127.0.0.1:{dead_port}", vm))
    second = start(cfg)
    try:
        second.wait(lambda: "vigil_outbox_lines 0.0" in second.get("/metrics").text, 20)
    finally:
        second.proc.send_signal(signal.SIGTERM)
        second.proc.wait(10)
    with second.db() as db:
        stored = db.execute("SELECT COUNT(*) FROM history WHERE point = 'env.temperature' "
                            "AND quality = 'good'").fetchone()[0]
        # polls made after the outbox emptied and before SIGTERM wait for the next start
        pending = sum(body.count(b"environment,") for (body,) in
                      db.execute("SELECT body FROM outbox"))
    series = vm_export(vm, f'environment_temperature{{site="{site}"}}')
    delivered = sum(len(s["values"]) for s in series)
    assert delivered + pending == stored and delivered >= queued / 2
    assert [s["metric"]["device"] for s in series] == ["env"]


def test_events_of_devices_are_listed(tmp_path: Path, modbus_peer: Path) -> None:
    cfg = write_config(tmp_path, [
        modbus_device("mr_env", peers.MODBUS_PORT, [TEMP], interval=0.2, timeout=0.1),
        modbus_device("gone", peers.free_port(), [dict(TEMP, address=43)], interval=0.2,
                      timeout=0.1, failures_before_unavailable=2)])
    running = start(cfg)
    try:
        events = running.wait(lambda: running.get("/api/v1/events").json(), 10)
        assert events[0]["device"] == "gone" and events[0]["kind"] == "COMMBAD"
        assert "cannot connect" in events[0]["message"]
        assert running.get("/api/v1/events?device=mr_env").json() == []
    finally:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(10)


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [], data_dir="/proc/vigil-data")
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "run", str(cfg)],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "VIGIL_API_TOKEN": TOKEN})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(
        "vigil: cannot create data directory /proc/vigil-data:")
    assert "Traceback" not in out.stderr
