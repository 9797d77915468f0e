"""On-call schedules: rotations with a handover time, layers by China's calendar (holidays
rest, working weekends work) and hours, overrides, gaps, and the CLI and API that answer."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config import ConfigError, load_config_text
from monitor.notify.oncall import gaps, on_call
from tests.conftest import config
from tests.fixtures import api

SH = ZoneInfo("Asia/Shanghai")
ALL_WEEK = """\
      - {name: all_week, rotation: weekly, handover: "09:00", start: 2026-11-02,
         people: [zhang_san, li_si]}
"""
REST_DAYS = """\
      - {name: rest_days, rotation: daily, handover: "09:00", start: 2026-09-01,
         people: [wang_wu], days: restdays}
"""
SITE = """\
site: {name: hq}
areas: [{name: machine_room}]
roles: [{name: it, label: IT}, {name: gm, label: 总经理}]
people:
  - {name: zhang_san, label: 张三, roles: [it]}
  - {name: li_si, label: 李四, roles: [it]}
  - {name: wang_wu, label: 王五, roles: [it]}
schedules:
  - name: it_oncall
    role: it
    layers:
      - {name: all_week, rotation: weekly, handover: "09:00", start: 2026-11-02,
         people: [zhang_san, li_si]}
      - {name: rest_days, rotation: daily, handover: "09:00", start: 2026-09-01,
         people: [wang_wu], days: restdays}
    overrides:
      - {person: wang_wu, start: "2026-12-01T09:00", end: "2026-12-02T09:00", note: 调班}
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize("when, people, source", [
    ("2026-11-02T08:59", ["li_si"], "it_oncall: layer all_week"),        # before the handover
    ("2026-11-02T09:00", ["zhang_san"], "it_oncall: layer all_week"),
    ("2026-11-09T10:00", ["li_si"], "it_oncall: layer all_week"),        # a week later
    ("2026-11-07T12:00", ["wang_wu"], "it_oncall: layer rest_days"),     # a Saturday
    ("2026-10-01T12:00", ["wang_wu"], "it_oncall: layer rest_days"),     # National Day
    ("2026-10-10T12:00", ["zhang_san"], "it_oncall: layer all_week"),    # a working Saturday
    ("2026-12-01T10:00", ["wang_wu"], "it_oncall: override"),
])
def test_who_is_on_call(when: str, people: list[str], source: str) -> None:
    cfg = load_config_text(SITE)
    found = on_call(cfg, "it", at(when))
    assert (found.people, found.source) == (people, source)


def test_a_gap_pages_everyone_holding_the_role_and_is_a_check_warning(tmp_path: Path) -> None:
    text = SITE.replace(ALL_WEEK, '''      - {name: office, rotation: weekly, start: 2026-11-02,
         people: [zhang_san, li_si], days: workdays, hours: "09:00-18:00"}
''')
    cfg = load_config_text(text)
    found = on_call(cfg, "it", at("2026-11-03T20:00"))          # a Tuesday evening
    assert found.people == ["zhang_san", "li_si", "wang_wu"]
    assert found.source == "no schedule covers this time: everyone holding the role"
    holes = gaps(cfg.schedules[0], at("2026-11-02T00:00"), days=2)
    assert [(a.strftime("%m-%d %H:%M"), b.strftime("%m-%d %H:%M")) for a, b in holes] == [
        ("11-02 00:00", "11-02 09:00"), ("11-02 18:00", "11-03 09:00"),
        ("11-03 18:00", "11-04 00:00")]
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--no-secrets",
                          str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert f"{path}:9: schedules[0]: nobody on call " in out.stderr
    assert "then everyone holding role 'it' is paged (warning)" in out.stderr


def test_hours_past_midnight_belong_to_the_evening_before() -> None:
    text = SITE.replace(REST_DAYS, '''      - {name: nights, rotation: daily, handover: "18:00",
         start: 2026-09-01, people: [wang_wu], days: workdays, hours: "18:00-09:00"}
''')
    cfg = load_config_text(text)
    assert on_call(cfg, "it", at("2026-11-07T02:00")).source == "it_oncall: layer nights"
    assert on_call(cfg, "it", at("2026-11-08T02:00")).source == "it_oncall: layer all_week"


def test_past_the_calendar_weekends_rest(tmp_path: Path) -> None:
    cfg = load_config_text(SITE)
    assert on_call(cfg, "it", at("2027-01-02T12:00")).source == "it_oncall: layer rest_days"
    assert on_call(cfg, "it", at("2027-01-04T12:00")).source == "it_oncall: layer all_week"


def test_schedule_config_errors() -> None:
    text = SITE.replace("people: [zhang_san, li_si]}", "people: [zhang_san, zhao_liu]}") \
        .replace("    role: it\n", "    role: itt\n    timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "site.yaml")
    assert str(info.value).splitlines() == [
        "site.yaml:11: schedules[0].timezone: unknown time zone 'Mars/Olympus'"]
    with pytest.raises(ConfigError) as info:
        load_config_text(text.replace("    timezone: Mars/Olympus\n", ""), "site.yaml")
    assert str(info.value).splitlines() == [
        "site.yaml:10: schedules[0].role: no role 'itt'",
        "site.yaml:13: schedules[0].layers[0].people[1]: no person 'zhao_liu'"]


def test_the_cli_and_the_api_answer(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "oncall", "it", "--at",
                          "2026-12-01T10:00", "-c", str(path)], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "TZ": "Asia/Shanghai"})
    assert out.stdout.strip() == "2026-12-01 10:00 it: 王五 (it_oncall: override)", out.stderr


async def test_the_api_answers(tmp_path: Path, daemon_factory: object) -> None:
    cfg = config(tmp_path, [], **load_config_text(SITE).model_dump(
        include={"roles", "people", "schedules"}, mode="json"))
    daemon = await daemon_factory(cfg)  # type: ignore[operator]
    async with api(daemon) as client:
        resp = await client.get("/api/v1/oncall", params={
            "role": "it", "at": at("2026-11-07T12:00").timestamp()})
        assert resp.json()["people"] == [{"name": "wang_wu", "label": "王五"}]
        assert resp.json()["source"] == "it_oncall: layer rest_days"
        assert (await client.get("/api/v1/oncall", params={"role": "x"})).status_code == 404
