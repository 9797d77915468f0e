"""The monthly alarm-system review (ISA-18.2): each measure at its boundary on made-up logs
(floods, rates, chattering and fleeting, stale alarms across the month's end, shelving, the
priority split), the month in the site's time zone, the report as HTML, CSV and PDF, and the
API and the CLI on an in-process daemon."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.alarms.model import AlarmDef
from monitor.alarms.review import (
    AlarmInfo,
    Measure,
    Period,
    Review,
    Row,
    Shelve,
    month_period,
    review_alarms,
)
from monitor.config.model import Severity
from monitor.core.credentials import hash_password
from monitor.reports.alarm_review import alarm_report
from tests.conftest import config
from tests.fixtures import TOKEN, app_of, pdf_text, served, vigil
from tests.fixtures import api as client

SHANGHAI = "Asia/Shanghai"
INFOS = {
    "comm:ups1": AlarmInfo("一号UPS 通信中断", "major", "一号机房"),
    "rule:hot": AlarmInfo("机房温度过高", "critical", "一号机房"),
    "rule:door": AlarmInfo("北门被强行打开", "minor", "北门入口"),
    "rule:leak": AlarmInfo("空调漏水", "warning", "一号机房"),
}


def at(text: str) -> float:
    """A wall-clock time in Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(SHANGHAI)).timestamp()


def month(name: str) -> Period:
    return month_period(name, SHANGHAI, at("2026-12-15 00:00"))


OCTOBER = month("2026-10")


