"""Store faults, tested for real: a full disk (a small tmpfs), corrupt database files at start
and while running, a database deleted under the daemon, a bad operation, and permissions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.alarms.health import health
from monitor.alarms.model import AlarmState
from monitor.core.model import Reading
from monitor.core.store import Fault, Store
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import api as client
from tests.fixtures import fill
from tests.util import checkpointed, corrupt, damage, eventually, made_anew, recorded, until

TEMP = {"key": "temperature", "table": "holding", "address": 44, "data_type": "int16",
        "scale": 0.1}


async def test_full_disk_is_an_alarm_and_nothing_is_lost(disk: Path, modbus_peer: Path,
                                                         daemon_factory: Any) -> None:
    peers.set_modbus_state(modbus_peer, hr={44: 215})
    cfg = config(disk, [modbus_device("env", peers.MODBUS_PORT, [TEMP], interval=0.1,
                                      timeout=0.08)],
                 [{"name": "hot", "point": "env.temperature", "kind": "threshold", "high": 27}],
                 data_dir=str(disk / "data"))
    daemon = await daemon_factory(cfg)
    api = client(daemon)
    await eventually(lambda: "env.temperature" in daemon.state.latest)
    filler = fill(disk)
    full_at = time.time()
    await eventually(lambda: daemon.alarms.is_active("store:write_failed"), 5)
    alarm = daemon.alarms.alarms["store:write_failed"]
    assert alarm.severity == "critical" and "database or disk is full" in alarm.message
    body = (await api.get("/health")).json()
    assert body["status"] == "degraded"
    assert any(r.startswith("store:write_failed") for r in body["reasons"])
    # polling, rules and alarms go on
    peers.set_modbus_state(modbus_peer, hr={44: 301})
    await eventually(lambda: daemon.alarms.is_active("hot.high"), 5)
    assert daemon.state.latest["env.temperature"].ts > full_at

    async def queued_in_memory() -> bool:   # the operator sees what waits for the disk
        text = (await api.get("/metrics")).text
        found = re.search(r'^vigil_store_queued\{kind="readings"\} (\S+)$', text, re.M)
        return found is not None and float(found[1]) > 0
    await until(queued_in_memory, 5)
    # an operator's write that cannot be committed is refused, and not half-done
    resp = await api.post("/api/v1/alarms/hot.high/acknowledge", json={"who": "张三"})
    assert resp.status_code == 503 and "cannot commit" in resp.json()["detail"]
    assert daemon.alarms.alarms["hot.high"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    filler.unlink()
    await eventually(lambda: not daemon.alarms.is_active("store:write_failed"), 15)
    assert (await api.get("/health")).json()["status"] == "ok"
    resp = await api.post("/api/v1/alarms/hot.high/acknowledge", json={"who": "张三"})
    assert resp.status_code == 200 and resp.json()["acked_by"] == "张三"
    await recorded(daemon)
    kept = await daemon.store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM history WHERE point = 'env.temperature' AND ts > ? AND ts < ?",
        (full_at + 1, full_at + 3)).fetchone()[0])
    assert kept >= 10                  # what was read while the disk was full was kept
    await api.aclose()
    peers.set_modbus_state(modbus_peer, hr={44: 215})


async def test_stopping_on_a_full_disk_says_what_is_lost(disk: Path, modbus_peer: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    cfg = config(disk, [modbus_device("env", peers.MODBUS_PORT, [TEMP], interval=0.1,
                                      timeout=0.08)], data_dir=str(disk / "data"))
    daemon = Daemon(cfg)
    await daemon.start()
    await eventually(lambda: "env.temperature" in daemon.state.latest)
    fill(disk)
    await eventually(lambda: daemon.alarms.is_active("store:write_failed"), 5)
    await daemon.stop()
    assert "queued items could NOT be committed" in caplog.text
    assert "everything queued is committed" not in caplog.text


async def test_memory_is_bounded_while_the_disk_refuses(disk: Path) -> None:
    store = Store(disk / "data", 0.05, max_pending=1000)
    faults: dict[str, Fault | None] = {}
    store.on_fault.set(faults.__setitem__)
    filler = fill(disk)
    store.add([Reading("env.blob", "x" * 4096, time.time()) for _ in range(500)], None, 0)
    await eventually(lambda: faults.get("write_failed") is not None, 5)
    for n in range(3000):
        store.add([Reading("env.t", float(n), time.time())], None, 0)
    await eventually(lambda: "dropped" in faults, 5)
    assert store.dropped_pending > 0 and store.queued()[0] <= 1000
    for _ in range(3000):              # operations (events, alarm changes) are bounded too
        store.submit(lambda c: None)
    assert store.queued()[1] <= 1000
    filler.unlink()
    await eventually(lambda: faults.get("write_failed", "x") is None, 10)
    rows = await store.read(lambda c: c.execute("SELECT MAX(value) FROM history").fetchone())
    assert rows == (2999.0,)           # the newest are kept, the oldest went
    store.close()


async def test_one_bad_operation_is_dropped_not_the_batch(store: Store,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    store.submit(lambda c: c.execute("INSERT INTO no_such_table VALUES (1)"))
    store.add([Reading("env.t", 1.0, time.time())], None, 0)
    store.submit(lambda c: c.execute("INSERT INTO events (ts, device, kind) VALUES (1, 'a', 'X')"))
    await store.committed()
    counts = await store.read(lambda c: (c.execute("SELECT COUNT(*) FROM history").fetchone(),
                                         c.execute("SELECT COUNT(*) FROM events").fetchone()))
    assert counts == ((1,), (1,))
    assert "dropped an operation that failed by itself: no such table: no_such_table" \
        in caplog.text


def _snapshot(db: Path) -> dict[str, bytes]:
    return {s: Path(f"{db}{s}").read_bytes() for s in ("", "-wal", "-shm")
            if Path(f"{db}{s}").exists()}


def _leave_damaged(db: Path, snapshot: dict[str, bytes], damage: str) -> None:
    """The files as a SIGKILL leaves them (WAL and shm behind), with one of them damaged."""
    for suffix, content in snapshot.items():
        Path(f"{db}{suffix}").write_bytes(content)
    target = Path({"wal": f"{db}-wal", "shm": f"{db}-shm", "header": str(db)}[damage])
    if target.exists():
        corrupt(target, 0, 100)
    else:
        target.write_bytes(os.urandom(4096))


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize(("language", "said"), [
    ("zh-CN", "数据库文件损坏 (file is not a database), 已移至 {aside} 并新建数据库"),
    ("en", "the database file is damaged (file is not a database): set aside as {aside}, and "
           "a new one made")])
async def test_a_corrupt_database_at_start_is_set_aside(
        tmp_path: Path, modbus_peer: Path, daemon_factory: Any, language: str,
        said: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "vigil.db").write_bytes(os.urandom(64 * 1024))
    cfg = config(tmp_path, [modbus_device("env", peers.MODBUS_PORT, [TEMP], interval=0.2,
                                          timeout=0.1)],
                 site={"name": "test", "language": language})
    daemon = await daemon_factory(cfg)
    aside = [p.name for p in data.iterdir() if p.name.startswith("vigil.db.corrupt-")]
    assert len(aside) == 1
    alarm = daemon.alarms.alarms["store:recreated"]
    assert alarm.state() is AlarmState.ACTIVE_UNACKNOWLEDGED and alarm.severity == "critical"
    assert alarm.message == said.format(aside=aside[0])
    assert health(daemon.alarms)["status"] == "degraded"
    await eventually(lambda: "env.temperature" in daemon.state.latest)
    await daemon.alarms.acknowledge("store:recreated", "张三", "已备份旧文件")
    assert health(daemon.alarms)["status"] == "ok"


@pytest.mark.parametrize("damage", ["wal", "shm", "header"])
async def test_corrupt_files_of_a_stopped_daemon_never_stop_the_next_start(
        tmp_path: Path, damage: str) -> None:
    cfg = config(tmp_path, [])
    first = Daemon(cfg)
    await first.start()
    for n in range(500):
        first.store.add([Reading("env.t", float(n), time.time())], None, 0)
    await first.store.call(lambda c: c.execute("PRAGMA wal_autocheckpoint=0"))
    db = Path(cfg.data_dir) / "vigil.db"
    snapshot = _snapshot(db)
    await first.stop()
    _leave_damaged(db, snapshot, damage)
    second = Daemon(cfg)
    await second.start()
    second.store.add([Reading("env.t", 1.0, time.time())], None, 0)
    await second.store.committed()
    await second.stop()


WAITING = """\
name: waiting
label: 等待中的预案
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: work, kind: checklist, items: [{id: done, text: 完成, role: it}], timeout: 1h,
     on_timeout: end}
