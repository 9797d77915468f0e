"""The management review of incidents and drills: the measures of made incidents (times to
acknowledge, act and resolve; targets passed, missed, late, open, void; steps; roles), a
missed deadline met late on the timeline, the report as HTML, CSV and PDF in both languages,
the export API and the drill comparison on an in-process daemon, and the CLI against it."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.config import SiteConfig
from monitor.core.credentials import hash_password
from monitor.playbooks.check import load_playbook, load_playbook_text
from monitor.playbooks.engine import (
    Ack,
    Confirm,
    Decide,
    Due,
    Engine,
    Entry,
    Incident,
    Input,
    Note,
    Resolve,
    Start,
    World,
)
from monitor.playbooks.model import ChecklistStep
from monitor.playbooks.rehearse import Rehearsal, clock, load_scenario
from monitor.playbooks.review import Review, Row, Target, passed, review
from monitor.reports.incident import Names, drill_report, incident_report, local_time
from tests.conftest import config
from tests.fixtures import TOKEN, app_of, client_of, pdf_text, served, vigil

ROOT = Path(__file__).parent.parent
T0 = 1_767_240_000.0
"""The made incidents' start (2026-01-01, 04:00 UTC)."""

OUTAGE = """\
name: review_outage
label: 系统故障应急预案
roles: [it, gm]
triggers: [{manual: true}]
ack_within: 5m
steps:
  - {id: tell_it, kind: notify, alias: 通知 IT, roles: [it], message: 业务系统故障，请立即排查}
  - {id: ack_deadline, kind: deadline, alias: 五分钟内响应, target: 5 分钟内响应,
     within: 5m, met: {acknowledged: true}}
  - {id: report_deadline, kind: deadline, alias: 十分钟内报告, target: 10 分钟内报告总经理,
     within: 10m, met: {checked: gm_told}, escalate: [gm]}
  - {id: bank_deadline, kind: deadline, alias: 两小时内报告银行, target: 两小时内报告委托银行,
     within: 2h, met: {checked: bank_told}}
  - {id: reports, kind: checklist, alias: 报告, blocking: false,
     items: [{id: gm_told, text: 已报告总经理, role: it},
             {id: bank_told, text: 已报告委托银行, role: it}]}
  - {id: gm_ok, kind: approval, alias: 总经理审批, role: gm, text: 启用备用系统, timeout: 20m,
     on_timeout: remind_gm, next: all_clear}
  - {id: remind_gm, kind: notify, alias: 提醒总经理, roles: [gm], message: 请尽快审批,
     next: all_clear}
  - {id: all_clear, kind: resolve, alias: 系统恢复}
  - {id: wrap_up, kind: notify, alias: 复盘通知, roles: [it, gm], message: 请复盘}
"""
NAMES = Names({"it": "信息技术部", "gm": "总经理"}, {})
GOOD = [(180, Ack("张三")), (400, Decide("gm_ok", "赵总", True, "同意")),
        (600, Due("report_deadline#deadline")), (900, Confirm("gm_told", "张三"))]
"""Acknowledged after 3 minutes, approved at once, the GM told 5 minutes late."""
SLOW = [(300, Due("ack_deadline#deadline")), (600, Due("report_deadline#deadline")),
        (1200, Due("gm_ok#timeout")), (1500, Ack("张三"))]
"""Acknowledged only after 25 minutes, the approval never given."""


def made(inputs: list[tuple[float, Input]], now: float, drill: bool = False,
         script: list[dict[str, Any]] | None = None) -> Review:
    """An incident of OUTAGE fed ``inputs`` (seconds after T0), reviewed at T0 + ``now``;
    ``script``: a scripted drill's."""
    pb = load_playbook_text(OUTAGE, "review_outage.yaml")
    engine = Engine(pb)
    inc = Incident(f"i{len(inputs)}-{now:g}", pb.name, "v1", "site", T0, drill=drill,
                   script=script or [])
    rows = []
    for t, inp in [(0.0, Start("手动启动 (王五)")), *inputs]:
        rows += [Row(e.ts, e.kind, e.step, e.actor, e.text)
                 for e in engine.feed(inc, inp, World(T0 + t)) if isinstance(e, Entry)]
    return review(inc, rows, pb, T0 + now)


