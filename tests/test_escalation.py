"""Alarms reach people: routing, escalation levels on durable timers, an acknowledgement that
stops every pending step and tells everyone paged, a restart that neither repeats nor forgets a
step, and a daemon alarm when every channel fails. Deliveries go to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from monitor.alarms.manager import alarm_log
from monitor.config import load_config_text
from monitor.daemon import Daemon
from monitor.notify.links import sign
from tests.conftest import config, site_yaml
from tests.fixtures import TOKEN, api
from tests.servers.http_receiver import Receiver
from tests.util import eventually, recorded

ALARM = "mr_hot.high"


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def site(tmp_path: Path, inbox: Receiver, wait: float = 1.0, repeat: int = 0,
         notify: dict[str, Any] | None = None, high_high: float | None = None,
         group_interval: float = 60, areas: dict[str, str] | None = None,
         **extra: Any) -> Any:
    """``areas``: name -> label; the device gets a point in each (its key the area's), and
    the alarms of each are paged."""
    if areas:
        extra["areas"] = [{"name": a, "label": label} for a, label in areas.items()]
    return config(tmp_path, [{
        "name": "mr_env", "area": "machine_room", "class": "environment", "type": "modbus",
        "enabled": False, "connection": {"host": "127.0.0.1", "port": 1},
        "points": [{"key": "temperature", "table": "holding", "address": 0,
                    "label": "机房温度"}] + [
            {"key": a, "area": a, "table": "holding", "address": n}
            for n, a in enumerate(areas or (), 1)]}],
        [{"name": "mr_hot", "point": "mr_env.temperature", "kind": "threshold", "high": 27,
          "advice": "检查精密空调, 通知空调维保",
          **({"high_high": high_high} if high_high else {})}], **extra,
        roles=[{"name": "it", "label": "IT"}, {"name": "dept_head", "label": "部门负责人"}],
        people=[{"name": "zhang_san", "label": "张三", "roles": ["it"],
                 "contacts": [{"channel": "webhook", "url": {"env": "VIGIL_TEST_HOOK_A"}}]},
                {"name": "li_si", "label": "李四", "roles": ["dept_head"],
                 "contacts": [{"channel": "webhook", "url": {"env": "VIGIL_TEST_HOOK_B"}}]}],
        notify=notify or {
            "timeout": 2, "retries": 0, "group_interval": group_interval,
            "policies": [{"name": "major", "repeat": repeat, "levels": [
                {"notify": [{"role": "it"}], "wait": wait},
                {"notify": [{"role": "dept_head"}], "wait": wait}]}],
            "routes": [{"match": {"severity": ["critical"]}, "policy": "major"},
                       {"match": {"area": list(areas or ["machine_room"])},
                        "policy": "major"}]})


@pytest.fixture(autouse=True)
def hooks(monkeypatch: pytest.MonkeyPatch, inbox: Receiver) -> None:
    monkeypatch.setenv("VIGIL_TEST_HOOK_A", f"json://127.0.0.1:{inbox.port}/a")
    monkeypatch.setenv("VIGIL_TEST_HOOK_B", f"json://127.0.0.1:{inbox.port}/b")


def received(inbox: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in inbox.requests if r.path == path]


def raise_many(daemon: Daemon, prefix: str, message: str, points: list[str | None],
               severity: str = "major") -> list[str]:
    """One alarm per point (``message`` with its number as ``{n}``), each defined and raised
    at once; their ids."""
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    ids = []
    for n, point in enumerate(points):
        ids.append(f"{prefix}{n}")
        daemon.alarms.define(AlarmDef(ids[-1], Severity(severity), message.format(n=n), point))
        daemon.alarms.set_condition(ids[-1], True)
    return ids


def raise_alarm(daemon: Daemon) -> None:
    daemon.alarms.set_condition(ALARM, True, 30.5)  # as the rule does on a reading of 30.5


async def test_escalates_level_by_level_and_an_ack_stops_it_and_tells_everyone(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    first = received(inbox, "/a")[0]
    assert first["title"] == "【重要】机房温度偏高 (限值 27)"
    assert "告警: 机房温度偏高 (限值 27)" in first["message"]
    assert "处置: 检查精密空调, 通知空调维保" in first["message"]
    assert received(inbox, "/b") == []                       # level 2 waits for 1 s
    await eventually(lambda: len(received(inbox, "/b")) == 1, 3)
    await daemon.alarms.acknowledge(ALARM, "张三", "已通知空调维保")
    await eventually(lambda: len(received(inbox, "/a")) == 2 and
                     len(received(inbox, "/b")) == 2, 3)
    for path in ("/a", "/b"):
        told = received(inbox, path)[-1]
        assert told["title"].startswith("【已由 张三 于 ") and "确认" in told["title"]
        assert "备注: 已通知空调维保" in told["title"]
    assert daemon.ctx.timers.pending("escalate") == {}
    await asyncio.sleep(1.5)
    assert len(inbox.requests) == 4                          # nothing after the ack


async def test_an_ack_before_the_next_level_means_it_never_goes(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=1.0))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    await daemon.alarms.acknowledge(ALARM, "张三")
    await asyncio.sleep(1.5)
    assert received(inbox, "/b") == []
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT person, ok, paging FROM notifications ORDER BY seq").fetchall())
    assert rows == [("zhang_san", 1, 1), ("zhang_san", 1, 0)]


async def test_a_restart_neither_repeats_nor_forgets_a_step(tmp_path: Path,
                                                           inbox: Receiver) -> None:
    cfg = site(tmp_path, inbox, wait=2.0)
    first = Daemon(cfg)
    await first.start()
    raise_alarm(first)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    await first.stop()
    second = Daemon(cfg)
    await second.start()
    try:
        await eventually(lambda: len(received(inbox, "/b")) == 1, 5)
        assert len(received(inbox, "/a")) == 1               # level 1 was not sent again
    finally:
        await second.stop()


async def test_every_channel_failing_is_a_critical_alarm(tmp_path: Path, inbox: Receiver,
                                                         daemon_factory: Any) -> None:
    inbox.mode = "500"
    daemon = await daemon_factory(site(tmp_path, inbox))
    raise_alarm(daemon)
    await eventually(lambda: daemon.alarms.is_active("notify:failed"), 5)
    assert daemon.alarms.alarms["notify:failed"].severity == "critical"
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT person, ok, detail FROM notifications").fetchall())
    assert rows[0][:2] == ("zhang_san", 0) and "500" in rows[0][2]
    inbox.mode = "ok"
    await eventually(lambda: not daemon.alarms.is_active("notify:failed"), 5)  # level 2 got out


async def test_a_page_nobody_got_goes_again_until_it_gets_through(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """One level, no repeat, every channel down: Vigil keeps paging (doubling its wait) and
    the page goes out once the channel is back."""
    inbox.mode = "500"
    cfg = site(tmp_path, inbox, notify={
        "retries": 0, "resend": 0.3, "group_interval": 0, "policies": [
            {"name": "only", "levels": [{"notify": [{"role": "it"}], "wait": 30}]}],
        "routes": [{"policy": "only"}]})
    daemon = await daemon_factory(cfg)
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) >= 3, 5)     # tried again and again
    assert daemon.alarms.is_active("notify:failed")
    inbox.mode = "ok"
    await eventually(lambda: not daemon.alarms.is_active("notify:failed"), 5)
    got = len(inbox.requests)
    await asyncio.sleep(1.5)
    assert len(inbox.requests) == got                         # through: no more resends
    assert daemon.ctx.timers.pending("resend") == {}


def test_routes_match_and_continue(tmp_path: Path, inbox: Receiver) -> None:
    from monitor.alarms.facts import facts
    from monitor.alarms.model import Alarm
    from monitor.notify.routing import route_facts

    cfg = site(tmp_path, inbox)
    hot = Alarm(ALARM, "major", "m", "mr_env.temperature")
    assert [p.name for p in route_facts(cfg, facts(cfg, hot))] == ["major"]     # by area
    elsewhere = Alarm("comm:nowhere", "minor", "m")
    assert route_facts(cfg, facts(cfg, elsewhere)) == []           # no route: nobody


def test_notify_config_names_what_exists(tmp_path: Path, inbox: Receiver) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as info:
        site(tmp_path, inbox, notify={"policies": [{"name": "p", "levels": [
            {"notify": [{"role": "cfo"}, {"group": "all"}]}]}],
            "routes": [{"policy": "q"}]})
    assert [i.message for i in info.value.issues] == [
        "no role 'cfo'", "no group 'all'", "no policy 'q'"]


# -- acknowledgement links -----------------------------------------------------------------


def link_of(message: dict[str, Any]) -> str:
    line = next(x for x in message["message"].splitlines() if x.startswith("点此确认: "))
    return "/ack/" + line.split("/ack/")[1]


def app_client(daemon: Daemon) -> httpx.AsyncClient:
    """As a phone opens an answer link: no token."""
    return api(daemon, token=None)


async def refusals(daemon: Daemon) -> list[str]:
    await recorded(daemon)
    return await daemon.store.read(lambda c: [m for (m,) in c.execute(
        "SELECT detail FROM events WHERE kind = 'ACK_LINK_REFUSED' ORDER BY seq")])


async def test_a_signed_link_acknowledges_once(tmp_path: Path, inbox: Receiver,
                                               daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=30))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    path = link_of(received(inbox, "/a")[0])
    async with app_client(daemon) as client:        # no bearer token: the link is enough
        page = await client.get(path)
        assert page.status_code == 200 and "机房温度偏高" in page.text
        assert "确认人: 张三" in page.text and '<form method="post">' in page.text
        note = "note=" + quote("空调已报修")
        done = await client.post(path, content=note,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "已确认" in done.text
        alarm = daemon.alarms.alarms[ALARM]
        assert (alarm.acked_by, alarm.ack_note) == ("张三", "空调已报修")
        await eventually(lambda: daemon.ctx.timers.pending("escalate") == {}, 2)
        again = await client.post(path, content="note=x",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert again.status_code == 403 and "此链接已使用过" in again.text
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert (await client.get(forged)).status_code == 403
    reasons = await refusals(daemon)
    assert reasons[0].startswith("this link was already used (zhang_san, 告警 mr_hot.high)")
    assert reasons[1].startswith("this link is not one Vigil signed (altered or forged)")


async def test_an_expired_link_and_a_second_acknowledger(tmp_path: Path, inbox: Receiver,
                                                         daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=0.5))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/b")) == 1, 3)   # both levels paged
    first, second = link_of(received(inbox, "/a")[0]), link_of(received(inbox, "/b")[0])
    async with app_client(daemon) as client:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert "已确认" in (await client.post(first, content="note=", headers=form)).text
        late = await client.post(second, content="note=", headers=form)
        assert late.status_code == 200 and "已由 张三 先行确认" in late.text
        assert daemon.alarms.alarms[ALARM].acked_by == "张三"
        short = "/ack/" + sign(daemon.notifier.composer.key, ALARM, "li_si", lifetime=1)
        assert (await client.get(short)).status_code == 200
        await asyncio.sleep(2.0)
        expired = await client.get(short)
        assert expired.status_code == 403 and "此链接已过期" in expired.text


async def test_two_people_acking_at_once_one_wins_and_both_are_told(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=0.3))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/b")) == 1, 3)   # both levels paged
    first, second = link_of(received(inbox, "/a")[0]), link_of(received(inbox, "/b")[0])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app_client(daemon) as client:
        pages = await asyncio.gather(client.post(first, content="note=", headers=form),
                                     client.post(second, content="note=", headers=form))
    texts = [p.text for p in pages]
    assert all(p.status_code == 200 for p in pages)
    assert sum("<b>已确认。</b>" in t for t in texts) == 1               # one wins
    winner = daemon.alarms.alarms[ALARM].acked_by
    assert sum(f"已由 {winner} 先行确认" in t for t in texts) == 1      # the other is told
    await eventually(lambda: any(f"【已由 {winner} 于 " in m["title"]
                                 for m in received(inbox, "/a")) and
                     any(f"【已由 {winner} 于 " in m["title"] for m in received(inbox, "/b")), 3)
    history = await daemon.store.read(lambda c: alarm_log(c, ALARM, 10))
    assert [h["action"] for h in history].count("acknowledged") == 1


async def test_a_link_for_an_alarm_already_cleared_acknowledges_the_clear(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """ISA-18.2: an alarm that cleared unacknowledged still wants its acknowledgement."""
    daemon = await daemon_factory(site(tmp_path, inbox, wait=30))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    link = link_of(received(inbox, "/a")[0])
    daemon.alarms.set_condition(ALARM, False, 25.0)
    assert daemon.alarms.alarms[ALARM].state().value == "cleared_unacknowledged"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app_client(daemon) as client:
        done = await client.post(link, content="note=" + quote("已恢复, 空调重启"), headers=form)
        assert done.status_code == 200 and "已确认" in done.text
        assert daemon.alarms.alarms[ALARM].state().value == "normal"
        again = await client.get(link)
        assert again.status_code == 403 and "此链接已使用过" in again.text


async def test_an_old_link_does_not_acknowledge_the_alarm_raised_anew(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """A link sent for an occurrence that was acknowledged elsewhere and cleared: when the
    alarm comes back, the old link is refused, and the new occurrence keeps escalating."""
    daemon = await daemon_factory(site(tmp_path, inbox, wait=1.0, group_interval=0))
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    old = link_of(received(inbox, "/a")[0])
    await daemon.alarms.acknowledge(ALARM, "李四")
    daemon.alarms.set_condition(ALARM, False, 25.0)
    await asyncio.sleep(0.05)
    raise_alarm(daemon)                                        # the same alarm, again
    await eventually(lambda: len([m for m in received(inbox, "/a")
                                  if m["title"].startswith("【重要】")]) == 2, 3)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app_client(daemon) as client:
        page = await client.post(old, content="note=", headers=form)
    assert page.status_code == 403 and "告警已再次发生" in page.text
    assert not daemon.alarms.alarms[ALARM].acked
    await eventually(lambda: len(received(inbox, "/b")) == 1, 3)   # it still escalates
    assert (await refusals(daemon))[0].startswith(
        "this link was sent for an earlier occurrence of the alarm (zhang_san")


def test_a_links_signature_has_one_spelling() -> None:
    """A changed last character that decodes to the same bytes (base64's spare bits) is
    refused like any other change."""
    import base64

    from monitor.notify.links import LinkError, verify

    key = b"k" * 32
    token = sign(key, ALARM, "zhang_san", lifetime=60)
    assert verify(key, token).person == "zhang_san"
    body, mac = token.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twins = [mac[:-1] + c for c in last if c != mac[-1] and base64.urlsafe_b64decode(
        mac[:-1] + c + "=") == base64.urlsafe_b64decode(mac + "=")]
    assert twins                                               # 43 characters: 2 spare bits
    for twin in twins:
        with pytest.raises(LinkError, match="altered or forged"):
            verify(key, f"{body}.{twin}")


def with_password(cfg: Any, password: str) -> Any:
    """李四 (li_si) gets a console password, kept as its hash."""
    from monitor.core.credentials import hash_password

    object.__setattr__(cfg.people[1], "credential", hash_password(password))
    return cfg


async def test_an_expired_link_still_acknowledges_with_the_persons_password(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(with_password(site(tmp_path, inbox, wait=30), "li-si-pass"))
    raise_alarm(daemon)
    expired = "/ack/" + sign(daemon.notifier.composer.key, ALARM, "li_si", lifetime=-1)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app_client(daemon) as client:
        page = await client.get(expired)
        assert page.status_code == 200 and 'type="password"' in page.text
        wrong = await client.post(expired, content="password=guess&note=", headers=form)
        assert wrong.status_code == 403 and "密码不正确" in wrong.text
        assert not daemon.alarms.alarms[ALARM].acked
        done = await client.post(expired, content="password=li-si-pass&note=" + quote("已到场"),
                                 headers=form)
        assert done.status_code == 200 and "已确认" in done.text
    alarm = daemon.alarms.alarms[ALARM]
    assert (alarm.acked_by, alarm.ack_note) == ("李四", "已到场")
    assert (await refusals(daemon))[0].startswith("wrong password (li_si, 告警 mr_hot.high)")
    no_password = "/ack/" + sign(daemon.notifier.composer.key, ALARM, "zhang_san", lifetime=-1)
    async with app_client(daemon) as client:                    # 张三 has none: refused
        assert (await client.get(no_password)).status_code == 403


async def test_a_person_signs_in_to_the_api_and_acts_as_themself(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(with_password(site(tmp_path, inbox, wait=30), "li-si-pass"))
    raise_alarm(daemon)
    path = f"/api/v1/alarms/{ALARM}/acknowledge"
    async with app_client(daemon) as client:
        alarms = await client.get("/api/v1/alarms", auth=("li_si", "li-si-pass"))
        assert alarms.status_code == 200 and alarms.json()[0]["id"] == ALARM
        reload = await client.post("/api/v1/reload", auth=("li_si", "li-si-pass"))
        assert reload.status_code == 403                           # that needs the token
        acked = await client.post(path, json={"who": "王五", "note": "已处理"},
                                  auth=("li_si", "li-si-pass"))
        assert acked.status_code == 200 and acked.json()["acked_by"] == "李四"  # not 王五
        unsigned = await client.post(path, json={"note": "x"},
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        assert unsigned.status_code == 422 and "who" in unsigned.text
        for _ in range(10):
            bad = await client.get("/api/v1/alarms", auth=("li_si", "guess"))
            assert bad.status_code == 401
        again = await client.get("/api/v1/alarms", auth=("li_si", "li-si-pass"))
        assert again.status_code == 429                            # this address waits now
        nobody = await client.get("/api/v1/alarms", auth=("zhang_san", ""))
        assert nobody.status_code == 429


def test_a_password_in_the_config_is_refused(tmp_path: Path, inbox: Receiver) -> None:
    from monitor.config import ConfigError

    text = site_yaml(tmp_path, [], people=[{"name": "li_si", "credential": "hunter22"}])
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "site.yaml")
    assert "people[0].credential: give the hash `vigil passwd` prints, never the password " \
           "itself" in str(info.value)
    assert "hunter22" not in str(info.value)


def test_route_test_shows_the_path(tmp_path: Path, inbox: Receiver) -> None:
    import subprocess
    import sys

    text = site_yaml(tmp_path, [], [], roles=[{"name": "it"}, {"name": "dept_head"}],
                     people=[{"name": "zhang_san", "label": "张三", "roles": ["it"],
                              "contacts": [{"channel": "inbox", "url": "inbox://zhang_san"}]}],
                     notify={"policies": [{"name": "p", "levels": [
                         {"notify": [{"role": "it"}], "wait": "5m"},
                         {"notify": [{"role": "dept_head"}]}]}],
                         "routes": [{"match": {"severity": ["critical"]}, "policy": "p"}]})
    path = tmp_path / "route.yaml"
    path.write_text(text, encoding="utf-8")

    def run(*facts: str) -> str:
        return subprocess.run([sys.executable, "-m", "monitor.cli", "route", "test", *facts,
                               "-c", str(path)], capture_output=True, text=True,
                              timeout=30).stdout
    assert run("severity=critical").splitlines() == [
        "policy p:", "  +0 秒: level 1: 张三 (zhang_san: inbox)", "  +5 分钟: level 2: nobody"]
    assert run("severity=minor").startswith("no route matches")


# -- silences ----------------------------------------------------------------------------

async def test_a_silence_holds_back_and_announces_at_its_end(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=30))
    async with api(daemon) as client:
        made = (await client.post("/api/v1/silences", json={
            "match": {"area": ["machine_room"]}, "duration": 1.5, "who": "王五",
            "reason": "物业通知停电检修"})).json()
        assert made["who"] == "王五" and made["match"]["area"] == ["machine_room"]
        listed = (await client.get("/api/v1/silences")).json()
        assert [s["id"] for s in listed] == [made["id"]]
    raise_alarm(daemon)
    await asyncio.sleep(0.5)
    assert inbox.requests == []                                 # held back, not sent
    held = await daemon.store.call(lambda c: c.execute(
        "SELECT silence, alarm FROM silenced").fetchall())
    assert held == [(made["id"], ALARM)]
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)   # announced at the end


async def test_an_alarm_handled_during_the_window_is_not_announced(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, inbox, wait=30))
    async with api(daemon) as client:
        made = (await client.post("/api/v1/silences", json={
            "match": {}, "duration": 60, "who": "王五", "reason": "演练"})).json()
        raise_alarm(daemon)
        await daemon.alarms.acknowledge(ALARM, "张三")
        ended = await client.post(f"/api/v1/silences/{made['id']}/expire", json={"who": "王五"})
        assert ended.status_code == 200 and "ended early by 王五" not in ended.json()["who"]
        await asyncio.sleep(0.5)
        assert received(inbox, "/a") == []
        assert (await client.get("/api/v1/silences")).json() == []
        bad = await client.post("/api/v1/silences", json={
            "match": {"colour": ["red"]}, "duration": 60, "who": "王五", "reason": "x"})
        assert bad.status_code == 422


async def test_an_inhibited_alarm_waits_until_its_source_is_gone(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """A site's own rule: while 过高 (high_high) holds, its 偏高 (high) is not sent; once
    high_high clears and high still holds, high goes out."""
    daemon = await daemon_factory(site(tmp_path, inbox, wait=30, high_high=35, group_interval=0,
                                       inhibit=[
        {"source": {"alarm": ["mr_hot.high_high"]}, "target": {"alarm": [ALARM]}}]))
    daemon.alarms.set_condition("mr_hot.high_high", True, 36.0)
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    assert "过高" in received(inbox, "/a")[0]["title"]
    assert daemon.alarms.alarms[ALARM].state().value == "suppressed"
    await asyncio.sleep(0.5)
    assert len(received(inbox, "/a")) == 1                  # H held back while HH holds
    daemon.alarms.set_condition("mr_hot.high_high", False, 30.5)
    await eventually(lambda: any("偏高" in m["title"] for m in received(inbox, "/a")), 3)


# -- delivery: retries, fallback, rate limits -------------------------------------------------


async def test_a_passing_failure_is_retried_and_every_attempt_recorded(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    inbox.fail_first = 1
    cfg = site(tmp_path, inbox, wait=30)
    object.__setattr__(cfg.notify, "retries", 2)
    object.__setattr__(cfg.notify, "retry_delay", 0.2)
    daemon = await daemon_factory(cfg)
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 2, 3)
    await eventually(lambda: not daemon.ctx.supervisor.busy("delivery"), 3)  # answered, recorded
    await daemon.store.committed()
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT person, ok, detail FROM notifications ORDER BY seq").fetchall())
    assert rows[0][:2] == ("zhang_san", 0) and "500" in rows[0][2]
    assert rows[1] == ("zhang_san", 1, "sent (attempt 2)")
    assert not daemon.alarms.is_active("notify:failed")


async def test_an_acknowledged_page_is_not_tried_again(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """A page fails and waits for its retry; someone acknowledges at the console meanwhile:
    the retry never goes (its timer is gone), and the person hears it was handled."""
    inbox.mode = "500"
    cfg = site(tmp_path, inbox, wait=30, group_interval=0)
    object.__setattr__(cfg.notify, "retries", 3)
    object.__setattr__(cfg.notify, "retry_delay", 0.5)
    daemon = await daemon_factory(cfg)
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)
    inbox.mode = "ok"
    await daemon.alarms.acknowledge(ALARM, "王五", "已到现场")
    await eventually(lambda: any("王五" in m["title"] for m in received(inbox, "/a")), 3)
    assert daemon.ctx.timers.pending("attempt") == {}     # the page's retry is gone
    await asyncio.sleep(2.0)                        # past every retry it would have made
    pages = [m for m in received(inbox, "/a") if "王五" not in m["title"]]
    assert len(pages) == 1, pages


async def test_the_fallback_channel_when_the_others_fail(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spare = Receiver().start()
    try:
        inbox.mode = "500"
        monkeypatch.setenv("VIGIL_TEST_HOOK_C", f"json://127.0.0.1:{spare.port}/sms")
        cfg = site(tmp_path, inbox, wait=30)
        person = cfg.people[0]
        fallback = person.contacts[0].model_copy(update={"fallback": True, "channel": "sms"})
        object.__setattr__(fallback, "url", type(person.contacts[0].url)(env="VIGIL_TEST_HOOK_C"))
        object.__setattr__(person, "contacts", [person.contacts[0], fallback])
        daemon = await daemon_factory(cfg)
        raise_alarm(daemon)
        await eventually(lambda: len(received(spare, "/sms")) == 1, 3)
        assert len(received(inbox, "/a")) == 1                   # the primary was tried first
        assert not daemon.alarms.is_active("notify:failed")
    finally:
        spare.stop()


def with_fallback(cfg: Any, spare: Receiver, monkeypatch: pytest.MonkeyPatch) -> Any:
    """张三 gets an SMS fallback at ``spare``."""
    monkeypatch.setenv("VIGIL_TEST_HOOK_C", f"json://127.0.0.1:{spare.port}/sms")
    person = cfg.people[0]
    fallback = person.contacts[0].model_copy(update={"fallback": True, "channel": "sms"})
    object.__setattr__(fallback, "url", type(person.contacts[0].url)(env="VIGIL_TEST_HOOK_C"))
    object.__setattr__(person, "contacts", [person.contacts[0], fallback])
    return cfg


@pytest.mark.parametrize("severity", ["critical", "major"])
async def test_a_critical_page_goes_to_the_fallback_after_the_first_failure(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any,
        monkeypatch: pytest.MonkeyPatch, severity: str) -> None:
    """Critical: the fallback right after the first failed attempt, the first channel
    retried beside it. Otherwise the fallback waits for the first channel's retries."""
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    spare = Receiver().start()
    try:
        inbox.mode = "500"
        cfg = with_fallback(site(tmp_path, inbox, wait=30), spare, monkeypatch)
        object.__setattr__(cfg.notify, "retries", 2)
        object.__setattr__(cfg.notify, "retry_delay", 1.0)
        daemon = await daemon_factory(cfg)
        daemon.alarms.define(AlarmDef("fire:z1", Severity(severity), "1 号防区火警",
                                      "mr_env.temperature"))
        started = time.monotonic()
        daemon.alarms.set_condition("fire:z1", True)
        await eventually(lambda: len(received(spare, "/sms")) == 1, 6)
        if severity == "critical":                      # before the first retry (1 s later)
            assert len(received(inbox, "/a")) == 1
        else:                                           # after both retries, 1 s then 2 s
            assert len(received(inbox, "/a")) == 3 and time.monotonic() - started >= 3.0
        await asyncio.sleep(1.5)
        assert len(received(inbox, "/a")) in (1, 3) and len(received(spare, "/sms")) == 1
        assert daemon.ctx.timers.pending("attempt") == {}           # reached: it ends
    finally:
        spare.stop()


async def test_a_channel_that_raises_is_a_failed_attempt_on_record(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A contact whose secret cannot be read any more (its variable gone): the attempt is a
    failure with its reason, notify:failed is raised, and the page goes again."""
    cfg = site(tmp_path, inbox, wait=30, notify={
        "retries": 0, "resend": 0.3, "group_interval": 0, "policies": [
            {"name": "only", "levels": [{"notify": [{"role": "it"}], "wait": 30}]}],
        "routes": [{"policy": "only"}]})
    daemon = await daemon_factory(cfg)
    monkeypatch.delenv("VIGIL_TEST_HOOK_A")
    raise_alarm(daemon)
    await eventually(lambda: daemon.alarms.is_active("notify:failed"), 3)
    await daemon.store.committed()
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT ok, detail FROM notifications WHERE person = 'zhang_san'").fetchall())
    assert rows[0] == (0, "cannot send: ValueError")
    monkeypatch.setenv("VIGIL_TEST_HOOK_A", f"json://127.0.0.1:{inbox.port}/a")
    await eventually(lambda: len(received(inbox, "/a")) == 1, 3)       # the next round
    await eventually(lambda: not daemon.alarms.is_active("notify:failed"), 3)


async def test_after_a_storm_clears_a_critical_alarm_goes_at_once(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """300 alarms come and clear: the recovery notes are grouped like the pages, and a fire
    alarm raised next is not held by the person limit."""
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    cfg = site(tmp_path, inbox, wait=3600, group_interval=1.0)
    daemon = await daemon_factory(cfg)
    ids = raise_many(daemon, "storm", "摄像机 {n} 离线", ["mr_env.temperature"] * 300)
    await eventually(lambda: len(received(inbox, "/a")) == 2, 3)     # first, then the group
    for alarm_id in ids:
        daemon.alarms.set_condition(alarm_id, False)
    await eventually(lambda: len(received(inbox, "/a")) >= 3, 3)
    await asyncio.sleep(1.5)
    told = [m["title"] for m in received(inbox, "/a")[2:]]
    assert len(told) == 2 and told[1] == "【已处理】299 条告警已确认或已恢复", told
    raise_many(daemon, "door", "门禁 {n} 离线", [None] * 30, "minor")  # the person limit used up
    daemon.alarms.define(AlarmDef("fire:z1", Severity.CRITICAL, "1 号防区火警",
                                  "mr_env.temperature"))
    await asyncio.sleep(0.3)
    before = len(received(inbox, "/a"))
    daemon.alarms.set_condition("fire:z1", True)       # the limit would hold it for minutes
    await eventually(lambda: any(m["title"] == "【紧急】1 号防区火警"
                                 for m in received(inbox, "/a")), 10)
    assert len(received(inbox, "/a")) == before + 1


async def test_a_group_of_several_areas_names_what_they_share_and_counts_each(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:

    areas = {"machine_room": "机房", "entrance": "入口", "office": "办公区"}
    cfg = site(tmp_path, inbox, wait=3600, group_interval=1.0, areas=areas)
    object.__setattr__(cfg.notify, "group_by", ["severity"])
    daemon = await daemon_factory(cfg)
    places = ["machine_room"] + ["entrance"] * 3 + ["office"] * 2 + ["machine_room"]
    raise_many(daemon, "cam", "摄像机 {n} 离线", [f"mr_env.{area}" for area in places])
    await eventually(lambda: len(received(inbox, "/a")) == 2, 3)
    grouped = received(inbox, "/a")[1]
    assert grouped["title"] == "【重要】6 条告警 (3 个区域)"
    assert grouped["message"].splitlines()[0] == "入口 3 条, 办公区 2 条, 机房 1 条"


async def test_a_robot_is_never_sent_more_than_its_limit() -> None:
    from monitor.notify.limits import RateLimiter

    limiter = RateLimiter({"dingtalk": ((2, 1.0),)})
    started = time.monotonic()
    waits = [await limiter.turn("robot-1", "dingtalk") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0.5
    assert time.monotonic() - started >= 0.9                    # the third waited its turn
    assert await limiter.turn("robot-2", "dingtalk") == 0.0     # another robot: no wait
    assert await limiter.turn("x", "json") == 0.0               # no limit known: no wait


async def test_an_alarm_storm_is_one_message_per_person_and_group(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:

    cfg = site(tmp_path, inbox, wait=30)
    object.__setattr__(cfg.notify, "group_interval", 1.0)
    daemon = await daemon_factory(cfg)
    raise_many(daemon, "storm", "机房摄像机 {n} 离线",   # cameras and doors after a mains loss
               ["mr_env.temperature"] * 12)
    await eventually(lambda: len(received(inbox, "/a")) == 1, 2)
    assert received(inbox, "/a")[0]["title"] == "【重要】机房摄像机 0 离线"     # the first at once
    await eventually(lambda: len(received(inbox, "/a")) == 2, 3)
    grouped = received(inbox, "/a")[1]
    assert grouped["title"] == "【重要】machine_room: 11 条告警"
    assert "· 机房摄像机 10 离线" in grouped["message"] and "· 及其他 1 条" in grouped["message"]
    assert "/ack/" not in grouped["message"]
    await asyncio.sleep(1.5)
    assert len(received(inbox, "/a")) == 2                    # two messages for 12 alarms
    rows = await daemon.store.call(lambda c: c.execute(
        "SELECT COUNT(DISTINCT alarm) FROM notifications WHERE person = 'zhang_san'").fetchone())
    assert rows == (12,)                                      # every alarm's page is on record


async def test_a_person_gets_no_more_than_their_limit_and_hears_the_rest_as_one(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    """Limit 2 messages in 1.5 s, no grouping: of four pages two go at once and the others
    as one message when the period allows; the four acks told as few messages too."""
    from monitor.config.notify import PersonLimit

    cfg = site(tmp_path, inbox, wait=30, group_interval=0)
    object.__setattr__(cfg.notify, "person_limit", PersonLimit(messages=2, per=1.5))
    daemon = await daemon_factory(cfg)
    ids = raise_many(daemon, "door", "门禁 {n} 离线", ["mr_env.temperature"] * 4)
    await eventually(lambda: len(received(inbox, "/a")) == 2, 2)
    assert sorted(m["title"] for m in received(inbox, "/a")) == ["【重要】门禁 0 离线",
                                                                "【重要】门禁 1 离线"]
    await asyncio.sleep(0.5)
    assert len(received(inbox, "/a")) == 2                    # the limit holds the others
    await eventually(lambda: len(received(inbox, "/a")) == 3, 3)
    assert received(inbox, "/a")[2]["title"] == "【重要】machine_room: 2 条告警"
    for alarm_id in ids:
        await daemon.alarms.acknowledge(alarm_id, "张三")
    await eventually(lambda: len(received(inbox, "/a")) == 5, 4)
    told = [m["title"] for m in received(inbox, "/a")[3:]]
    assert told[0].startswith("【已由 张三 于 ")                   # the first at once
    assert told[1] == "【已处理】3 条告警已确认或已恢复"           # the rest when allowed
    await asyncio.sleep(2)
    assert len(received(inbox, "/a")) == 5


async def test_english_readers_and_sms_get_their_own_text(
        tmp_path: Path, inbox: Receiver, daemon_factory: Any) -> None:
    cfg = site(tmp_path, inbox, wait=0.5)
    li_si = cfg.people[1]
    object.__setattr__(li_si, "language", "en")
    object.__setattr__(li_si, "contacts", [li_si.contacts[0].model_copy(
        update={"channel": "sms"})])
    daemon = await daemon_factory(cfg)
    raise_alarm(daemon)
    await eventually(lambda: len(received(inbox, "/b")) == 1, 3)
    sms = received(inbox, "/b")[0]
    text, link = sms["message"].split("\n")
    assert text == "[MAJOR] 机房温度偏高 (限值 27). 检查精密空调, 通知空调维保"
    assert "/ack/" in link                                  # short: text, what to do, link
    await daemon.alarms.acknowledge(ALARM, "张三")
    await eventually(lambda: len(received(inbox, "/b")) == 2, 3)
    assert received(inbox, "/b")[1]["message"].startswith("[acknowledged by 张三 at ")


def test_routes_by_time_of_day(tmp_path: Path, inbox: Receiver) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from monitor.notify.routing import route_facts

    notify = {"policies": [{"name": "office", "levels": [{"notify": [{"role": "it"}]}]},
                           {"name": "night", "levels": [{"notify": [{"role": "dept_head"}]}]}],
              "routes": [{"when": {"days": "workdays", "hours": "09:00-18:00"},
                          "policy": "office"},
                         {"policy": "night"}]}
    cfg = site(tmp_path, inbox, notify=notify)
    found = {"severity": "major", "area": "machine_room", "device_class": "", "alarm": ALARM}
    sh = ZoneInfo("Asia/Shanghai")
    tuesday_10 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=sh)
    tuesday_20 = dt.datetime(2026, 11, 3, 20, 0, tzinfo=sh)
    national_day = dt.datetime(2026, 10, 1, 10, 0, tzinfo=sh)
    assert [p.name for p in route_facts(cfg, found, tuesday_10)] == ["office"]
    assert [p.name for p in route_facts(cfg, found, tuesday_20)] == ["night"]
    assert [p.name for p in route_facts(cfg, found, national_day)] == ["night"]
