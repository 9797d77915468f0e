"""The daemon as a user runs it: `vigil run`, the API and its token, the CLI, signals, kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from monitor.core.credentials import hash_password
from tests import peers
from tests.conftest import modbus_device, site_yaml
from tests.fixtures import KILLED_MID_ACTION, TOKEN, Running, start, vm_export, write_config
from tests.fixtures import PEER_TEMP as TEMP

PASSWORD = "zhang-san-passw0rd"


@pytest.fixture
def daemon(tmp_path: Path, modbus_peer: Path) -> Iterator[Running]:
    peers.set_modbus_state(modbus_peer, hr={40: 215})
    cfg = write_config(tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP],
                                                interval=0.2, timeout=0.1)],
                       rules=[{"name": "mr_hot", "point": "mr_env.temperature",
                               "kind": "threshold", "high": 27}],
                       people=[{"name": "zhang_san", "label": "张三",
                                "credential": hash_password(PASSWORD)}])
    running = start(cfg)
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


@pytest.fixture
def daemons() -> Iterator[Callable[..., Running]]:
    """Start daemons (``start``); each still running at the end is stopped."""
    started: list[Running] = []

    def run(cfg_path: Path, env: dict[str, str] | None = None) -> Running:
        started.append(start(cfg_path, env))
        return started[-1]
    yield run
    for running in started:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            try:
                running.proc.wait(10)
            except subprocess.TimeoutExpired:
                running.proc.kill()


@pytest.fixture
def inbox() -> Iterator[Any]:
    from tests.servers.http_receiver import Receiver

    receiver = Receiver().start()
    yield receiver
    receiver.stop()


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


def cli(*args: str, token: str = TOKEN, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "VIGIL_API_TOKEN": token, **env},
                          timeout=30)


def test_acknowledge_and_shelve_by_cli_and_api(daemon: Running, modbus_peer: Path) -> None:
    peers.set_modbus_state(modbus_peer, hr={40: 301})
    daemon.wait(lambda: any(a["id"] == "mr_hot.high" for a in
                            daemon.get("/api/v1/alarms").json()))
    out = cli("alarms", "--url", daemon.url)
    assert "mr_hot.high" in out.stdout and "未确认" in out.stdout and "重要" in out.stdout
    wrong = cli("ack", "mr_hot.high", "--as", "zhang_san", "--url", daemon.url,
                VIGIL_PASSWORD="not-the-password")
    assert wrong.returncode == 2 and "HTTP 401: wrong name or password" in wrong.stderr
    out = cli("ack", "mr_hot.high", "--as", "zhang_san", "--note", "空调报修", "--url",
              daemon.url, token="", VIGIL_PASSWORD=PASSWORD)     # a person needs no token
    assert out.returncode == 0, out.stderr
    assert "已确认" in out.stdout and "张三" in out.stdout
    again = daemon.post("/api/v1/alarms/mr_hot.high/acknowledge", {"who": "李四"})
    assert again.status_code == 409 and "already acknowledged by 张三" in again.text
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "30m", "--note", "空调维修",
              "--url", daemon.url)
    assert out.returncode == 0, out.stderr
    alarm = next(a for a in daemon.get("/api/v1/alarms").json() if a["id"] == "mr_hot.high")
    assert alarm["state"] == "shelved" and alarm["shelved_by"] == "王五"
    assert alarm["shelved_until"] == pytest.approx(time.time() + 1800, abs=30)
    out = cli("unshelve", "mr_hot.high", "--who", "王五", "--url", daemon.url)
    assert out.returncode == 0 and "已确认" in out.stdout, out.stderr
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "30m", "--note", "空调维修",
              "--url", daemon.url)
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
    first.wait(lambda: first.db().execute(   # some are committed to the outbox, more queue
        "SELECT COALESCE(SUM(lines), 0) FROM outbox").fetchone()[0] >= 10)
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


def raw(running: Running, request: bytes, body: bytes = b"") -> tuple[int, bytes, float]:
    """Send a request by hand; the status line, the reply, and how long the answer took."""
    import socket

    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(request)
        if body:
            s.sendall(body)
        reply = s.recv(65536)
        took = time.monotonic() - started
    return int(reply.split(b" ")[1]), reply, took


def test_the_token_is_checked_before_the_body_is_read(daemon: Running) -> None:
    huge = (b"POST /api/v1/alarms/mr_hot.high/acknowledge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52428800\r\n")
    status, _, took = raw(daemon, huge + b"\r\n")      # 50 MiB announced, none sent
    assert status == 401 and took < 2
    status, _, _ = raw(daemon, huge + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert status == 413
    chunked = (b"POST /api/v1/alarms/mr_hot.high/acknowledge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
    chunk = b"x" * 65536
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 20   # 1.25 MiB, no length
    status, _, _ = raw(daemon, chunked, body + b"0\r\n\r\n")
    assert status == 413


@pytest.mark.parametrize("body", [
    b'{"who": "a", "duration": NaN}', b'{"who": "a", "duration": Infinity}',
    b'{"who": "a", "duration": true}', b'{"who": "a", "duration": "2h"}',
    b'{"who": "   ", "duration": 60}', b'{"who": "a\\u0007secret-4711", "duration": 60}',
    b'{"who": "a", "note": "secret-4711\\u001b[2J", "duration": 60}'])
def test_bad_operator_input_is_a_422_that_echoes_nothing(daemon: Running, body: bytes) -> None:
    resp = httpx.post(daemon.url + "/api/v1/alarms/mr_hot.high/shelve", content=body,
                      headers={"Authorization": f"Bearer {TOKEN}",
                               "Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 422, resp.text
    assert "secret-4711" not in resp.text and "input" not in resp.json()["detail"][0]


def test_docs_work_offline_and_head_answers(daemon: Running) -> None:
    page = daemon.get("/docs", token=None)
    assert page.status_code == 200 and "cdn.jsdelivr" not in page.text
    assert "/static-offline-docs/swagger-ui-bundle.js" in page.text
    bundle = daemon.get("/static-offline-docs/swagger-ui-bundle.js", token=None)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    for path in ("/", "/health"):
        assert httpx.head(daemon.url + path, timeout=5).status_code == 200, path


@pytest.mark.parametrize("token_file, env", [("", None), ("short\n", None), (None, "abc")])
def test_an_empty_or_short_token_refuses_to_start(tmp_path: Path, token_file: str | None,
                                                  env: str | None) -> None:
    text = site_yaml(tmp_path, [], api={"port": peers.free_port()})
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text, encoding="utf-8")
    if token_file is not None:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "api-token").write_text(token_file)
    environ = {k: v for k, v in os.environ.items() if k != "VIGIL_API_TOKEN"}
    if env is not None:
        environ["VIGIL_API_TOKEN"] = env
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "run", str(cfg)],
                         capture_output=True, text=True, timeout=30, env=environ)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("vigil: the API token from ") and "it needs at least 16" in last


def test_cli_errors_are_one_line(daemon: Running) -> None:
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "abc", "--note", "维修",
              "--url", daemon.url)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("vigil: --for 'abc': expected a duration such as")
    out = cli("alarms", "--url", f"http://127.0.0.1:{peers.free_port()}")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("vigil: cannot reach the daemon at http://127.0.0.1:")
    out = cli("shelve", "mr_hot.high", "--who", "王五", "--for", "0", "--note", "维修",
              "--url", daemon.url)
    assert out.returncode == 2
    assert out.stderr.strip() == "vigil: HTTP 422: duration: Input should be greater than 0"


def test_cli_finds_the_daemon_and_token_from_the_config(tmp_path: Path,
                                                        modbus_peer: Path) -> None:
    port = peers.free_port()
    cfg = tmp_path / "site.yaml"
    cfg.write_text(site_yaml(tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP])],
                             [{"name": "mr_hot", "point": "mr_env.temperature",
                               "kind": "threshold", "high": 27}], api={"port": port}))
    peers.set_modbus_state(modbus_peer, hr={40: 301})
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_API_TOKEN"}
    log = tmp_path / "daemon.log"
    with open(log, "w") as out:     # no token configured: the daemon makes DATA_DIR/api-token
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", str(cfg)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        running = Running(proc, port, cfg, log)   # type: ignore[arg-type]
        running.wait(lambda: peers.http_ok(f"{running.url}/health"), 20)
        token = (tmp_path / "data" / "api-token").read_text().strip()
        assert oct((tmp_path / "data" / "api-token").stat().st_mode & 0o777) == "0o600"

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "monitor.cli", *args], env=env,
                                  capture_output=True, text=True, timeout=30)
        listed = running.wait(lambda: "mr_hot.high" in (r := run("alarms", "-c", str(cfg)))
                              .stdout and r)
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", listed.stdout)  # local time
        acked = run("ack", "mr_hot.high", "--who", "张三", "-c", str(cfg))
        assert acked.returncode == 0, acked.stderr
        raised = time.strftime("%Y-%m-%d %H:%M", time.localtime())
        assert "(张三 于 " in acked.stdout and "确认)" in acked.stdout
        assert raised[:10] in acked.stdout
        assert run("alarms", "--token", token, "--url", running.url).returncode == 0
        assert run("alarms", "--token", "wrong-token-0000000", "--url",
                   running.url).returncode == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        peers.set_modbus_state(modbus_peer, hr={40: 215})


def test_check_probe_tries_every_device(tmp_path: Path, modbus_peer: Path) -> None:
    cfg = write_config(tmp_path, [
        modbus_device("mr_env", peers.MODBUS_PORT, [TEMP], interval=1, timeout=0.5),
        modbus_device("gone", peers.free_port(), [TEMP], interval=1, timeout=0.5)])
    out = cli("check", "--probe", str(cfg))
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert any(re.match(r"  ok   mr_env: answered in \d+ ms: 1 points read, 1 good", x)
               for x in lines), out.stdout
    assert any(x.startswith("  FAIL gone: unreachable: cannot connect to 127.0.0.1:")
               for x in lines), out.stdout
    assert lines[-1] == "1 of 2 devices answered"


def test_check_without_secrets_warns(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [])
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_API_TOKEN"}
    strict = subprocess.run([sys.executable, "-m", "monitor.cli", "check", str(cfg)],
                            capture_output=True, text=True, env=env, timeout=30)
    assert strict.returncode == 1 and "VIGIL_API_TOKEN is not set" in strict.stderr
    loose = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--no-secrets",
                            str(cfg)], capture_output=True, text=True, env=env, timeout=30)
    assert loose.returncode == 0
    assert "VIGIL_API_TOKEN is not set (warning: secrets not checked)" in loose.stderr


def test_the_live_stream_carries_alarm_transitions(daemon: Running, modbus_peer: Path) -> None:
    lines: list[str] = []
    with httpx.stream("GET", daemon.url + "/api/v1/stream", timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        peers.set_modbus_state(modbus_peer, hr={40: 301})
        for text in resp.iter_lines():
            lines.append(text)
            if text.startswith("data: ") and '"mr_hot.high"' in text:
                break
    peers.set_modbus_state(modbus_peer, hr={40: 215})
    event = json.loads(lines[-1].removeprefix("data: "))
    assert lines[-2] == "event: alarm"
    assert (event["alarm"], event["action"], event["state"]) == (
        "mr_hot.high", "raised", "active_unacknowledged")


def test_silences_by_cli(daemon: Running) -> None:
    out = cli("silence", "--match", "area=machine_room", "--match", "severity=major", "--for",
              "2h", "--who", "王五", "--reason", "物业停电检修", "--url", daemon.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("静默 #1: ") and "(物业停电检修)" in out.stdout
    listed = cli("silences", "--url", daemon.url)
    assert "severity=major area=machine_room  王五: 物业停电检修" in listed.stdout
    bad = cli("silence", "--match", "colour=red", "--for", "1h", "--who", "x", "--reason", "y",
              "--url", daemon.url)
    assert bad.returncode == 2 and "give KEY=VALUE" in bad.stderr


def test_sigkill_between_escalation_levels_neither_repeats_nor_forgets(
        tmp_path: Path, modbus_peer: Path, daemons: Callable[..., Running], inbox: Any) -> None:
    peers.set_modbus_state(modbus_peer, hr={40: 215})
    hooks = {"VIGIL_TEST_HOOK_A": f"json://127.0.0.1:{inbox.port}/a",
             "VIGIL_TEST_HOOK_B": f"json://127.0.0.1:{inbox.port}/b"}
    cfg = write_config(
        tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP])],
        rules=[{"name": "mr_hot", "point": "mr_env.temperature", "kind": "threshold",
                "high": 27}],
        roles=[{"name": "it"}, {"name": "dept_head"}],
        people=[{"name": n, "roles": [r], "contacts": [
            {"channel": "webhook", "url": {"env": f"VIGIL_TEST_HOOK_{n[0].upper()}"}}]}
            for n, r in (("a_zhang", "it"), ("b_li", "dept_head"))],
        notify={"retries": 0, "policies": [{"name": "p", "levels": [
            {"notify": [{"role": "it"}], "wait": 3}, {"notify": [{"role": "dept_head"}]}]}],
            "routes": [{"policy": "p"}]})
    first = daemons(cfg, hooks)
    peers.set_modbus_state(modbus_peer, hr={40: 301})
    first.wait(lambda: any(r.path == "/a" for r in inbox.requests))
    first.wait(lambda: first.db().execute(  # the next level's due time is committed
        "SELECT COUNT(*) FROM timers WHERE key LIKE 'escalate:%'").fetchone()[0] == 1)
    first.proc.kill()                       # SIGKILL between the levels
    first.proc.wait()
    second = daemons(cfg, hooks)
    second.wait(lambda: any(r.path == "/b" for r in inbox.requests), 10)
    assert [r.path for r in inbox.requests] == ["/a", "/b"]   # level 1 not again


def test_sigkill_while_a_message_is_held_back_sends_it_after_the_restart(
        tmp_path: Path, modbus_peer: Path, daemons: Callable[..., Running], inbox: Any) -> None:
    """Two alarms of one group: the first pages at once, the second waits out the group
    interval; a SIGKILL during that wait must not lose it."""
    peers.set_modbus_state(modbus_peer, hr={40: 215})
    hooks = {"VIGIL_TEST_HOOK_A": f"json://127.0.0.1:{inbox.port}/a"}
    cfg = write_config(
        tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP])],
        rules=[{"name": "mr_warm", "point": "mr_env.temperature", "kind": "threshold",
                "high": 27, "message": "机房温度偏高"},
               {"name": "mr_hot", "point": "mr_env.temperature", "kind": "threshold",
                "high": 29, "message": "机房温度过高"}],
        roles=[{"name": "it"}],
        people=[{"name": "a_zhang", "roles": ["it"], "contacts": [
            {"channel": "webhook", "url": {"env": "VIGIL_TEST_HOOK_A"}}]}],
        notify={"retries": 0, "group_interval": 4, "policies": [{"name": "p", "levels": [
            {"notify": [{"role": "it"}], "wait": 600}]}], "routes": [{"policy": "p"}]})
    first = daemons(cfg, hooks)
    peers.set_modbus_state(modbus_peer, hr={40: 301})
    first.wait(lambda: len(inbox.requests) == 1)
    first.wait(lambda: first.db().execute("SELECT COUNT(*) FROM held").fetchone()[0] == 1)
    first.wait(lambda: first.db().execute(  # the first page's delivery is over (else it goes
        "SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0)  # again: at least once)
    first.proc.kill()                       # SIGKILL while the second alarm is held back
    first.proc.wait()
    killed = time.monotonic()
    second = daemons(cfg, hooks)
    second.wait(lambda: len(inbox.requests) == 2, 15)
    texts = [json.loads(r.body)["message"] for r in inbox.requests]
    assert [("机房温度偏高" in t, "机房温度过高" in t) for t in texts] in (
        [(True, False), (False, True)], [(False, True), (True, False)])  # once each
    assert time.monotonic() - killed < 15
    second.wait(lambda: second.db().execute("SELECT COUNT(*) FROM held").fetchone()[0] == 0)
    assert len(inbox.requests) == 2


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_a_page_in_its_retry_window_goes_on_across_a_restart(
        tmp_path: Path, modbus_peer: Path, daemons: Callable[..., Running], inbox: Any,
        stop: signal.Signals) -> None:
    """The first channel keeps failing: stopped between its attempts, the restarted daemon
    makes the rest of them and then reaches the fallback, within the retry window;
    notify:failed holds meanwhile (on /health too) and goes once the fallback got it."""
    from tests.servers.http_receiver import Receiver

    peers.set_modbus_state(modbus_peer, hr={40: 215})
    spare = Receiver().start()
    inbox.mode = "500"
    hooks = {"VIGIL_TEST_HOOK_A": f"json://127.0.0.1:{inbox.port}/a",
             "VIGIL_TEST_SMS_A": f"json://127.0.0.1:{spare.port}/sms"}
    cfg = write_config(
        tmp_path, [modbus_device("mr_env", peers.MODBUS_PORT, [TEMP])],
        rules=[{"name": "mr_hot", "point": "mr_env.temperature", "kind": "threshold",
                "high": 27}],
        roles=[{"name": "it"}],
        people=[{"name": "a_zhang", "roles": ["it"], "contacts": [
            {"channel": "webhook", "url": {"env": "VIGIL_TEST_HOOK_A"}},
            {"channel": "sms", "url": {"env": "VIGIL_TEST_SMS_A"}, "fallback": True}]}],
        notify={"retries": 2, "retry_delay": 3, "policies": [{"name": "p", "levels": [
            {"notify": [{"role": "it"}], "wait": 3600}]}], "routes": [{"policy": "p"}]})

    def failing(r: Running) -> bool:
        return any(x.startswith("notify:failed") for x in r.get("/health").json()["reasons"])
    try:
        first = daemons(cfg, hooks)
        peers.set_modbus_state(modbus_peer, hr={40: 301})
        first.wait(lambda: len(inbox.requests) == 1)
        first.wait(lambda: first.db().execute(   # the next attempt's due time is committed
            "SELECT COUNT(*) FROM timers WHERE key LIKE 'attempt:%'").fetchone()[0] == 1)
        first.wait(lambda: failing(first))
        stopped = time.monotonic()
        first.proc.send_signal(stop)
        first.proc.wait(15)
        second = daemons(cfg, hooks)
        assert failing(second)                             # still nobody reached
        second.wait(lambda: len(spare.requests) == 1, 15)
        assert time.monotonic() - stopped < 15             # 3 s, 6 s, then the fallback
        assert len(inbox.requests) == 3                    # the retries went on, not anew
        second.wait(lambda: not failing(second), 5)
        assert "机房温度" in json.loads(spare.requests[0].body)["message"]  # the SMS form
    finally:
        spare.stop()




def test_sigkill_mid_action_records_unknown_and_never_runs_it_twice(
        tmp_path: Path, daemons: Callable[..., Running]) -> None:
    marker = tmp_path / "ran.txt"
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "batch_stop.yaml").write_text(KILLED_MID_ACTION.replace("MARKER", str(marker)),
                                           encoding="utf-8")
    cfg = write_config(tmp_path, [], playbooks="playbooks", roles=[{"name": "it"}],
                       actions={"allowed_commands": ["/bin/sh"]})
    first = daemons(cfg)
    made = first.post("/api/v1/incidents", {"playbook": "batch_stop", "who": "张三"})
    assert made.status_code == 200, made.text
    incident = made.json()["id"]
    first.wait(lambda: marker.exists())   # running: committed before the command started
    first.proc.kill()                                   # SIGKILL in the middle of it
    first.proc.wait()
    killed = time.time()
    time.sleep(1.5)                                     # down for a while
    second = daemons(cfg)
    got = second.wait(lambda: [(t["kind"], t["step"]) for t in second.get(
        f"/api/v1/incidents/{incident}").json()["timeline"]
        if t["kind"] == "action_unknown"] and second.get(
        f"/api/v1/incidents/{incident}").json(), 10)
    steps = [(t["kind"], t["step"]) for t in got["timeline"]]
    assert steps[:4] == [("started", None), ("action", "stop_batch"), ("restarted", None),
                         ("action_unknown", "stop_batch")]
    assert ("checklist", "check") in steps and got["step"] == "check"  # its failure path
    assert got["actions"] == {"stop_batch": "unknown"}
    assert marker.read_text() == "ran\n"             # never run a second time
    gap = next(t for t in got["timeline"] if t["kind"] == "restarted")   # the time it was down
    last = re.search(r"最后一次写入 (\S+ \S+), (\S+ \S+) 重新运行", gap["text"])
    assert gap["actor"] == "Vigil" and last is not None, gap
    went, came = (datetime.strptime(x, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() for x in last.groups())  # site time
    assert got["started"] - 1 <= went <= killed and came >= killed + 1


EVERY_KIND = """\
name: every_kind
label: 各类步骤
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: bank, kind: deadline, target: 一小时内报告, within: 1h, met: {checked: told}}
  - {id: tell, kind: notify, roles: [it], message: 开始处置}
  - {id: items, kind: checklist, items: [{id: told, text: 已报告, role: it}], timeout: 1h,
     on_timeout: end}
  - {id: go_on, kind: approval, role: it, text: 批准继续, timeout: 1h, on_timeout: end}
  - {id: pause, kind: wait, for: 3s}
  - {id: bigger, kind: escalate, level: 重大, roles: [it]}
  - {id: count, kind: rollcall, roles: [it], text: 请确认您已安全, timeout: 1h, on_timeout: end}
  - {id: over, kind: resolve}
  - {id: after, kind: checklist, items: [{id: checked, text: 已检查, role: it}], timeout: 1h,
     on_timeout: end}