"""


async def test_corruption_found_while_running_is_handled_without_a_restart(
        tmp_path: Path, modbus_peer: Path, daemon_factory: Any) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "waiting.yaml").write_text(WAITING, encoding="utf-8")
    daemon = await daemon_factory(config(tmp_path, [modbus_device(
        "env", peers.MODBUS_PORT, [TEMP], interval=0.05, timeout=0.04)],
        playbooks=str(books), roles=[{"name": "it"}]))
    running = daemon.incidents.start("waiting")
    await until(lambda: daemon.store.read(lambda c: c.execute(   # pages enough to corrupt
        "SELECT COUNT(*) FROM history").fetchone()[0] >= 20))
    await made_anew(daemon)
    db = Path(daemon.cfg.data_dir) / "vigil.db"
    assert "database disk image is malformed" in daemon.alarms.alarms["store:recreated"].message
    assert any(p.name.startswith("vigil.db.corrupt-") for p in db.parent.iterdir())
    count = daemon.store.read(lambda c: c.execute("SELECT COUNT(*) FROM history").fetchone())
    before = (await count)[0]
    await until(lambda: daemon.store.read(lambda c: c.execute(    # polling goes on, stored
        "SELECT COUNT(*) FROM history").fetchone()[0] > before), 5)
    alarms = await daemon.store.read(lambda c: c.execute(
        "SELECT id FROM alarms WHERE id = 'store:recreated'").fetchall())
    assert alarms == [("store:recreated",)]         # alarms were written again
    kept = await daemon.store.read(lambda c: c.execute(
        "SELECT i.id, v.version FROM incidents i JOIN playbook_versions v "
        "ON v.version = json_extract(i.data, '$.version')").fetchall())
    assert kept == [(running.id, running.version)]  # and the running incident, restartable


async def test_a_database_found_corrupt_on_a_full_disk_is_made_anew_once_it_frees(
        disk: Path, modbus_peer: Path, daemon_factory: Any) -> None:
    """Two faults at once: the new file cannot be made while the disk is full. Writes wait
    in memory, and once the disk frees the alarm still names the file set aside."""
    daemon = await daemon_factory(config(disk, [modbus_device(
        "env", peers.MODBUS_PORT, [TEMP], interval=0.05, timeout=0.04)],
        data_dir=str(disk / "data")))
    daemon.store.file_check_interval = 0.2
    await until(lambda: daemon.store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM history").fetchone()[0] >= 20))
    db = await checkpointed(daemon)
    filler = fill(disk)
    await damage(daemon, db)
    await eventually(lambda: daemon.alarms.is_active("store:write_failed"), 10)
    assert not daemon.alarms.is_active("store:recreated")   # not made anew yet
    polled = daemon.state.latest["env.temperature"].ts
    await eventually(lambda: daemon.state.latest["env.temperature"].ts > polled + 1, 5)
    filler.unlink()                                    # file checks ran meanwhile
    await eventually(lambda: daemon.alarms.is_active("store:recreated"), 15)
    aside = [p.name for p in db.parent.iterdir() if p.name.startswith("vigil.db.corrupt-")]
    message = daemon.alarms.alarms["store:recreated"].message
    assert aside and aside[0] in message and "已移至" in message
    await eventually(lambda: not daemon.alarms.is_active("store:write_failed"), 15)
    await until(lambda: daemon.store.read(lambda c: c.execute(      # polling goes on, stored
        "SELECT COUNT(*) FROM history WHERE ts > ?", (polled,)).fetchone()[0] > 0), 5)


async def test_a_database_deleted_while_running_is_noticed_and_restored(
        tmp_path: Path, modbus_peer: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(config(tmp_path, [modbus_device(
        "env", peers.MODBUS_PORT, [TEMP], interval=0.05, timeout=0.04)]))
    daemon.store.file_check_interval = 0.5
    await eventually(lambda: "env.temperature" in daemon.state.latest)
    await asyncio.sleep(0.5)
    await daemon.store.committed()
    db = Path(daemon.cfg.data_dir) / "vigil.db"
    before = (await daemon.store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM history").fetchone()))[0]
    db.unlink()
    await eventually(lambda: daemon.alarms.is_active("store:recreated"), 5)
    assert "运行中被删除, 已从仍打开的文件恢复全部数据" in \
        daemon.alarms.alarms["store:recreated"].message
    await daemon.store.committed()
    after = (await daemon.store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM history").fetchone()))[0]
    assert db.exists() and after >= before


async def test_data_dir_and_database_are_private(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(config(tmp_path, []))
    await daemon.store.committed()
    data = Path(daemon.cfg.data_dir)
    assert _mode(data) == 0o700
    for name in ("vigil.db", "vigil.db-wal", "vigil.db-shm"):
        assert _mode(data / name) == 0o600, name


async def test_a_value_sqlite_cannot_hold_loses_nothing_else(store: Store) -> None:
    now = time.time()
    store.add([Reading("ups.counter", 2**64 - 1, now), Reading("ups.load", 31.0, now)], None, 0)
    await store.committed()
    rows = await store.read(lambda c: c.execute(
        "SELECT point, value FROM history ORDER BY point").fetchall())
    assert rows == [("ups.counter", float(2**64 - 1)), ("ups.load", 31.0)]


async def test_an_incident_action_on_a_full_disk_is_refused_and_changes_nothing(
        disk: Path, daemon_factory: Any) -> None:
    books = Path(__file__).parent.parent / "playbooks"
    cfg = config(disk, [], data_dir=str(disk / "data"), playbooks=str(books),
                 roles=[{"name": r} for r in ("gm", "compliance", "dept_head", "deputy",
                                              "admin", "it", "property", "bank_contact",
                                              "tech_director")])
    daemon = await daemon_factory(cfg)
    api = client(daemon)
    made = await api.post("/api/v1/incidents", json={"playbook": "general_report",
                                                      "who": "王五"})
    assert made.status_code == 200
    incident = made.json()["id"]
    filler = fill(disk)
    path = f"/api/v1/incidents/{incident}/confirm"
    resp = await api.post(path, json={"item": "risk_gathered", "who": "李四"})
    assert resp.status_code == 503 and "cannot commit" in resp.json()["detail"]
    assert daemon.incidents.running[incident].checked == {}          # not half-done
    assert daemon.alarms.is_active("store:write_failed")
    filler.unlink()
    resp = await api.post(path, json={"item": "risk_gathered", "who": "李四"})
    assert resp.status_code == 200 and resp.json()["checked"]["risk_gathered"][0] == "李四"
    await recorded(daemon)
    kinds = await daemon.store.read(lambda c: [k for (k,) in c.execute(
        "SELECT kind FROM timeline WHERE incident = ? ORDER BY seq", (incident,))])
    assert kinds.count("confirmed") == 1
    await api.aclose()


async def test_a_sign_in_on_a_full_disk_is_refused_and_gives_no_session(
        disk: Path, daemon_factory: Any) -> None:
    """A session not committed is not handed out: 503, no cookie; the disk freed, it works."""
    from monitor.core.credentials import hash_password

    cfg = config(disk, [], data_dir=str(disk / "data"), people=[
        {"name": "zhang_san", "label": "张三", "credential": hash_password("a-long-password")}])
    daemon = await daemon_factory(cfg)
    api = client(daemon)
    filler = fill(disk)
    form = {"name": "zhang_san", "password": "a-long-password"}
    refused = await api.post("/login", data=form)
    assert refused.status_code == 503 and "cannot commit" in refused.json()["detail"]
    assert "set-cookie" not in refused.headers
    filler.unlink()
    signed = await api.post("/login", data=form)
    assert signed.status_code == 303 and "vigil_session=" in signed.headers["set-cookie"]
    await api.aclose()


def paged_site(where: Path, receiver: Any, **extra: Any) -> Any:
    """One person paged at ``receiver`` for every alarm (2 retries, 1 s apart)."""
    import os

    os.environ["VIGIL_TEST_FAULT_HOOK"] = f"json://127.0.0.1:{receiver.port}/a"
    return config(where, [], roles=[{"name": "it"}],
                  people=[{"name": "zhang_san", "roles": ["it"], "contacts": [
                      {"channel": "webhook", "url": {"env": "VIGIL_TEST_FAULT_HOOK"}}]}],
                  notify={"retries": 2, "retry_delay": 1, "resend": 60, "group_interval": 0,
                          "policies": [{"name": "p", "levels": [
                              {"notify": [{"role": "it"}], "wait": 3600}]}],
                          "routes": [{"policy": "p"}]}, **extra)


def raise_hot(daemon: Daemon) -> None:
    """The machine room is too hot (as a threshold rule raises it)."""
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    daemon.alarms.define(AlarmDef("hot.high", Severity.MAJOR, "机房温度偏高"))
    daemon.alarms.set_condition("hot.high", True, 30.1)


async def test_a_page_in_its_retry_window_outlives_a_database_made_anew(
        tmp_path: Path, daemon_factory: Any) -> None:
    """The database turns out corrupt while a page waits for its next attempt: the new one
    gets the delivery and what reached nobody again, and the page still gets through."""
    from tests.servers.http_receiver import Receiver

    receiver = Receiver(mode="500").start()
    try:
        daemon = await daemon_factory(paged_site(tmp_path, receiver))
        raise_hot(daemon)
        await eventually(lambda: daemon.alarms.is_active("notify:failed"), 5)
        await made_anew(daemon)
        rows = await daemon.store.read(lambda c: c.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE key LIKE '%#zhang_san' AND "
            "json_extract(data, '$.subjects') = '[\"hot.high\"]'), "
            "(SELECT COUNT(*) FROM unheard WHERE key = 'hot.high')").fetchone())
        assert rows == (1, 1)                           # written again into the new file
        receiver.mode = "ok"
        await eventually(lambda: receiver.accepted, 5)  # a retry gets through
        await eventually(lambda: not daemon.alarms.is_active("notify:failed"), 3)
    finally:
        receiver.stop()


async def test_a_page_on_a_full_disk_is_delivered_and_recorded_once_it_frees(
        disk: Path, daemon_factory: Any) -> None:
    """The disk is full while a page fails and is retried: the retries go on from memory,
    the page gets through, its clear is told to whoever was paged, and every attempt is on
    record once the disk takes it."""
    from tests.servers.http_receiver import Receiver

    receiver = Receiver(mode="500").start()
    try:
        daemon = await daemon_factory(paged_site(disk, receiver, data_dir=str(disk / "data")))
        filler = fill(disk)
        raise_hot(daemon)
        def hot() -> int:
            return sum("偏高" in json.loads(r.body)["title"] for r in receiver.requests)
        await eventually(lambda: hot() == 2, 5)                    # retried on a full disk
        assert daemon.alarms.is_active("store:write_failed")
        receiver.mode = "ok"
        await eventually(lambda: hot() == 3, 5)
        daemon.alarms.set_condition("hot.high", False, 25.0)       # the disk still full
        await eventually(lambda: any(json.loads(r.body)["title"].startswith("【已恢复】")
                                     for r in receiver.requests), 5)   # the paged are told
        filler.unlink()
        await eventually(lambda: not daemon.alarms.is_active("store:write_failed"), 10)
        await daemon.store.committed()
        rows = await daemon.store.read(lambda c: c.execute(
            "SELECT ok, paging FROM notifications WHERE alarm = 'hot.high' ORDER BY seq")
            .fetchall())
        assert rows == [(0, 1), (0, 1), (1, 1), (1, 0)]            # 3 attempts, then the note
        assert (await daemon.store.read(lambda c: c.execute(     # this page's is done
            "SELECT COUNT(*) FROM deliveries WHERE json_extract(data, '$.subjects') = "
            "'[\"hot.high\"]'").fetchone())) == (0,)
    finally:
        receiver.stop()


async def test_a_silence_made_before_a_database_made_anew_still_announces_what_it_held(
        tmp_path: Path, daemon_factory: Any) -> None:
    """Planned work holds a page back; the database is made anew meanwhile; when the
    window ends early the held-back alarm, still active, is announced all the same."""
    from tests.servers.http_receiver import Receiver

    receiver = Receiver().start()
    try:
        daemon = await daemon_factory(paged_site(tmp_path, receiver))
        api = client(daemon)
        made = (await api.post("/api/v1/silences", json={
            "match": {"alarm": ["hot"]}, "duration": 3600, "reason": "空调维保",
            "who": "王五"})).json()
        raise_hot(daemon)
        await recorded(daemon)
        assert receiver.requests == []                       # held back
        await made_anew(daemon)
        assert (await api.get("/api/v1/silences")).json()[0]["reason"] == "空调维保"
        ended = await api.post(f"/api/v1/silences/{made['id']}/expire", json={"who": "王五"})
        assert ended.status_code == 200
        await eventually(lambda: any("机房温度偏高" in json.loads(r.body)["title"] for r in
                                     receiver.requests), 5)
        kept = await daemon.store.read(lambda c: c.execute(
            "SELECT (SELECT COUNT(*) FROM silences), (SELECT COUNT(*) FROM silenced)"
        ).fetchone())
        assert kept == (1, 1)                          # and a restart would know them too
        await api.aclose()
    finally:
        receiver.stop()


async def test_a_used_answer_link_stays_used_after_a_database_made_anew(
        tmp_path: Path, daemon_factory: Any) -> None:
    from tests.servers.http_receiver import Receiver

    receiver = Receiver().start()
    try:
        daemon = await daemon_factory(paged_site(tmp_path, receiver))
        api = client(daemon)
        raise_hot(daemon)
        await eventually(lambda: receiver.requests, 5)
        link = re.search(r"/ack/[A-Za-z0-9_.-]+", json.loads(receiver.requests[0].body)[
            "message"]).group(0)  # type: ignore[union-attr]
        assert (await api.post(link, content=b"note=")).status_code == 200
        await made_anew(daemon)
        again = await api.post(link, content=b"note=")
        assert again.status_code == 403 and "已使用过" in again.text
        await api.aclose()
    finally:
        receiver.stop()