def targets(r: Review) -> dict[str, Target]:
    return {t.key: t for t in r.targets}


# -- measures, without I/O -------------------------------------------------------------------


def test_acknowledged_after_three_minutes_a_deadline_met_one_late_one_open() -> None:
    r = made(GOOD, now=1000)
    assert (r.acknowledged, r.first_action, r.resolution, r.end) == (180, 400, None, None)
    assert r.first_action_row is not None and r.first_action_row.actor == "赵总"
    got = {k: (t.state, t.late) for k, t in targets(r).items()}
    assert got == {"ack_within": ("passed", None), "ack_deadline": ("passed", None),
                   "report_deadline": ("missed", 300), "bank_deadline": ("open", None),
                   "gm_ok": ("passed", None)}
    assert targets(r)["report_deadline"].done == T0 + 900
    steps = {s.step: s for s in r.steps}
    assert (steps["gm_ok"].entered, steps["gm_ok"].done, steps["gm_ok"].outcome,
            steps["gm_ok"].who) == (T0, T0 + 400, "approved", ("赵总",))
    assert steps["reports"].outcome == "waiting"         # the bank item is still open
    assert steps["all_clear"].outcome == "waiting" and "remind_gm" not in steps
    roles = {x.role: (x.asked, x.answered, x.average, x.people) for x in r.roles}
    assert roles == {"it": (2, 1, 900, ("张三",)), "gm": (1, 1, 400, ("赵总",))}


def test_what_a_drills_script_did_is_the_scripts_and_counts_for_no_one() -> None:
    """The script acknowledges and approves in people's place; 张三 himself confirms. Only
    张三's confirmation counts as people's performance."""
    from monitor.playbooks.rehearse import Step, person_input

    script = [Step(at=180, ack="张三"), Step(at=400, approve="gm_ok", who="赵总")]
    inputs = [*((s.at, person_input(s, on_behalf=True)) for s in script),
              (600, Due("report_deadline#deadline")), (900, Confirm("gm_told", "张三"))]
    r = made(inputs, now=1000, drill=True, script=[s.model_dump(by_alias=True,
                                                                exclude_none=True)
                                                   for s in script])
    assert (r.acknowledged, r.first_action) == (None, 900)
    got = {k: t.state for k, t in targets(r).items()}
    assert got == {"ack_within": "scripted", "ack_deadline": "scripted",
                   "report_deadline": "missed", "bank_deadline": "open", "gm_ok": "scripted"}
    assert {s.step: s.who for s in r.steps}["gm_ok"] == ("演练脚本 (代 赵总)",)
    assert [(x.role, x.asked, x.answered, x.people) for x in r.roles] == [
        ("it", 2, 1, ("张三",))]                           # the GM answered nothing himself
    page = incident_report(r, "html", "zh-CN", NAMES).decode()
    assert "演练脚本 (代 赵总)" in page and "脚本代办, 不计入" in page
    assert passed(r) == (0, 1)                             # one judged: the late report
    typed = made(inputs, now=1000)          # a real incident: a name is only a name
    assert typed.acknowledged == 180 and targets(typed)["gm_ok"].state == "passed"


WAITS = """\
name: mains
label: 停电应急预案
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: tell, kind: notify, alias: 通知, roles: [it], message: 市电中断}
  - {id: wait_mains, kind: wait, alias: 等待市电恢复, until: {no_alarm: {alarm: ["power:"]}},
     timeout: 30m, on_timeout: long_outage}
  - {id: long_outage, kind: notify, alias: 长时间停电处置, roles: [it], message: 转入长时间停电处置}
"""