class Log:
    """A made-up ``alarm_log``."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, alarm: str, ts: float, action: str, state: str, who: str | None = None,
            note: str | None = None) -> Log:
        self.rows.append(Row(len(self.rows) + 1, alarm, ts, action, state, who, note))
        return self

    def raised(self, alarm: str, ts: float, state: str = "active_unacknowledged") -> Log:
        return self.add(alarm, ts, "raised", state)

    def cleared(self, alarm: str, ts: float) -> Log:
        return self.add(alarm, ts, "cleared", "normal")

    def review(self, period: Period = OCTOBER, operators: int = 1) -> Review:
        return review_alarms(self.rows, period, INFOS, operators)


def measure(review: Review, key: str) -> Measure:
    return next(m for m in review.measures if m.key == key)


def many(count: int, start: float, step: float) -> Log:
    """``count`` raises of the four alarms in turn, ``step`` seconds apart."""
    log = Log()
    for i in range(count):
        log.raised(list(INFOS)[i % len(INFOS)], start + i * step)
    return log


# -- floods and rates ---------------------------------------------------------------------------

def test_exactly_ten_alarms_in_ten_minutes_is_no_flood_eleven_are() -> None:
    start = at("2026-10-04 08:00")
    ten = many(10, start, 50).review()
    assert ten.floods == []
    assert (measure(ten, "peak_10min").value, measure(ten, "peak_10min").state) == (10, "passed")
    assert measure(ten, "busy_10min").value == 0

    log = many(11, start, 50)
    (flood,) = log.review().floods
    times = [r.ts for r in log.rows]
    assert (flood.start, flood.count, flood.ongoing) == (start, 11, False)
    assert flood.end == times[6] + 600  # fewer than 5 left in the window once the 7th is out
    assert flood.alarms[0] == ("一号UPS 通信中断", 3)
    eleven = log.review()
    assert measure(eleven, "peak_10min").state == "missed"
    assert measure(eleven, "busy_10min").value > 0
    assert measure(eleven, "flood_time").state == "passed"  # 11 minutes of a month: < 1 %
    assert many(11, start, 60).review().floods == []  # 11 over exactly 10 minutes: not within
    assert log.review(operators=2).floods == []  # 5.5 per operator


def test_rates_per_operator_against_six_and_twelve_an_hour() -> None:
    hours = OCTOBER.seconds / 3600
    busy = many(int(hours * 7), OCTOBER.start, 3600 / 7)  # 7 an hour, all month
    one, two = busy.review(), busy.review(operators=2)
    assert round(measure(one, "rate_hour").value, 6) == 7
    assert [measure(one, k).state for k in ("rate_hour", "rate_day", "rate_10min")] == \
        ["manageable"] * 3
    assert [measure(two, k).state for k in ("rate_hour", "rate_day", "rate_10min")] == \
        ["passed"] * 3
    assert measure(many(int(hours * 13), OCTOBER.start, 3600 / 13).review(),
                   "rate_hour").state == "missed"
    assert measure(one, "busy_hours").value == 0  # never more than 30 in an hour


# -- chattering, fleeting ---------------------------------------------------------------------

def test_chattering_is_three_raises_within_a_minute_fleeting_clears_within_seconds() -> None:
    t = at("2026-10-07 14:00")
    log = Log()
    for i in range(3):  # 3 raises in 50 s, each back after 20 s
        log.raised("comm:ups1", t + 25 * i).cleared("comm:ups1", t + 25 * i + 20)
    for i in range(3):  # 3 raises over exactly a minute
        log.raised("rule:door", t + 30 * i).cleared("rule:door", t + 30 * i + 20)
    log.raised("rule:leak", t + 3600).cleared("rule:leak", t + 3604)  # back after 4 s
    log.raised("rule:hot", t + 7200).cleared("rule:hot", t + 7230)  # back after 30 s
    review = log.review()
    by = {a.alarm: a for a in review.alarms}
    assert (by["comm:ups1"].burst, by["comm:ups1"].chattering) == (3, True)
    assert (by["rule:door"].burst, by["rule:door"].chattering) == (2, False)
    assert [by[a].fleeting for a in ("rule:leak", "rule:hot", "rule:door")] == [1, 0, 0]
    assert (measure(review, "chattering").value, measure(review, "chattering").state) == \
        (1, "missed")
    assert (measure(review, "fleeting").value, measure(review, "fleeting").state) == \
        (1, "missed")


# -- stale ----------------------------------------------------------------------------------------

def test_stale_alarms_across_the_months_end() -> None:
    log = (Log().raised("rule:hot", at("2026-09-28 10:00"))           # all October long
           .raised("rule:door", at("2026-10-30 20:00"))               # 28 h at the end
           .raised("rule:leak", at("2026-10-31 00:00"))               # 24 h: not over
           .raised("comm:ups1", at("2026-10-10 00:00"))
           .cleared("comm:ups1", at("2026-10-11 00:30")))             # 24.5 h
    stale = {s.alarm: s for s in log.review().stale}
    assert set(stale) == {"rule:hot", "rule:door", "comm:ups1"}
    end = at("2026-11-01 00:00")
    assert (stale["rule:hot"].raised, stale["rule:hot"].cleared) == (at("2026-09-28 10:00"),
                                                                     None)
    assert stale["rule:hot"].longest == end - at("2026-09-28 10:00")
    assert stale["rule:door"].cleared is None and stale["rule:door"].longest == 28 * 3600
    assert stale["comm:ups1"].cleared == at("2026-10-11 00:30")
    assert measure(log.review(), "stale").value == 2  # never more than two on one day
    assert {s.alarm for s in log.review(month("2026-09")).stale} == {"rule:hot"}

    crowded = Log()
    for alarm in INFOS:
        crowded.raised(alarm, at("2026-09-01 00:00"))
    assert (measure(crowded.review(), "stale").value,
            measure(crowded.review(), "stale").state) == (4, "passed")
    crowded.raised("rule:extra", at("2026-09-01 00:00"))
    assert measure(crowded.review(), "stale").state == "missed"  # fewer than 5 a day


# -- shelving ---------------------------------------------------------------------------------

def test_shelves_with_who_when_how_long_and_why() -> None:
    t = at("2026-10-05 09:00")
    log = (Log().raised("rule:door", t)
           .add("rule:door", t + 300, "shelved", "shelved", "张三", "门禁维修, 物业已通知")
           .add("rule:door", t + 1800, "cleared", "shelved")
           .raised("rule:door", t + 2400, state="shelved")            # not annunciated
           .add("rule:door", t + 300 + 7200, "unshelved", "active_unacknowledged", "system",
                "shelving expired")
           .add("rule:leak", at("2026-09-30 20:00"), "shelved", "shelved", "王五", "换传感器")
           .add("rule:leak", at("2026-10-02 08:00"), "unshelved", "normal", "王五", "")
           .add("rule:hot", at("2026-09-10 08:00"), "shelved", "shelved", "王五", "x")
           .add("rule:hot", at("2026-09-11 08:00"), "unshelved", "normal", "王五", "")
           .add("comm:ups1", at("2026-10-31 22:00"), "shelved", "shelved", "李四", ""))
    review = log.review()
    assert review.shelves == [
        Shelve("rule:leak", "空调漏水", "王五", at("2026-09-30 20:00"), at("2026-10-02 08:00"),
               "王五", "换传感器"),
        Shelve("rule:door", "北门被强行打开", "张三", t + 300, t + 7500, "system",
               "门禁维修, 物业已通知"),
        Shelve("comm:ups1", "一号UPS 通信中断", "李四", at("2026-10-31 22:00"), None, None, "")]
    assert (review.annunciated, review.not_annunciated) == (1, 1)
    assert (measure(review, "unexplained_shelves").value,
            measure(review, "unexplained_shelves").state) == (1, "missed")


# -- priorities, Vigil's own alarms -------------------------------------------------------------

def test_priority_split_and_vigils_own_alarms_left_out() -> None:
    t = at("2026-10-12 10:00")
    log = Log()
    for i, alarm in enumerate(["rule:hot"] + ["comm:ups1"] * 3 + ["rule:door"] * 16):
        log.raised(alarm, t + 3600 * i).cleared(alarm, t + 3600 * i + 60)
    log.raised("store:write_failed", t).raised("notify:failed", t + 10)
    review = log.review()
    assert (review.annunciated, review.system) == (20, 2)
    assert "store:write_failed" not in {a.alarm for a in review.alarms}
    assert [(measure(review, k).value, measure(review, k).state) for k in
            ("priority_high", "priority_medium", "priority_low")] == \
        [(5, "passed"), (15, "passed"), (80, "passed")]
    log.raised("rule:hot", t + 3600 * 30)
    assert measure(log.review(), "priority_high").state == "missed"
    top = log.review().top
    assert (top[0].label, top[0].raised, top[0].bad_actor) == ("北门被强行打开", 16, True)


# -- the period -----------------------------------------------------------------------------------

def test_the_month_is_the_sites_in_asia_shanghai() -> None:
    assert OCTOBER.start == datetime(2026, 9, 30, 16, tzinfo=UTC).timestamp()
    log = (Log().raised("rule:hot", at("2026-09-30 23:59:59"))
           .raised("rule:door", at("2026-10-01 00:00"))
           .raised("rule:leak", at("2026-10-31 23:59:59"))
           .raised("comm:ups1", at("2026-11-01 00:00")))
    assert log.review().annunciated == 2
    # 00:30 on November 1 in Shanghai is still October 31 in UTC: the month before is October
    assert month_period(None, SHANGHAI, at("2026-11-01 00:30")).month == "2026-10"
    assert month_period(None, SHANGHAI, at("2026-10-31 23:30")).month == "2026-09"
    assert month_period(None, SHANGHAI, at("2026-01-05 00:00")).month == "2025-12"
    running = month_period("2026-11", SHANGHAI, at("2026-11-15 12:00"))
    assert (running.until, running.end) == (at("2026-11-15 12:00"), at("2026-12-01 00:00"))
    for bad in ("2026-13", "2026-1", "26-10", "2026-10-01", "1969-12"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_period(bad, SHANGHAI, at("2026-11-15 12:00"))
    with pytest.raises(ValueError, match="has not begun"):
        month_period("2026-12", SHANGHAI, at("2026-11-15 12:00"))


# -- the report ---------------------------------------------------------------------------------

def eventful() -> Review:
    """A month with a flood, a chattering alarm, a stale one and a shelve."""
    log = many(11, at("2026-10-04 08:00"), 20)
    t = at("2026-10-07 14:00")
    for i in range(3):
        log.raised("comm:ups1", t + 10 * i).cleared("comm:ups1", t + 10 * i + 5)
    log.raised("rule:hot", at("2026-09-28 10:00"))
    log.add("rule:door", t, "shelved", "shelved", "张三", "门禁维修")
    return log.review()


def test_the_html_says_it_in_chinese_with_labels_not_ids() -> None:
    html = alarm_report(eventful(), "html", "zh-CN", "测试园区").decode()
    for words in ("告警系统月度评估 2026-10", "测试园区", "一号UPS 通信中断", "一号机房",
                  "机房温度过高", "北门被强行打开", "张三", "门禁维修", "未达标", "达标",
                  "期末仍在报警", "紧急", "重要", "告警泛滥", "频繁告警", "2026-10-04 08:00"):
        assert words in html, words
    for ident in ("comm:ups1", "rule:hot", "rule:door", "critical", "active_unacknowledged"):
        assert ident not in html, ident
    english = alarm_report(eventful(), "html", "en", "Test park").decode()
    for words in ("Alarm system review 2026-10", "missed", "still active at the end",
                  "Alarm floods", "一号UPS 通信中断", "critical"):
        assert words in english, words


def test_the_csv_is_the_per_alarm_table_with_a_bom() -> None:
    data = alarm_report(eventful(), "csv", "zh-CN", "测试园区")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:5] == ["告警", "区域", "优先级", "次数", "占比"]
    by = {row[0]: row for row in rows[1:]}
    assert by["一号UPS 通信中断"][1:4] == ["一号机房", "重要", "6"]  # 3 in the flood, 3 chattering
    assert by["机房温度过高"][-1] == "是"  # stale


def test_the_pdf_is_a_pdf_with_the_chinese_labels() -> None:
    data = alarm_report(eventful(), "pdf", "zh-CN", "测试园区")
    assert data.startswith(b"%PDF-") and set("一号通信中断机房温度过高") <= pdf_text(data)


# -- API and CLI on a daemon ---------------------------------------------------------------------

async def alarm_history(daemon: Any) -> None:
    """Through the daemon's alarm manager: a hot room since February 20 2025 never cleared, and
    a door that comes and goes 11 times in 4 minutes on March 3."""
    alarms = daemon.ctx.alarms
    alarms.define(AlarmDef("rule:hot", Severity.CRITICAL, "机房温度过高"))
    alarms.define(AlarmDef("rule:door", Severity.MINOR, "北门被强行打开"))
    alarms.set_condition("rule:hot", True, 31.5, now=at("2025-02-20 10:00"))
    t = at("2025-03-03 09:00")
    for i in range(11):
        alarms.set_condition("rule:door", True, 1, now=t + 20 * i)
        alarms.set_condition("rule:door", False, 0, now=t + 20 * i + 5)
    await daemon.store.committed()


@pytest.fixture
async def daemon(tmp_path: Path, daemon_factory: Any) -> Any:
    cfg = config(tmp_path, [], people=[{"name": "zhang_san", "label": "张三",
                                        "credential": hash_password("review-password-2")}])
    made = await daemon_factory(cfg)
    await alarm_history(made)
    return made


async def test_the_api_reviews_a_month_in_every_format(daemon: Any) -> None:
    url = "/api/v1/reports/alarms"
    async with client(daemon) as api:
        got = await api.get(url, params={"month": "2025-03"})
        assert got.status_code == 200, got.text
        review = got.json()
        assert (review["period"]["month"], review["annunciated"]) == ("2025-03", 11)
        assert [(f["count"], f["alarms"]) for f in review["floods"]] == \
            [(11, [["北门被强行打开", 11]])]
        assert [(s["label"], s["raised"], s["cleared"]) for s in review["stale"]] == \
            [("机房温度过高", at("2025-02-20 10:00"), None)]
        states = {m["key"]: m["state"] for m in review["measures"]}
        assert (states["chattering"], states["stale"], states["peak_10min"]) == \
            ("missed", "passed", "missed")
        html = await api.get(url, params={"month": "2025-03", "format": "html"})
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "北门被强行打开" in html.text and "rule:door" not in html.text
        table = await api.get(url, params={"month": "2025-03", "format": "csv", "lang": "en"})
        assert table.headers["content-disposition"] == \
            'attachment; filename="alarm-review-2025-03.csv"'
        assert next(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))[0] == "Alarm"
        paper = await api.get(url, params={"month": "2025-03", "format": "pdf"})
        assert paper.content.startswith(b"%PDF-")
        for bad in ({"month": "2025-13"}, {"month": "2999-01"}, {"month": "March"},
                    {"operators": "0"}, {"format": "xml"}, {"lang": "fr"}):
            assert (await api.get(url, params=bad)).status_code == 422, bad
    async with client(daemon, token=None) as anon:
        assert (await anon.get(url)).status_code == 401
        person = await anon.get(url, params={"month": "2025-03"},
                                auth=("zhang_san", "review-password-2"))  # a person may read
        assert person.status_code == 200 and person.json()["annunciated"] == 11


async def test_the_cli_prints_the_measures_and_writes_the_report(daemon: Any,
                                                                 tmp_path: Path) -> None:
    async with served(app_of(daemon)) as url:
        where = ("--url", url, "--token", TOKEN)
        code, out, err = await vigil("report", "alarms", "--month", "2025-03", *where)
        assert code == 0, err
        text = out.decode()
        assert text.startswith("告警系统月度评估 2025-03") and "报警次数 11" in text
        assert "抖动告警 (1 分钟内 3 次以上): 1 个 — 目标 0 个 — 未达标" in text
        table = tmp_path / "review.csv"
        code, out, err = await vigil("report", "alarms", "--month", "2025-03", "--operators",
                                     "2", "--format", "csv", "-o", str(table), *where)
        assert code == 0, err
        assert table.read_bytes().startswith("\ufeff告警,区域".encode())
        code, out, err = await vigil("report", "alarms", "--month", "2025-13", *where)
        assert code == 2 and "HTTP 422" in err and "month" in err
