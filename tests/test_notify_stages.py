"""The notifier's stages on their own, each with an injected clock: the escalation machine
arms the next level at the clock's now plus the level's wait and pages on-call people; the
composer says how long ago an alarm was raised by its clock; routing is pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.alarms.model import Alarm, AlarmDef
from monitor.config.directory import Person
from monitor.config.model import Severity
from monitor.core.timers import Timers, name
from monitor.notify.compose import Composer, texts
from monitor.notify.escalation import Escalation
from monitor.notify.routing import route_facts
from monitor.notify.silences import Silences
from tests.conftest import config

HOOK = {"channel": "webhook", "url": {"env": "VIGIL_TEST_STAGE_HOOK"}}


def site(tmp_path: Path, monkeypatch: Any) -> Any:
    monkeypatch.setenv("VIGIL_TEST_STAGE_HOOK", "json://127.0.0.1:9/hook")
    return config(tmp_path, [], roles=[{"name": "it"}, {"name": "head"}],
                  people=[{"name": "zhang_san", "label": "张三", "roles": ["it"],
                           "contacts": [HOOK]},
                          {"name": "li_si", "label": "李四", "roles": ["head"],
                           "contacts": [HOOK]}],
                  notify={"policies": [{"name": "p", "levels": [
                      {"notify": [{"role": "it"}], "wait": 600},
                      {"notify": [{"role": "head"}], "wait": 600}]}],
                      "routes": [{"match": {"severity": ["critical"]}, "policy": "p"}]})


async def test_the_escalation_machine_keeps_time_by_its_clock(
        tmp_path: Path, monkeypatch: Any, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, monkeypatch))
    ctx, paged = replace(daemon.ctx, timers=Timers(daemon.store)), []  # timers of its own
    ctx.alarms.define(AlarmDef("fire:z1", Severity.CRITICAL, "1 号防区火警"))
    ctx.alarms.set_condition("fire:z1", True, None, 1_000.0)
    machine = Escalation(ctx, Silences(ctx, lambda ids: None),
                         lambda alarm, person: paged.append((alarm.id, person.name)),
                         clock=lambda: 1_000.0)
    machine.start("fire:z1")
    assert paged == [("fire:z1", "zhang_san")]
    assert ctx.timers.get("escalate", name("fire:z1", "p", 0, 1)) == 1_600.0  # now + the wait
    machine.stop("fire:z1")
    assert ctx.timers.pending("escalate") == {}


async def test_the_composer_says_how_long_ago_by_its_clock(
        tmp_path: Path, monkeypatch: Any, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path, monkeypatch))
    alarm = Alarm("hot", "major", "机房温度偏高 (29.5 °C, 限值 27)", active=True, acked=False,
                  raised_at=1_000.0)
    person = Person(name="zhang_san", roles=["it"])
    said = texts(Composer(daemon.ctx, clock=lambda: 1_000.0 + 5_400).alarms([alarm]), person)
    assert said["long"][0] == "【重要】机房温度偏高 (29.5 °C, 限值 27)"
    assert "(1 小时 30 分前)" in said["long"][1]


def test_routing_chooses_the_policies_by_the_facts(tmp_path: Path, monkeypatch: Any) -> None:
    cfg = site(tmp_path, monkeypatch)
    at = datetime(2026, 12, 3, 3, 0).astimezone()
    assert [p.name for p in route_facts(cfg, {"severity": "critical", "area": "",
                                              "device_class": "", "feed": "",
                                              "alarm": "x"}, at)] == ["p"]
    assert route_facts(cfg, {"severity": "minor", "area": "", "device_class": "", "feed": "",
                             "alarm": "x"}, at) == []