def test_the_report_names_the_site_its_time_zone_designed_switches_and_each_message(
        ) -> None:
    pb = load_playbook_text(WAITS, "mains.yaml")
    inc = Incident("i-mains", pb.name, "v1", "site", T0)
    engine = Engine(pb)
    outage = ({"alarm": "power:ups_a", "severity": "major", "area": "machine_room",
               "device_class": "ups", "feed": "ups_a"},)
    rows = [Row(e.ts, e.kind, e.step, e.actor, e.text)
            for t, inp in [(0.0, Start("UPS 电池供电")), (1800.0, Due("wait_mains#timeout"))]
            for e in engine.feed(inc, inp, World(T0 + t, outage)) if isinstance(e, Entry)]
    rows.append(Row(T0 + 1, "delivered", "tell", "张三", "wecom | 【停电应急预案】市电中断"))
    r = review(inc, sorted(rows), pb, T0 + 2000)
    names = Names({"it": "信息技术部"}, {}, "总部大楼", "Asia/Shanghai")
    page = incident_report(r, "html", "zh-CN", names).decode()
    assert "总部大楼" in page and "均为站点时间, Asia/Shanghai (UTC+08:00)" in page
    assert "按预案设计转到 长时间停电处置 (不是失误)" in page and "按预案转入" in page
    assert "超时" not in page
    table = list(csv.reader(io.StringIO(incident_report(r, "csv", "zh-CN", names)
                                        .decode("utf-8-sig"))))
    assert [row[1:] for row in table if row[3] == "消息送达"] == [
        ["张三", "通知", "消息送达", "企业微信 — 【停电应急预案】市电中断"]]
    english = incident_report(r, "html", "en", names).decode()
    assert "time, Asia/Shanghai (UTC+08:00)" in english and "not a failure" in english


def test_a_missed_deadline_met_later_is_on_the_timeline_with_how_late() -> None:
    r = made(GOOD, now=1000)
    late = [(x.ts - T0, x.step, x.text) for x in r.timeline if x.kind == "deadline_late"]
    assert late == [(900, "report_deadline", "迟到 5 分钟 达成: 10 分钟内报告总经理")]
    lines = Rehearsal(load_playbook(ROOT / "playbooks" / "power_loss.yaml"),
                      load_scenario(ROOT / "tests" / "rehearsals" / "power_loss_long.yaml")).run()
    got = [(clock(x.t), x.kind, x.step) for x in lines if x.kind.startswith("deadline_")]
    assert got[:2] == [("+0:10:00", "deadline_missed", "ask_deadline"),
                       ("+0:12:00", "deadline_late", "ask_deadline")]   # asked at 12 min


def test_resolved_by_hand_a_deadline_not_yet_due_is_not_judged() -> None:
    r = made([*GOOD, (1200, Resolve("李四"))], now=5000)
    assert (r.resolution, r.end, r.incident.status) == (1200, T0 + 1200, "closed")
    assert targets(r)["bank_deadline"].state == "void"
    resolve = next(s for s in r.steps if s.step == "all_clear")
    assert (resolve.outcome, resolve.who, resolve.done) == ("resolved", ("李四",), T0 + 1200)


def test_never_acknowledged_in_time_and_an_approval_that_never_came() -> None:
    r = made(SLOW, now=1600)
    got = {k: (t.state, t.late) for k, t in targets(r).items()}
    assert got["ack_within"] == ("missed", 1200)                 # 25 minutes, 5 allowed
    assert got["ack_deadline"] == ("missed", 1200)               # met late when acknowledged
    assert got["gm_ok"] == ("missed", None) and got["report_deadline"] == ("missed", None)
    assert r.first_action is None
    assert next(s for s in r.steps if s.step == "gm_ok").outcome == "timeout"
    assert {x.role: (x.asked, x.answered) for x in r.roles} == {"it": (2, 0), "gm": (1, 0)}


