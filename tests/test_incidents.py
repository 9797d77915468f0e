"""Incidents on a running daemon: the power-loss playbook started by a UPS on battery (a
Modbus server), its messages at a real HTTP receiver, people acting through the API, one
incident for a flapping trigger, and a restart in the middle with its waits re-armed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.core.timers import name
from monitor.daemon import Daemon
from tests.conftest import ON_BATTERY, ON_LINE, config
from tests.fixtures import api, ups
from tests.servers.http_receiver import Receiver
from tests.util import eventually, recorded, until

ROOT = Path(__file__).parent.parent
ROLES = ["admin", "dept_head", "deputy", "gm", "compliance", "it", "property", "bank_contact",
         "tech_director"]


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def site(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, inbox: Receiver,
         playbooks: Path = ROOT / "playbooks", *, devices: list[dict[str, Any]] = (),
         rules: list[dict[str, Any]] = (), vacant: tuple[str, ...] = (),
         hooks: dict[str, str] | None = None, notify: dict[str, Any] | None = None) -> Any:
    """A UPS on ``port`` and a person holding each role (none for the ``vacant`` ones), paged
    at ``inbox`` unless ``hooks`` names another env variable for their role."""
    monkeypatch.setenv("VIGIL_TEST_ROLE_HOOK", f"json://127.0.0.1:{inbox.port}/role")
    extra = {"notify": notify} if notify is not None else {}
    return config(tmp_path, [ups("ups_a", port), *devices], list(rules),
                  playbooks=str(playbooks), roles=[{"name": r} for r in ROLES],
                  people=[{"name": f"p_{r}", "label": f"{r} 负责人", "roles": [r],
                           "contacts": [{"channel": "webhook", "url": {
                               "env": (hooks or {}).get(r, "VIGIL_TEST_ROLE_HOOK")}}]}
                          for r in ROLES if r not in vacant], **extra)


def titles(inbox: Receiver) -> list[str]:
    return [json.loads(r.body)["title"] for r in inbox.requests]


async def timeline(client: httpx.AsyncClient, incident: str) -> list[tuple[str, str | None]]:
    got = (await client.get(f"/api/v1/incidents/{incident}")).json()
    return [(t["kind"], t["step"]) for t in got["timeline"]]


async def test_a_ups_on_battery_starts_the_power_loss_procedure(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    await eventually(lambda: "ups_a.ups.status" in daemon.state.latest)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])
    await eventually(lambda: bool(daemon.incidents.running), 5)
    (incident,) = daemon.incidents.running
    first = "【停电应急预案】市电中断, UPS 电池供电。请立即向物业询问停电原因和预计停电时长。"
    await eventually(lambda: first in titles(inbox), 5)
    await recorded(daemon)                     # the list is read from the database
    async with api(daemon) as client:
        listed = (await client.get("/api/v1/incidents")).json()
        assert [(i["id"], i["label"], i["status"]) for i in listed] == [
            (incident, "停电应急预案", "running")]
        done = await client.post(f"/api/v1/incidents/{incident}/confirm",
                                 json={"item": "duration_asked", "who": "王五"})
        assert done.status_code == 200 and done.json()["checked"]["duration_asked"][0] == "王五"
        await server.async_setValues(1, 4, 20, [ON_LINE])          # mains back: resolved
        await eventually(lambda: daemon.incidents.running[incident].status == "recovery", 5)
        await server.async_setValues(1, 4, 20, [ON_BATTERY])       # flaps: the same incident
        await eventually(lambda: daemon.alarms.is_active("power:ups_a"), 5)
        await recorded(daemon)
        assert list(daemon.incidents.running) == [incident]
        await server.async_setValues(1, 4, 20, [ON_LINE])
        await eventually(lambda: not daemon.alarms.is_active("power:ups_a"), 5)
        first = daemon.incidents.running[incident]             # resolved 10 minutes ago, say
        assert first.resolved is not None
        first.resolved = (first.resolved[0], first.resolved[1] - 600)
        await server.async_setValues(1, 4, 20, [ON_BATTERY])       # a new outage: a new one
        await eventually(lambda: len(daemon.incidents.running) == 2, 5)
        second = next(i for i in daemon.incidents.running.values() if i.id != incident)
        assert second.links == [incident] and first.links == [second.id]
        assert second.step == "wait_mains"                          # the procedure again
        for item, who in (("staff_told_restored", "王五"), ("equipment_checked", "李四"),
                          ("data_restored", "张三")):
            await client.post(f"/api/v1/incidents/{incident}/confirm",
                              json={"item": item, "who": who})
        assert incident not in daemon.incidents.running
        await recorded(daemon)
        steps = await timeline(client, incident)
        assert steps[:7] == [("started", None), ("notify", "tell_admin"),
                             ("notify", "report_gm"), ("checklist", "ask_property"),
                             ("deadline", "ask_deadline"), ("notify", "short_response"),
                             ("wait", "wait_mains")]
        assert ("deadline_met", "ask_deadline") in steps
        assert ("resolved", "restored") in steps
        assert ("retriggered", None) in steps and steps[-1] == ("closed", None)
        missing = await client.post(f"/api/v1/incidents/{incident}/confirm",
                                    json={"item": "x", "who": "王五"})
        assert missing.status_code == 404                      # closed: nothing to act on


async def test_a_restart_keeps_the_incident_and_its_waits(
        tmp_path: Path, sim: Any, inbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    server, port = sim
    cfg = site(tmp_path, port, monkeypatch, inbox)
    first = Daemon(cfg)
    await first.start()
    try:
        await server.async_setValues(1, 4, 20, [ON_BATTERY])
        await eventually(lambda: bool(first.incidents.running), 5)
        (incident,) = first.incidents.running
        pending = first.ctx.timers.pending("playbook")
        assert name(incident, "wait_mains#timeout") in pending
    finally:
        await first.stop()
    sent = len(inbox.requests)
    second = Daemon(cfg)
    await second.start()
    try:
        assert list(second.incidents.running) == [incident]
        assert second.ctx.timers.pending("playbook") == pending      # re-armed, same due times
        await recorded(second)
        assert len(inbox.requests) == sent                         # no step sent again
        async with api(second) as client:
            steps = await timeline(client, incident)
        assert steps.count(("notify", "tell_admin")) == 1
    finally:
        await second.stop()


async def test_an_invalid_playbook_refuses_to_start_and_a_reload_keeps_the_last_good(
        tmp_path: Path, sim: Any, inbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.config import ConfigError

    _, port = sim
    books = tmp_path / "playbooks"
    books.mkdir()
    good = (ROOT / "playbooks" / "power_loss.yaml").read_text(encoding="utf-8")
    (books / "power_loss.yaml").write_text(good.replace("roles: [admin,", "roles: [cfo, admin,"),
                                           encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Daemon(site(tmp_path, port, monkeypatch, inbox, books))
    assert "power_loss.yaml:9: roles[0]: no role 'cfo' in the site config" in str(info.value)


async def test_a_drill_is_labelled_and_a_real_alarm_still_starts_a_real_incident(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    async with api(daemon) as client:
        made = await client.post("/api/v1/incidents", json={
            "playbook": "power_loss", "drill": True, "who": "王五", "why": "季度停电演练"})
        assert made.status_code == 200
        drill = made.json()
        assert drill["drill"] and drill["id"].startswith("drill-")
        await eventually(lambda: len(inbox.requests) >= 2, 5)
        assert all(t.startswith("【演练】【停电应急预案】") for t in titles(inbox))
        await server.async_setValues(1, 4, 20, [ON_BATTERY])        # a real outage meanwhile
        await eventually(lambda: len(daemon.incidents.running) == 2, 5)
        real = next(i for i in daemon.incidents.running if not i.startswith("drill-"))
        await eventually(lambda: any(t.startswith("【停电应急预案】") for t in titles(inbox)), 5)
        await recorded(daemon)
        drill_steps = await timeline(client, drill["id"])
        assert ("retriggered", None) not in drill_steps               # the drill stays apart
        assert (await timeline(client, real))[0] == ("started", None)
        unknown = await client.post("/api/v1/incidents", json={"playbook": "meteor",
                                                                "who": "王五"})
        assert unknown.status_code == 404


async def test_a_reload_keeps_running_incidents_on_their_version(
        tmp_path: Path, sim: Any, inbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from monitor.config import load_config

    _, port = sim
    books = tmp_path / "playbooks"
    books.mkdir()
    text = (ROOT / "playbooks" / "general_report.yaml").read_text(encoding="utf-8")
    (books / "general_report.yaml").write_text(text, encoding="utf-8")
    cfg = site(tmp_path, port, monkeypatch, inbox, books)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True,
                                                  exclude_defaults=True), allow_unicode=True),
                    encoding="utf-8")
    daemon = Daemon(load_config(path), path)
    await daemon.start()
    try:
        old = daemon.incidents.start("general_report", why="机房进水")
        (books / "general_report.yaml").write_text(
            text.replace("发生突发事件, 请总经理和合规知悉", "新版 发生突发事件"), encoding="utf-8")
        assert await daemon.reload_from_file() == []
        new = daemon.incidents.start("general_report", why="演练", drill=True)
        assert new.version != old.version
        assert daemon.incidents.versions[old.version].steps[0].message.startswith("发生突发事件")
        await eventually(lambda: any(t.startswith("【演练】【突发事件报告】新版 ") for t in
                                     titles(inbox)), 5)
        (books / "general_report.yaml").write_text(text.replace("roles: [gm,", "roles: [cfo,"),
                                                   encoding="utf-8")
        errors = await daemon.reload_from_file()
        assert any("general_report.yaml:8: roles[0]: no role 'cfo'" in e for e in errors)
        assert daemon.incidents.playbooks["general_report"].steps[0].message.startswith("新版")
    finally:
        await daemon.stop()
    (books / "general_report.yaml").write_text(
        text.replace("发生突发事件, 请总经理和合规知悉", "新版 发生突发事件"), encoding="utf-8")
    again = Daemon(load_config(path), path)       # both come back, each on its own version
    await again.start()
    try:
        assert {i.id: i.version for i in again.incidents.running.values()} == {
            old.id: old.version, new.id: new.version}
    finally:
        await again.stop()


async def test_a_service_down_during_a_power_loss_is_a_linked_system_outage(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A host check (HTTP to a real server) fails while the UPS is on battery: the system
    outage procedure starts, linked to the power loss, and takes its power path."""
    server, port = sim
    web = Receiver(reply=b"ok").start()
    try:
        erp = {"name": "erp", "area": "machine_room", "class": "host", "type": "host",
               "label": "催收系统", "interval": 0.2, "timeout": 0.15, "jitter": 0,
               "connection": {"host": "127.0.0.1"},
               "points": [{"key": "web", "check": "http", "url": f"{web.url}/login",
                           "label": "登录页"}]}
        rule = {"name": "erp_down", "point": "erp.web", "kind": "state", "equals": [False],
                "severity": "critical", "message": "催收系统登录页无法访问"}
        daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox, devices=[erp],
                                           rules=[rule]))
        await eventually(lambda: daemon.state.latest.get("erp.web") is not None
                         and daemon.state.latest["erp.web"].value is True, 5)
        await server.async_setValues(1, 4, 20, [ON_BATTERY])
        await eventually(lambda: any(i.playbook == "power_loss"
                                     for i in daemon.incidents.running.values()), 5)
        web.mode = "500"                                   # the ERP goes down meanwhile
        await eventually(lambda: any(i.playbook == "system_outage"
                                     for i in daemon.incidents.running.values()), 5)
        power, outage = (next(i for i in daemon.incidents.running.values() if i.playbook == p)
                         for p in ("power_loss", "system_outage"))
        assert outage.links == [power.id] and power.links == [outage.id]
        async with api(daemon) as client:
            for path, body in ((f"/api/v1/incidents/{outage.id}/confirm",
                                {"item": "verified", "who": "张三"}),
                               (f"/api/v1/incidents/{outage.id}/decide",
                                {"step": "authorise", "approve": True, "who": "赵总"})):
                assert (await client.post(path, json=body)).status_code == 200
            await recorded(daemon)
            got = (await client.get(f"/api/v1/incidents/{outage.id}")).json()
            steps = [(t["kind"], t["step"]) for t in got["timeline"]]
            assert ("branch", "power_cause") in steps and ("notify", "power_path") in steps
            linked = [t["text"] for t in got["timeline"] if t["kind"] == "linked"]
            assert linked == [f"关联: 起因是 停电应急预案 ({power.id})"]
            other = (await client.get(f"/api/v1/incidents/{power.id}")).json()
            assert [t["text"] for t in other["timeline"] if t["kind"] == "linked"] == [
                f"关联: 引起了 系统中断应急预案 ({outage.id})"]
            # by hand: a third incident linked to the outage; twice is a conflict
            report = (await client.post("/api/v1/incidents", json={
                "playbook": "general_report", "who": "王五"})).json()
            made = await client.post(f"/api/v1/incidents/{report['id']}/link",
                                     json={"other": outage.id, "who": "王五"})
            assert made.status_code == 200 and made.json()["links"] == [outage.id]
            again = await client.post(f"/api/v1/incidents/{outage.id}/link",
                                      json={"other": report["id"], "who": "王五"})
            assert again.status_code == 409
            drill = (await client.post("/api/v1/incidents", json={
                "playbook": "general_report", "drill": True, "who": "王五"})).json()
            mixed = await client.post(f"/api/v1/incidents/{drill['id']}/link",
                                      json={"other": outage.id, "who": "王五"})
            assert mixed.status_code == 409                  # a drill never touches the real
            gone = await client.post(f"/api/v1/incidents/{report['id']}/link",
                                     json={"other": "no-such-incident", "who": "王五"})
            assert gone.status_code == 404
        assert any("【系统中断应急预案】" in t for t in titles(inbox))
    finally:
        web.stop()