"""


def every_kind_site(tmp_path: Path, inbox: Any) -> tuple[Path, dict[str, str]]:
    """A site with the every_kind playbook and one person of role it, paged at ``inbox``."""
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "every_kind.yaml").write_text(EVERY_KIND, encoding="utf-8")
    hooks = {"VIGIL_TEST_HOOK_A": f"json://127.0.0.1:{inbox.port}/a"}
    cfg = write_config(tmp_path, [], playbooks="playbooks", roles=[{"name": "it"}],
                       people=[{"name": "a_zhang", "label": "张三", "roles": ["it"],
                                "contacts": [{"channel": "webhook",
                                              "url": {"env": "VIGIL_TEST_HOOK_A"}}]}],
                       notify={"retries": 0})
    return cfg, hooks


def test_sigkill_while_each_kind_of_step_waits_neither_repeats_nor_skips(
        tmp_path: Path, daemons: Callable[..., Running], inbox: Any) -> None:
    """Killed while a checklist, an approval, a timed wait, a roll call and a resolve wait
    (a deadline running beside them): each restart keeps the timers' due times, sends
    nothing again, and the next input or timer goes on from where it was."""
    cfg, hooks = every_kind_site(tmp_path, inbox)
    running = daemons(cfg, hooks)
    incident = running.post("/api/v1/incidents", {"playbook": "every_kind",
                                                  "who": "王五"}).json()["id"]

    def told() -> list[str]:
        return [json.loads(r.body)["title"] for r in inbox.requests]

    def timers(r: Running) -> list[tuple[str, float]]:
        return r.db().execute("SELECT key, due FROM timers WHERE key LIKE 'playbook:%' "
                              "ORDER BY key").fetchall()

    def kill_and_restart(r: Running, sent: int) -> Running:
        r.wait(lambda: len(told()) == sent)      # what this step says is out
        r.wait(lambda: r.db().execute("SELECT (SELECT COUNT(*) FROM notices) + "
                                      "(SELECT COUNT(*) FROM deliveries)").fetchone()[0] == 0)
        armed = r.wait(lambda: timers(r))         # and its timers are committed
        r.proc.kill()
        r.proc.wait()
        again = daemons(cfg, hooks)
        assert timers(again) == armed             # the same due times
        return again

    def act(r: Running, what: str, body: dict[str, Any]) -> None:
        made = r.post(f"/api/v1/incidents/{incident}/{what}", {"who": "张三", **body})
        assert made.status_code == 200, made.text

    running = kill_and_restart(running, 2)                      # a checklist waits
    act(running, "confirm", {"item": "told"})
    running = kill_and_restart(running, 3)                      # an approval waits
    act(running, "decide", {"step": "go_on", "approve": True})
    running.wait(lambda: running.db().execute(
        "SELECT COUNT(*) FROM timers WHERE key LIKE '%\"pause#for\"]'").fetchone()[0] == 1)
    running = kill_and_restart(running, 3)                      # a timed wait runs
    running = kill_and_restart(running, 5)                      # a roll call waits
    act(running, "safe", {"person": "a_zhang"})
    running.wait(lambda: running.get(f"/api/v1/incidents/{incident}").json()["step"] == "over")
    running.proc.kill()                                         # a resolve waits
    running.proc.wait()
    running = daemons(cfg, hooks)
    act(running, "resolve", {})
    running.wait(lambda: len(told()) == 6)
    act(running, "confirm", {"item": "checked"})
    got = running.wait(lambda: (lambda i: i if i["status"] == "closed" else None)(
        running.get(f"/api/v1/incidents/{incident}").json()))
    assert sorted(t.removeprefix("【各类步骤】") for t in told()) == sorted([
        "开始处置", "请确认: 已报告", "请审批: 批准继续", "事件升级为 重大", "请确认您已安全",
        "请确认: 已检查"])                                      # each once
    kinds = [(t["kind"], t["step"]) for t in got["timeline"]]
    for entered in (("checklist", "items"), ("approval", "go_on"), ("wait", "pause"),
                    ("escalated", "bigger"), ("rollcall", "count"), ("resolved", "over"),
                    ("checklist", "after")):
        assert kinds.count(entered) == 1, (entered, kinds)
    assert ("deadline_met", "bank") in kinds and ("safe", "count") in kinds


def test_sigkill_while_an_incident_message_is_in_flight_sends_it_after_the_restart(
        tmp_path: Path, daemons: Callable[..., Running], inbox: Any) -> None:
    """A message is stored with the change that made it; one whose delivery a SIGKILL cut
    short goes out after the restart (at least once)."""
    cfg, hooks = every_kind_site(tmp_path, inbox)
    inbox.mode, inbox.delay = "slow", 3.0                   # the receiver takes its time
    first = daemons(cfg, hooks)
    first.post("/api/v1/incidents", {"playbook": "every_kind", "who": "王五"})
    first.wait(lambda: len(inbox.requests) == 2)           # both messages are in flight
    first.wait(lambda: first.db().execute(
        "SELECT COUNT(*) FROM deliveries").fetchone()[0] == 2)
    first.proc.kill()
    first.proc.wait()
    inbox.mode = "ok"
    second = daemons(cfg, hooks)
    second.wait(lambda: second.db().execute(
        "SELECT (SELECT COUNT(*) FROM deliveries) + (SELECT COUNT(*) FROM notices)"
    ).fetchone()[0] == 0)                                   # delivered, and said so
    titles = sorted(json.loads(r.body)["title"] for r in inbox.requests)
    assert titles == sorted(["【各类步骤】开始处置", "【各类步骤】请确认: 已报告"] * 2)
    assert "2 messages were being delivered when the daemon stopped" in second.log.read_text()


def test_times_are_the_sites_whatever_the_servers_time_zone(
        tmp_path: Path, daemons: Callable[..., Running], inbox: Any) -> None:
    """A server on UTC, a site in Asia/Shanghai: an incident's report shows the site's time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    cfg, hooks = every_kind_site(tmp_path, inbox)
    running = daemons(cfg, {**hooks, "TZ": "UTC"})
    made = running.post("/api/v1/incidents", {"playbook": "every_kind", "who": "王五"}).json()
    report = running.wait(lambda: (lambda r: r if r.status_code == 200 else None)(running.get(
        f"/api/v1/incidents/{made['id']}/export?format=csv")))
    first = report.text.lstrip("\ufeff").splitlines()[1].split(",")[0]
    expected = datetime.fromtimestamp(made["started"], ZoneInfo("Asia/Shanghai"))
    assert first == expected.strftime("%Y-%m-%d %H:%M:%S")
    assert made["id"].startswith(expected.strftime("%Y%m%d-%H%M%S"))