def test_a_roll_call_is_a_target_and_its_lines_are_said_in_both_languages() -> None:
    pb = load_playbook(ROOT / "playbooks" / "earthquake.yaml")
    rehearsal = Rehearsal(pb, load_scenario(ROOT / "tests" / "rehearsals" / "earthquake.yaml"))
    lines = rehearsal.run()
    assert rehearsal.incident is not None
    r = review(rehearsal.incident, [Row(x.t, x.kind, x.step, x.actor, x.text) for x in lines
                                    if x.what == "entry"], pb, lines[-1].t)
    roll = targets(r)["rollcall"]
    assert (roll.what, roll.state, roll.late) == ("timeout", "missed", 300)  # 赵六 at 20 min
    said = {}
    for language in ("zh-CN", "en"):
        data = incident_report(r, "csv", language, NAMES).decode("utf-8-sig")
        said[language] = [row[3:] for row in csv.reader(io.StringIO(data))
                          if row[2] == "人员点名 (每人确认安全)" or row[1] in ("张三", "钱总")]
    assert said["zh-CN"][1:] == [
        ["确认安全", "李四"], ["确认安全", "王五"], ["确认安全", "张三, 由 李四 代报"],
        ["安全确认未计入", "张三: 已确认过安全"], ["安全确认未计入", "钱总: 不在点名名单中"],
        ["超时", "超过 15 分钟"], ["未确认安全", "1 人: 赵六"], ["确认安全", "赵六 (超时后)"],
        ["已确认", "机房已检查 (无电气火灾)"], ["已确认", "已检查系统和数据"]]
    assert said["zh-CN"][0][1].startswith("点名 4 人: 地震疏散点名")
    assert said["en"][3:8] == [
        ["reported safe", "张三, reported by 李四"],
        ["safe report not counted", "张三: already reported safe"],
        ["safe report not counted", "钱总: not on the roll"],
        ["timed out", "over 15 min"], ["not reported safe", "1: 赵六"]]


# -- the report ---------------------------------------------------------------------------------


def test_the_html_report_in_chinese_has_labels_and_verdicts_not_ids() -> None:
    r = made(GOOD, now=1000, drill=True)
    html = incident_report(r, "html", "zh-CN", NAMES).decode()
    assert "【演练】系统故障应急预案" in html
    for words in ("达标", "未达标", "未到期", "迟到 5 分钟", "3 分钟 (张三)", "信息技术部",
                  "总经理审批", "通知 IT", "已报告总经理", "手动启动 (王五)"):
        assert words in html, words
    ids = {s.id for s in r.playbook.steps} | {i.id for s in r.playbook.steps
                                             if isinstance(s, ChecklistStep) for i in s.items}
    assert not [i for i in ids if i in html]
    assert local_time(T0 + 180) in html                           # when it was acknowledged
    english = incident_report(r, "html", "en", NAMES).decode()
    assert "[DRILL] 系统故障应急预案" in english and "Incident report" in english
    assert "passed" in english and "missed" in english and "5 min late" in english
    assert not [w for w in ("达标", "处置中", "确认用时", "迟到") if w in english]


def test_the_csv_has_a_bom_and_one_row_per_timeline_line() -> None:
    r = made(GOOD, now=1000)
    data = incident_report(r, "csv", "zh-CN", NAMES)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["时间", "人员", "步骤", "事件", "内容"]
    assert len(rows) == len(r.timeline) + 1
    assert [row[1:] for row in rows if row[1] == "张三"] == [
        ["张三", "", "确认事件", ""], ["张三", "报告", "已确认", "已报告总经理"]]
    assert ["", "十分钟内报告", "目标迟到达成", "10 分钟内报告总经理 (迟到 5 分钟)"] in [
        row[1:] for row in rows]