async def test_a_roll_call_asks_each_person_and_their_link_answers_it(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The earthquake procedure asks every person, each with their own link; the links of
    the other messages take the incident on. A link answers once."""
    import re

    _, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    async with api(daemon) as client:
        made = await client.post("/api/v1/incidents", json={"playbook": "earthquake",
                                                            "who": "王五"})
        incident = made.json()["id"]

        def links(marker: str) -> list[str]:
            found = [re.search(marker + r": \S+(/ack/\S+)", json.loads(r.body)["message"])
                     for r in inbox.requests]
            return [m.group(1) for m in found if m]
        staff = 6                       # the roll call's roles: the company's staff, one each
        await eventually(lambda: len(links("点此确认您已安全")) == staff, 5)
        rollcall = links("点此确认您已安全")
        assert len(set(rollcall)) == staff                      # one link per person
        page = await client.get(rollcall[0])
        assert page.status_code == 200 and "我已安全" in page.text
        answered = await client.post(rollcall[0], content=b"do=safe")
        assert answered.status_code == 200 and "已记录: 您已安全" in answered.text
        again = await client.post(rollcall[0], content=b"do=safe")
        assert again.status_code == 403 and "已使用过" in again.text
        by_api = await client.post(f"/api/v1/incidents/{incident}/safe",
                                   json={"person": "p_it", "who": "李四"})
        assert by_api.status_code == 200
        await recorded(daemon)
        got = (await client.get(f"/api/v1/incidents/{incident}")).json()
        safe = [t["text"] for t in got["timeline"] if t["kind"] == "safe"]
        assert len(safe) == 2 and "it 负责人 已确认安全, 由 李四 代报" in safe
        answered_by = sum(ts is not None for ts in got["rollcall"]["rollcall"].values())
        assert answered_by == 2 and len(got["rollcall"]["rollcall"]) == staff
        assert got["step_label"] == "人员点名 (每人确认安全)"      # what the console shows
        assert got["todo"]["rollcall"] == {"asked": staff, "safe": 2}
        assert got["todo"]["items"] == [{"item": "bank_told", "text": "已向委托银行报告地震影响",
                                         "role": "compliance", "role_id": "compliance"}]
        take_on = links("点此接手或处理")[0]               # the alert's own link
        taken = await client.post(take_on, content=b"do=ack")
        assert taken.status_code == 200 and "已确认接手" in taken.text
        assert daemon.incidents.running[incident].acked is not None
        # the compliance officer's message asks for their item: their link confirms it
        asked = next(re.search(r"点此接手或处理: \S+(/ack/\S+)", json.loads(r.body)[
            "message"]).group(1) for r in inbox.requests
            if "请确认: 已向委托银行报告地震影响" in json.loads(r.body)["title"])
        said = next(json.loads(r.body) for r in inbox.requests
                    if "请确认: 已向委托银行报告地震影响" in json.loads(r.body)["title"])
        assert "请确认" not in said["message"]          # the title is not said again
        assert said["message"].startswith("起因: ") or said["message"].startswith("预案: ")
        page = (await client.get(asked)).text
        assert "确认: 已向委托银行报告地震影响" in page and "确认收到并接手" not in page
        done = await client.post(asked, content=b"do=confirm%3Abank_told")
        assert done.status_code == 200 and "已确认" in done.text
        assert daemon.incidents.running[incident].checked["bank_told"][0] == "compliance 负责人"
        again = await client.post(asked, content=b"do=confirm%3Abank_told")
        assert again.status_code == 403 and "已使用过" in again.text   # once, and audited
        other = await client.post(asked, content=b"do=approve%3Aanything")
        assert "不需要您处理" in other.text
        unknown = await client.post(f"/api/v1/incidents/{incident}/safe",
                                    json={"person": "nobody", "who": "李四"})
        assert unknown.status_code == 404
        await recorded(daemon)                     # every delivery is on the timeline too
        got = (await client.get(f"/api/v1/incidents/{incident}")).json()
        delivered = [(t["actor"], t["step"], t["text"]) for t in got["timeline"]
                     if t["kind"] == "delivered"]
        assert len(delivered) == len(inbox.requests)
        assert ("it 负责人", "alert", "webhook | 【地震应急预案】地震! 有序疏散到远离高楼的"
                "空旷地带, 不要乘电梯; 无法撤离时到本层安全区域避险。") in delivered  # step, what
        report = (await client.get(f"/api/v1/incidents/{incident}/export")).text
        assert "消息送达" in report and "p_it" not in report


async def test_a_scripted_drill_runs_its_own_alarms_and_inputs_through_a_restart(
        tmp_path: Path, sim: Any, inbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power-loss drill whose outage and answers are scripted: the site's UPS stays on line,
    no real incident starts, and the script goes on after a restart."""
    _, port = sim
    cfg = site(tmp_path, port, monkeypatch, inbox)
    script = [{"at": 0, "raise": {"alarm": "power:ups_a", "device_class": "ups",
                                  "area": "machine_room"}},
              {"at": 1, "confirm": "duration_asked", "who": "王五"},
              {"at": 2.5, "clear": "power:ups_a"}]
    first = Daemon(cfg)
    await first.start()
    try:
        async with api(first) as client:
            assert (await client.post("/api/v1/incidents", json={
                "playbook": "power_loss", "who": "王五", "script": script})).status_code == 422
            made = await client.post("/api/v1/incidents", json={
                "playbook": "power_loss", "drill": True, "who": "王五", "script": script})
            assert made.status_code == 200, made.text
            drill = made.json()["id"]
            assert made.json()["step"] == "wait_mains"         # the scripted outage holds it
            again = await client.post("/api/v1/incidents", json={
                "playbook": "power_loss", "drill": True, "who": "王五", "script": script})
            assert again.status_code == 409
            await eventually(lambda: "duration_asked" in first.incidents.running[drill].checked,
                             5)
    finally:
        await first.stop()                      # the clear is still to come
    second = Daemon(cfg)
    await second.start()
    try:
        await eventually(lambda: second.incidents.running[drill].status == "recovery", 5)
        await recorded(second)
        async with api(second) as client:
            steps = await timeline(client, drill)
        assert steps.count(("scripted", None)) == 2 and ("resolved", "restored") in steps
        assert ("deadline_met", "ask_deadline") in steps
        assert not second.alarms.is_active("power:ups_a")           # the site never saw it
        assert list(second.incidents.running) == [drill]            # and no real incident
    finally:
        await second.stop()


async def test_an_incident_message_nobody_got_raises_the_alarm_and_goes_again(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The general rule's first message: the GM's webhook fails and compliance has nobody;
    both show on the timeline, notify:failed is raised, and the message goes again until
    it gets through."""
    _, port = sim
    cfg = site(tmp_path, port, monkeypatch, inbox, vacant=("compliance",),
               notify={"retries": 0, "resend": 0.3})
    inbox.mode = "500"
    daemon = await daemon_factory(cfg)
    incident = daemon.incidents.start("general_report", why="测试").id
    await eventually(lambda: daemon.alarms.is_active("notify:failed"), 5)
    nobody = "none: 无人可通知 (角色: compliance) | 请确认: 已向委托银行报告"
    async with api(daemon) as client:
        async def timeline() -> list[tuple[str, str, str]]:
            await recorded(daemon)
            return [(t["kind"], t["actor"], t["text"]) for t in (await client.get(
                f"/api/v1/incidents/{incident}")).json()["timeline"]]

        async def gm_failed() -> list[tuple[str, str, str]] | None:
            lines = await timeline()
            return lines if ("undelivered", "gm 负责人") in [t[:2] for t in lines] else None
        lines = await until(gm_failed, 5)
        assert ("undelivered", "", nobody) in lines     # who, which message, why
        inbox.mode = "ok"                               # the GM's webhook works again
        await eventually(lambda: any("发生突发事件" in json.loads(b)["title"]
                                     for b in inbox.accepted), 5)

        async def waiting() -> list[str]:
            rows = await daemon.store.read(lambda c: c.execute("SELECT data FROM notices")
                                           .fetchall())
            return [json.loads(d)["text"] for (d,) in rows]

        async def only_compliance_waits() -> bool:
            await recorded(daemon)
            return await waiting() == ["请确认: 已向委托银行报告"]
        await until(only_compliance_waits, 5)         # the others are resent and delivered
        assert daemon.alarms.is_active("notify:failed")    # compliance still has nobody
        told = (await timeline()).count(("undelivered", "", nobody))

        async def tried_again() -> bool:
            return (await timeline()).count(("undelivered", "", nobody)) > told
        await until(tried_again, 5)                   # it goes again, and finds nobody again


async def test_two_people_confirming_at_once_count_once_in_order(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    incident = daemon.incidents.start("general_report", why="测试").id
    async with api(daemon) as client:
        both = await asyncio.gather(*(client.post(
            f"/api/v1/incidents/{incident}/confirm", json={"item": item, "who": who})
            for item, who in (("risk_gathered", "甲"), ("risk_gathered", "乙"),
                              ("bank_reported", "丙"))))
        assert [r.status_code for r in both] == [200, 200, 200]
        await recorded(daemon)
        lines = [(t["kind"], t["actor"]) for t in (await client.get(
            f"/api/v1/incidents/{incident}")).json()["timeline"] if t["kind"] in (
            "confirmed", "confirm_ignored", "approval")]
    assert lines == [("confirmed", "甲"), ("confirm_ignored", "乙"), ("confirmed", "丙"),
                     ("approval", None)]                    # each once, nothing judged twice
    await eventually(lambda: len([r for r in inbox.requests
                                  if "请审批" in json.loads(r.body)["title"]]) == 1, 5)
    await until(lambda: daemon.store.read(lambda c: not c.execute(  # every message delivered,
        "SELECT * FROM notices").fetchall()), 5)                   # and recorded so
    assert len([r for r in inbox.requests if "请审批" in json.loads(r.body)["title"]]) == 1


async def test_a_shelved_alarm_starts_no_procedure_until_unshelved_still_active(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    await eventually(lambda: "ups_a.ups.status" in daemon.state.latest)
    await daemon.alarms.shelve("power:ups_a", "王五", "UPS 维护", 7200)
    await server.async_setValues(1, 4, 20, [ON_BATTERY])       # the maintenance outage
    await eventually(lambda: daemon.alarms.alarms["power:ups_a"].active, 5)
    await recorded(daemon)
    assert not daemon.incidents.running                         # nobody is called out
    await daemon.alarms.unshelve("power:ups_a", "王五")          # still on battery after it
    await eventually(lambda: bool(daemon.incidents.running), 5)


async def test_an_incident_message_that_missed_one_person_goes_to_them_again(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The general rule tells the GM and compliance at once: compliance's webhook is down.
    The GM hears once; compliance hears when it is back, and nobody hears it twice."""
    _, port = sim
    down = Receiver(mode="500").start()
    try:
        monkeypatch.setenv("VIGIL_TEST_DOWN_HOOK", f"json://127.0.0.1:{down.port}/down")
        daemon = await daemon_factory(site(
            tmp_path, port, monkeypatch, inbox, hooks={"compliance": "VIGIL_TEST_DOWN_HOOK"},
            notify={"retries": 0, "resend": 0.3}))
        daemon.incidents.start("general_report", why="测试")

        def told(receiver: Receiver) -> list[str]:
            return [json.loads(b)["title"] for b in receiver.accepted]
        await eventually(lambda: any("发生突发事件" in t for t in told(inbox)), 5)
        await eventually(lambda: len(down.requests) >= 2, 5)     # tried again, still down
        down.mode = "ok"
        await eventually(lambda: any("发生突发事件" in t for t in told(down)), 5)
        await recorded(daemon)
        assert [t for t in told(inbox) if "发生突发事件" in t] == [
            "【突发事件报告】发生突发事件, 请总经理和合规知悉; 一小时内须向委托银行报告。"]
        assert len([t for t in told(down) if "发生突发事件" in t]) == 1
    finally:
        down.stop()


async def test_a_restart_sends_its_own_new_messages_once_even_on_a_slow_machine(
        tmp_path: Path, sim: Any, inbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database of a daemon killed mid-action; its restart (where every read comes after
    the writes before it, as on a loaded machine) sends the failure path's message to each
    person once, not once for the bus and again from the stored messages."""
    import sqlite3

    from monitor.core.store import Store
    from tests.fixtures import KILLED_MID_ACTION

    _, port = sim
    marker = tmp_path / "ran.txt"
    books = tmp_path / "books"
    books.mkdir()
    (books / "batch_stop.yaml").write_text(KILLED_MID_ACTION.replace("MARKER", str(marker))
                                           .replace("sleep 30", "sleep 2"), encoding="utf-8")
    cfg = site(tmp_path / "a", port, monkeypatch, inbox, books, notify={"retries": 0})
    object.__setattr__(cfg.actions, "allowed_commands", ["/bin/sh"])
    first = Daemon(cfg)
    await first.start()
    try:
        first.incidents.start("batch_stop", why="测试")
        await eventually(marker.exists, 5)
        await first.store.committed()           # "running" is committed
        crashed = tmp_path / "b" / "data"
        crashed.mkdir(parents=True, mode=0o700)
        with sqlite3.connect(crashed / "vigil.db") as copy:
            await first.store.read(lambda c: c.backup(copy))  # the database as it was
    finally:
        await first.stop()
    real_read = Store.read

    async def slow_read(self: Store, fn: Any) -> Any:
        await self.committed()
        return await real_read(self, fn)
    monkeypatch.setattr(Store, "read", slow_read)
    second = Daemon(site(tmp_path / "b", port, monkeypatch, inbox, books,
                         notify={"retries": 0}))
    await second.start()
    try:
        def unknown() -> list[str]:
            return [t for t in titles(inbox) if "结果不明" in t]
        await eventually(lambda: len(unknown()) >= 1, 5)  # the one person holding role it
        await recorded(second)
        await asyncio.sleep(0.3)                      # a window for a second one to come
        assert len(unknown()) == 1
    finally:
        await second.stop()


async def test_a_scripted_step_due_while_a_persons_input_commits_is_not_lost(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's clear (mains back) falls due while a person's confirmation is being
    committed: the drill still sees mains come back and goes on to recovery."""
    from monitor.core.store import Store
    from monitor.playbooks.engine import Confirm
    from monitor.playbooks.rehearse import Step

    _, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    script = [{"at": 0, "raise": {"alarm": "power:ups_a", "device_class": "ups",
                                  "area": "machine_room"}},
              {"at": 1.0, "clear": "power:ups_a"}]
    drill = daemon.incidents.start("power_loss", drill=True, who="王五", script=[
        Step.model_validate(s) for s in script]).id
    real_call = Store.call

    async def slow_call(self: Store, fn: Any) -> Any:
        await asyncio.sleep(1.0)                      # a slow disk: the commit takes 1 s
        return await real_call(self, fn)
    await asyncio.sleep(0.5)
    monkeypatch.setattr(Store, "call", slow_call)
    await daemon.incidents.act(drill, Confirm("duration_asked", "王五"))  # 0.5 s .. 1.5 s
    monkeypatch.setattr(Store, "call", real_call)
    inc = daemon.incidents.running[drill]
    assert "duration_asked" in inc.checked
    await eventually(lambda: daemon.incidents.running[drill].status == "recovery", 3)
    assert "power:ups_a" not in daemon.incidents.running[drill].scripted


async def test_a_drill_asked_for_twice_says_so_and_a_script_names_only_real_alarms(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox))
    async with api(daemon) as client:
        typo = await client.post("/api/v1/incidents", json={
            "playbook": "power_loss", "drill": True, "who": "王五", "script": [
                {"at": 0, "raise": {"alarm": "power:ups_b"}}]})
        assert typo.status_code == 422
        assert "'power:ups_b', which this site does not define" in typo.json()["detail"]
        assert not daemon.incidents.running
        first = await client.post("/api/v1/incidents", json={
            "playbook": "power_loss", "drill": True, "who": "王五"})
        again = await client.post("/api/v1/incidents", json={
            "playbook": "power_loss", "drill": True, "who": "赵六"})
        assert (first.json()["joined"], again.json()["joined"]) == (False, True)
        assert again.json()["id"] == first.json()["id"]
        await recorded(daemon)
        lines = [(t["kind"], t["actor"]) for t in (await client.get(
            f"/api/v1/incidents/{first.json()['id']}")).json()["timeline"]]
        assert ("retriggered", "赵六") in lines


async def test_a_drills_undelivered_messages_are_the_drills_and_end_with_it(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill's message to a role nobody holds: the drill's own, labelled alarm (not the
    real critical notify:failed), which ends with the drill, and no resending after it."""
    from monitor.playbooks.engine import Resolve

    _, port = sim
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox,
                                       vacant=("compliance",),
                                       notify={"retries": 0, "resend": 0.3}))
    drill = daemon.incidents.start("general_report", why="演练", drill=True).id
    await eventually(lambda: daemon.alarms.is_active("notify:drill_failed"), 5)
    failed = daemon.alarms.alarms["notify:drill_failed"]
    assert failed.message.startswith("【演练】") and failed.severity != "critical"
    assert not daemon.alarms.is_active("notify:failed")
    while drill in daemon.incidents.running:
        await daemon.incidents.act(drill, Resolve("王五"))
        await asyncio.sleep(0.05)
    await eventually(lambda: not daemon.alarms.is_active("notify:drill_failed"), 3)
    await recorded(daemon)
    left = await daemon.store.read(lambda c: c.execute(
        "SELECT (SELECT COUNT(*) FROM notices) + (SELECT COUNT(*) FROM deliveries) + "
        "(SELECT COUNT(*) FROM unheard)").fetchone()[0])
    assert left == 0 and daemon.ctx.timers.pending("notice") == {}
    tried = len(inbox.requests)
    await asyncio.sleep(1.0)                        # three resend periods: nothing goes
    assert len(inbox.requests) == tried


async def test_a_drills_last_message_goes_though_the_drill_closes_with_it(
        tmp_path: Path, sim: Any, daemon_factory: Any, inbox: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill that says one thing and ends at once: the message is sent, not dropped by
    the close that follows it on the bus."""
    _, port = sim
    books = tmp_path / "books"
    books.mkdir()
    (books / "brief.yaml").write_text(
        "name: brief\nlabel: 简短演练\nroles: [it]\ntriggers: [{manual: true}]\nsteps:\n"
        "  - {id: tell, kind: notify, roles: [it], message: '演练结束, 请归位'}\n",
        encoding="utf-8")
    daemon = await daemon_factory(site(tmp_path, port, monkeypatch, inbox, books))
    drill = daemon.incidents.start("brief", why="演练", drill=True).id
    assert drill not in daemon.incidents.running                    # closed at once
    await eventually(lambda: "【演练】【简短演练】演练结束, 请归位" in titles(inbox), 3)