def test_csv_cells_a_spreadsheet_would_run_are_kept_as_text() -> None:
    """An operator's note that starts like a formula opens as the text it is."""
    notes = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+1-1", "-2+3", "@SUM(A1)",
             "\t=1"]
    r = made([*GOOD[:1], *((300 + n, Note("张三", text)) for n, text in enumerate(notes))],
             now=1000)
    rows = list(csv.reader(io.StringIO(incident_report(r, "csv", "zh-CN", NAMES)
                                       .decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    for text in notes:
        assert "'" + text in cells and text not in cells, text
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or c.startswith("\t=")]


def test_the_pdf_is_a_pdf_with_the_chinese_text() -> None:
    data = incident_report(made(GOOD, now=1000), "pdf", "zh-CN", NAMES)
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    assert set("系统故障应急预案未达标迟到信息技术部") <= pdf_text(data)


def test_drills_side_by_side_better_or_worse_than_the_run_before() -> None:
    runs = [made(SLOW, now=1600, drill=True), made(GOOD, now=1000, drill=True)]
    runs[1].incident.started = T0 + 86400        # a day later
    data = drill_report(runs, "csv", "zh-CN", NAMES)
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(data.decode("utf-8-sig")))}
    assert rows["确认用时"] == ["25 分钟", "3 分钟 (较上次更好)"]
    assert rows["首次处置用时"] == ["无人处置", "6 分钟 40 秒 (较上次更好)"]
    assert rows["5 分钟内确认事件"] == ["未达标 (迟到 20 分钟)", "达标 (较上次更好)"]
    assert rows["10 分钟内报告总经理"] == ["未达标", "未达标 (迟到 5 分钟) (较上次更好)"]
    assert rows["两小时内报告委托银行"] == ["未到期", "未到期 (与上次持平)"]
    assert rows["达标目标"] == ["0 / 4", "3 / 4 (较上次更好)"]
    worse = drill_report(runs[::-1], "html", "en", NAMES).decode()
    assert "worse than before" in worse and "Drill comparison: 系统故障应急预案" in worse


# -- the API and the CLI on a running daemon ----------------------------------------------------

PASSWORD = "review-password-1"


@pytest.fixture(scope="module")
def credential() -> str:
    return hash_password(PASSWORD)


def site(tmp_path: Path, credential: str) -> SiteConfig:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "review_outage.yaml").write_text(OUTAGE, encoding="utf-8")
    return config(tmp_path, [], playbooks=str(books),
                  roles=[{"name": "it", "label": "信息技术部"}, {"name": "gm", "label": "总经理"}],
                  people=[{"name": "zhang_san", "label": "张三", "roles": ["it", "gm"],
                           "credential": credential,
                           "contacts": [{"channel": "inbox", "url": "inbox://zhang_san"}]}])


async def post(client: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    got = await client.post(f"/api/v1/{path}", json={"who": "张三", **body})
    assert got.status_code == 200, got.text
    result: dict[str, Any] = got.json()
    return result


async def drill(client: httpx.AsyncClient, *, approve: bool) -> str:
    """A drill of review_outage run to its end; approved (and the GM told) or not."""
    iid = str((await post(client, "incidents", playbook="review_outage", drill=True))["id"])
    await post(client, f"incidents/{iid}/acknowledge")
    if approve:
        await post(client, f"incidents/{iid}/confirm", item="gm_told")
        await post(client, f"incidents/{iid}/decide", step="gm_ok", approve=True)
    assert (await post(client, f"incidents/{iid}/resolve"))["status"] == "closed"
    return iid


async def test_the_export_api(tmp_path: Path, daemon_factory: Any, credential: str) -> None:
    app = app_of(await daemon_factory(site(tmp_path, credential)))
    async with client_of(app) as client:
        iid = str((await post(client, "incidents", playbook="review_outage"))["id"])
        await post(client, f"incidents/{iid}/acknowledge")
        await post(client, f"incidents/{iid}/confirm", item="gm_told")
        url = f"/api/v1/incidents/{iid}/export"
        html = await client.get(url)
        assert html.status_code == 200
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert html.headers["content-disposition"] == f'inline; filename="{iid}.html"'
        for words in ("系统故障应急预案", "真实事件", "处置中", "达标", "未到期", "信息技术部",
                      "张三"):
            assert words in html.text, words
        table = await client.get(url, params={"format": "csv", "lang": "en"})
        assert table.headers["content-type"] == "text/csv; charset=utf-8"
        assert table.headers["content-disposition"] == f'attachment; filename="{iid}.csv"'
        rows = list(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))
        assert table.content.startswith(b"\xef\xbb\xbf") and rows[0][0] == "Time"
        assert [r[3] for r in rows[1:3]] == ["started", "notified"]
        assert ["张三", "报告", "confirmed", "已报告总经理"] in [r[1:] for r in rows]
        paper = await client.get(url, params={"format": "pdf"})
        assert paper.headers["content-type"] == "application/pdf"
        assert paper.content.startswith(b"%PDF-") and set("系统故障应急预案") <= pdf_text(
            paper.content)
        assert (await client.get("/api/v1/incidents/nothing-here/export")).status_code == 404
        odd = await client.post("/api/v1/incidents", json={   # a scope is an area's name
            "playbook": "review_outage", "scope": '机房 "A"', "who": "王五"})
        assert odd.status_code == 422
        assert (await client.get(url, params={"format": "xml"})).status_code == 422
        assert (await client.get(url, params={"lang": "fr"})).status_code == 422
    async with client_of(app, token=None) as anon:
        assert (await anon.get(url)).status_code == 401
        person = await anon.get(url, auth=("zhang_san", PASSWORD))    # a person may read it
        assert person.status_code == 200 and "系统故障应急预案" in person.text


async def test_the_drill_report_api(tmp_path: Path, daemon_factory: Any,
                                    credential: str) -> None:
    async with client_of(app_of(await daemon_factory(site(tmp_path, credential)))) as client:
        first, second = await drill(client, approve=False), await drill(client, approve=True)
        await post(client, "incidents", playbook="review_outage")     # real: not a run
        got = await client.get("/api/v1/drills/report",
                               params={"playbook": "review_outage", "format": "csv"})
        assert got.status_code == 200, got.text
        assert got.headers["content-disposition"] == \
            'attachment; filename="drills-review_outage.csv"'
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert [c.split(" ")[:2] for c in rows[0][1:]] == [["演练", "1"], ["演练", "2"]]
        by = {row[0]: row[1:] for row in rows}
        assert by["总经理审批: 20 分钟内完成"] == ["未判定", "达标 (较上次更好)"]
        assert by["状态"] == ["已结束", "已结束"]
        html = await client.get("/api/v1/drills/report", params={"playbook": "review_outage"})
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "演练对比报告: 系统故障应急预案" in html.text
        assert first not in html.text and second not in html.text
        for playbook, status in (("power_loss", 404), ("../etc", 422)):
            nothing = await client.get("/api/v1/drills/report", params={"playbook": playbook})
            assert nothing.status_code == status


async def test_the_cli_exports_an_incident_and_a_drill_report(
        tmp_path: Path, daemon_factory: Any, credential: str) -> None:
    app = app_of(await daemon_factory(site(tmp_path, credential)))
    async with client_of(app) as client:
        iid = await drill(client, approve=True)
    async with served(app) as url:
        where = ("--url", url, "--token", TOKEN)
        code, out, err = await vigil("incident", "export", iid, *where)
        assert code == 0, err
        assert out.startswith(b"<!doctype html>") and "【演练】系统故障应急预案" in out.decode()
        paper = tmp_path / "report.pdf"
        code, out, err = await vigil("incident", "export", iid, "--format", "pdf", "--lang",
                                     "en", "-o", str(paper), *where)
        assert code == 0, err
        assert paper.read_bytes().startswith(b"%PDF-") and str(paper) in out.decode()
        code, out, err = await vigil("incident", "export", iid, "--format", "pdf", *where)
        assert (code, out) == (2, b"")
        assert err == "vigil: a PDF goes to a file: give -o FILE\n"
        code, out, err = await vigil("drill", "report", "review_outage", "--format", "csv",
                                     *where)
        assert code == 0, err
        assert out.startswith(b"\xef\xbb\xbf") and "演练 1" in out.decode()
        code, out, err = await vigil("incident", "export", "nothing-here", *where)
        assert code == 2 and err == "vigil: HTTP 404: no incident 'nothing-here'\n"
