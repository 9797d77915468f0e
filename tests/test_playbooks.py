"""Playbooks: the engine as a state-transition table without I/O, the static inspection with
file and line, and rehearsals of each procedure in playbooks/ on a virtual clock."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor.config.errors import ConfigError
from monitor.playbooks.check import load_playbook, load_playbook_text, load_playbooks
from monitor.playbooks.engine import (
    Ack,
    Arm,
    Cancel,
    Confirm,
    Decide,
    Done,
    Due,
    Engine,
    Entry,
    Incident,
    Notify,
    Resolve,
    Restarted,
    Run,
    Safe,
    Start,
    World,
)
from monitor.playbooks.rehearse import Line, Rehearsal, clock, load_scenario

ROOT = Path(__file__).parent.parent
REHEARSALS = ROOT / "tests" / "rehearsals"
SITE_ROLES = {"gm", "compliance", "dept_head", "deputy", "admin", "it", "tech_director",
              "property", "bank_contact"}

OUTAGE = """\
name: outage
label: 系统故障应急预案
roles: [it, gm]
triggers: [{manual: true}]
steps:
  - {id: tell_it, kind: notify, roles: [it], message: 系统故障}
  - {id: stop_batch, kind: action, command: [/usr/local/bin/stop-batch], timeout: 30s,
     unsafe: true, on_failure: tell_gm}
  - {id: gm_ok, kind: approval, role: gm, text: 启动应急方案, timeout: 20m,
     on_timeout: tell_gm, on_reject: end}
  - {id: restore, kind: checklist, items: [{id: restored, text: 系统已恢复, role: it}],
     timeout: 1h, on_timeout: tell_gm, next: end}
  - {id: tell_gm, kind: notify, roles: [gm], message: 应急处置未按时完成, next: restore}
"""


def outage(text: str = OUTAGE) -> tuple[Engine, Incident]:
    pb = load_playbook_text(text, "outage.yaml")
    return Engine(pb), Incident("i1", pb.name, "v1", "site", started=0.0)


def kinds(effects: list[Any]) -> list[str]:
    return [e.kind for e in effects if isinstance(e, Entry)]


# -- the engine, without I/O ------------------------------------------------------------------


def test_an_approval_moves_the_plan_on_and_a_refusal_ends_it() -> None:
    engine, inc = outage()
    out = engine.feed(inc, Start("手动启动"), World(0))
    assert kinds(out) == ["started", "notify", "action"]
    assert Run("stop_batch") in out and Arm("stop_batch#timeout", 30.0) in out
    out = engine.feed(inc, Done("stop_batch", True, "exit 0"), World(5))
    assert kinds(out) == ["action_ok", "approval"] and inc.step == "gm_ok"
    assert Notify("gm_ok", ("gm",), "请审批: 启动应急方案") in out
    refused = engine.feed(inc, Decide("gm_ok", "赵总", False, "先查原因"), World(60))
    assert kinds(refused) == ["rejected", "closed"] and inc.status == "closed"
    assert inc.decisions["gm_ok"] == ("赵总", False, 60)


def test_an_approval_that_never_comes_goes_the_timeout_way() -> None:
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(0))
    engine.feed(inc, Done("stop_batch", True, "exit 0"), World(1))
    out = engine.feed(inc, Due("gm_ok#timeout"), World(1201))
    assert kinds(out) == ["timeout", "notify", "checklist"]
    assert Notify("tell_gm", ("gm",), "应急处置未按时完成") in out


def test_an_action_that_hangs_times_out_and_takes_its_failure_path() -> None:
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(0))
    out = engine.feed(inc, Due("stop_batch#timeout"), World(30))
    assert kinds(out)[:2] == ["action_timeout", "notify"] and inc.actions["stop_batch"] == "timeout"
    late = engine.feed(inc, Done("stop_batch", True, "exit 0"), World(40))
    assert kinds(late) == [] and inc.actions["stop_batch"] == "timeout"  # too late: no change


def test_an_action_running_at_a_restart_is_unknown_and_never_run_twice() -> None:
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(0))
    out = engine.feed(inc, Restarted(), World(10))
    assert inc.actions["stop_batch"] == "unknown"
    assert not [e for e in out if isinstance(e, Run)]
    assert kinds(out)[0] == "action_unknown" and inc.step == "restore"   # its failure path


def test_a_drill_skips_unsafe_actions_unless_allowed() -> None:
    engine, inc = outage()
    inc.drill = True
    out = engine.feed(inc, Start("演练"), World(0))
    assert "action_skipped" in kinds(out) and not [e for e in out if isinstance(e, Run)]
    engine, inc = outage()
    inc.drill, inc.unsafe_allowed = True, True
    assert Run("stop_batch") in engine.feed(inc, Start("演练"), World(0))


def test_two_operators_confirming_one_item_the_first_counts() -> None:
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(0))
    engine.feed(inc, Done("stop_batch", False, "exit 1"), World(1))     # failure: to tell_gm
    assert inc.step == "restore"
    first = engine.feed(inc, Confirm("restored", "张三"), World(100))
    assert kinds(first) == ["confirmed", "closed"]
    second = engine.feed(inc, Confirm("restored", "李四"), World(101))
    assert second == [] and inc.checked["restored"] == ("张三", 100)    # closed: no change
    text = OUTAGE.replace("items: [{id: restored, text: 系统已恢复, role: it}]",
                          "items: [{id: restored, text: 系统已恢复, role: it}, "
                          "{id: checked, text: 数据已核对, role: it}]")
    engine, inc = outage(text)
    engine.feed(inc, Start("手动启动"), World(0))
    engine.feed(inc, Done("stop_batch", False, "exit 1"), World(1))
    engine.feed(inc, Confirm("restored", "张三"), World(100))
    again = engine.feed(inc, Confirm("restored", "李四"), World(101))
    assert [(e.kind, e.text, e.actor) for e in again if isinstance(e, Entry)] == [
        ("confirm_ignored", "系统已恢复: 已由 张三 确认", "李四")]


def test_a_confirmation_of_something_not_asked_is_refused_and_inputs_after_the_end_ignored(
        ) -> None:
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(0))
    out = engine.feed(inc, Confirm("restored", "张三"), World(1))   # restore not reached
    assert kinds(out) == ["refused"] and "restored" not in inc.checked
    engine.feed(inc, Resolve("张三"), World(2))
    assert inc.status == "closed"                     # no resolve step: by hand ends it
    assert engine.feed(inc, Ack("李四"), World(3)) == []


def test_the_clock_going_back_changes_nothing_already_decided() -> None:
    """Timers are the runtime's (monotonic); the engine takes times as given: a wall clock
    that jumps back only changes the times written on the timeline."""
    engine, inc = outage()
    engine.feed(inc, Start("手动启动"), World(1000))
    engine.feed(inc, Done("stop_batch", True, "exit 0"), World(400))     # clock went back
    out = engine.feed(inc, Decide("gm_ok", "赵总", True), World(300))
    assert inc.step == "restore" and kinds(out) == ["approved", "checklist"]


# -- static inspection -------------------------------------------------------------------------

BROKEN = """\
name: broken
label: 有问题的预案
roles: [it, cfo]
triggers: [{manual: true}]
steps:
  - {id: a, kind: notify, roles: [it, gm], message: x}
  - {id: b, kind: approval, role: it, text: y}
  - {id: c, kind: branch, when: {checked: nothing}, then: d, else: zz}
  - {id: d, kind: notify, roles: [it], message: x, next: c}
  - {id: lost, kind: notify, roles: [it], message: 没人到这里, next: end}
"""


def test_check_reports_roles_steps_waits_with_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_playbook_text(BROKEN, "broken.yaml", SITE_ROLES)
    assert str(info.value).splitlines() == [
        "broken.yaml:3: roles[1]: no role 'cfo' in the site config",
        "broken.yaml:6: steps[0].roles[1]: role 'gm' is not in the playbook's roles",
        "broken.yaml:7: steps[1]: step 'b' waits without a timeout and on_timeout: give both, "
        "so the plan goes on",
        "broken.yaml:8: steps[2]: no checklist item 'nothing'",
        "broken.yaml:8: steps[2].else: no step 'zz'"]


def test_check_reports_unreachable_steps_and_cycles() -> None:
    text = BROKEN.replace("roles: [it, cfo]", "roles: [it, gm]").replace(
        "text: y}", "text: y, timeout: 5m, on_timeout: c}").replace(
        "{checked: nothing}", "{acknowledged: true}").replace("else: zz", "else: end")
    with pytest.raises(ConfigError) as info:
        load_playbook_text(text, "broken.yaml", SITE_ROLES)
    assert str(info.value).splitlines() == [
        "broken.yaml:8: steps[2]: steps go round without waiting: c -> d -> c",
        "broken.yaml:10: steps[4]: step 'lost' is never reached"]


def test_a_spin_that_shares_a_step_with_a_waiting_loop_is_found() -> None:
    text = """\
name: spin
label: 自旋
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: b, kind: branch, when: {elapsed: 1h}, then: w, else: c}
  - {id: w, kind: wait, for: 1m, next: c}
  - {id: c, kind: branch, when: {elapsed: 2h}, then: end, else: b}
"""
    with pytest.raises(ConfigError) as info:
        load_playbook_text(text, "spin.yaml")
    assert str(info.value) == "spin.yaml:6: steps[0]: steps go round without waiting: b -> c -> b"


def test_field_errors_name_the_line() -> None:
    text = OUTAGE.replace("kind: approval", "kind: aproval").replace("timeout: 30s", "timeout: x")
    with pytest.raises(ConfigError) as info:
        load_playbook_text(text, "outage.yaml")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("outage.yaml:7: steps[1].timeout: expected a duration")
    assert lines[1].startswith("outage.yaml:9: steps[2].kind: unknown kind 'aproval'")


def test_every_shipped_playbook_passes_the_check() -> None:
    found = load_playbooks(ROOT / "playbooks", SITE_ROLES)
    assert "power_loss" in found
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "playbook", "check",
                          *sorted(str(p) for p in (ROOT / "playbooks").glob("*.yaml"))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "playbooks/power_loss.yaml: OK — 停电应急预案" in out.stdout


# -- rehearsals of the procedures --------------------------------------------------------------


def rehearse(playbook: str, scenario: str) -> list[Line]:
    return Rehearsal(load_playbook(ROOT / "playbooks" / f"{playbook}.yaml"),
                     load_scenario(REHEARSALS / f"{scenario}.yaml")).run()


def steps(lines: list[Line]) -> list[tuple[str, str, str]]:
    """(time, kind, step) of the timeline, notifications left out."""
    return [(clock(x.t), x.kind, x.step or "") for x in lines if x.what == "entry"]


def test_power_loss_short_outage() -> None:
    lines = rehearse("power_loss", "power_loss_short")
    assert steps(lines) == [
        ("+0:00:00", "started", ""), ("+0:00:00", "notify", "tell_admin"),
        ("+0:00:00", "notify", "report_gm"), ("+0:00:00", "checklist", "ask_property"),
        ("+0:00:00", "deadline", "ask_deadline"), ("+0:00:00", "notify", "short_response"),
        ("+0:00:00", "wait", "wait_mains"), ("+0:02:00", "acknowledged", ""),
        ("+0:04:00", "confirmed", "ask_property"), ("+0:04:00", "deadline_met", "ask_deadline"),
        ("+0:20:00", "resolved", "restored"), ("+0:20:00", "notify", "announce_restore"),
        ("+0:20:00", "checklist", "recovery"), ("+0:40:00", "confirmed", "recovery"),
        ("+0:45:00", "confirmed", "recovery"), ("+1:10:00", "confirmed", "recovery"),
        ("+1:10:00", "closed", "")]
    told = [(clock(x.t), x.kind) for x in lines if x.what == "notify"]
    assert told[:3] == [("+0:00:00", "admin"), ("+0:00:00", "gm,compliance,dept_head"),
                        ("+0:00:00", "admin")]


def test_power_loss_long_outage_misses_the_bank_deadline() -> None:
    lines = rehearse("power_loss", "power_loss_long")
    got = steps(lines)
    assert ("+0:10:00", "deadline_missed", "ask_deadline") in got     # asked only at 12 min
    assert ("+0:30:00", "escalated", "long_outage") in got            # 30 min: a long outage
    assert ("+0:25:00", "refused", "") in got                         # not asked yet
    assert ("+0:50:00", "confirm_ignored", "long_actions") in got     # 赵六 after 张三
    assert ("+1:00:00", "deadline_missed", "bank_deadline") in got
    assert ("+1:00:00", "deadline_missed", "long_actions_deadline") in got
    assert ("+1:15:00", "deadline_late", "long_actions_deadline") in got
    assert ("+2:01:00", "resolved", "restored") in got                # both UPSes back
    assert got[-1] == ("+6:01:00", "closed", "")
    missed = [x for x in lines if x.what == "notify" and x.step == "bank_deadline"]
    assert [(clock(x.t), x.kind) for x in missed] == [("+1:00:00", "gm,compliance")]


def test_rehearse_prints_the_timeline_and_sends_nothing() -> None:
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "playbook", "rehearse",
                          str(ROOT / "playbooks" / "power_loss.yaml"),
                          str(REHEARSALS / "power_loss_short.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("演练推演: 停电应急预案 / 短时停电 (20 分钟来电) (不发送任何消息, "
                        "不执行任何动作)")
    assert "+0:20:00  resolved         应急结束, 进入恢复阶段" in lines
    assert lines[-1] == "结果: 已结束"


def test_fire_put_out_while_initial() -> None:
    got = steps(rehearse("fire", "fire_initial"))
    assert [k for k in got if k[1] in ("escalated", "timeout", "resolved", "closed")] == [
        ("+0:25:00", "resolved", "all_clear"), ("+5:00:00", "closed", "")]
    assert ("+0:12:00", "confirmed", "report_out") in got
    assert ("+0:12:00", "branch", "out_or_major") in got
    assert not [k for k in got if k[2] == "major"]                  # never a major fire


def test_fire_declared_major_or_a_release_escalates_even_late() -> None:
    late = steps(rehearse("fire", "fire_late_major"))
    assert ("+0:10:00", "escalated", "major") in late               # before it was put out
    assert ("+0:11:00", "confirmed", "report_out") in late          # counted, not a way back
    release = steps(rehearse("fire", "fire_release"))
    assert ("+0:03:00", "escalated", "major") in release            # the agent was released


def test_fire_not_put_out_within_20_minutes_escalates() -> None:
    pb = load_playbook(ROOT / "playbooks" / "fire.yaml")
    scenario = load_scenario(REHEARSALS / "fire_release.yaml").model_copy(update={
        "inputs": load_scenario(REHEARSALS / "fire_release.yaml").inputs[:1]})
    got = steps(Rehearsal(pb, scenario).run())
    assert ("+0:20:00", "timeout", "watch") in got and ("+0:20:00", "escalated", "major") in got


def test_fire_a_second_zone_makes_it_a_major_fire() -> None:
    lines = rehearse("fire", "fire_major")
    got = steps(lines)
    assert ("+0:05:00", "escalated", "major") in got                # the second zone
    assert ("+0:20:00", "timeout", "major_actions") in got          # the bank item was late
    assert ("+0:40:00", "deadline_met", "bank_deadline") in got     # within the hour
    told = [(clock(x.t), x.kind) for x in lines if x.what == "notify" and x.step == "major"]
    assert told == [("+0:05:00", "gm,admin,deputy,bank_contact")]


def test_blocked_numbers_answered_within_30_minutes_unblocked_late() -> None:
    got = steps(rehearse("blocked_numbers", "blocked_numbers"))
    assert ("+0:12:00", "deadline_met", "response_deadline") in got
    assert ("+1:20:00", "timeout", "wait_unblock") in got           # an hour after asking
    assert [k for k in got if k[1] in ("resolved", "closed")] == [
        ("+1:40:00", "resolved", "resolved"), ("+1:40:00", "closed", "")]
    assert not [k for k in got if k[2] == "escalate_td"]           # verified in time


def test_the_general_rule_reports_at_once_and_to_the_bank_within_the_hour() -> None:
    lines = rehearse("general_report", "general_report")
    got = steps(lines)
    assert got[1] == ("+0:00:00", "notify", "report")
    assert ("+0:15:00", "deadline_missed", "ack_deadline") in got    # acknowledged at 20 min
    assert ("+0:50:00", "deadline_met", "bank_deadline") in got
    assert ("+2:00:00", "approved", "plan") in got and got[-1] == ("+5:00:00", "closed", "")
    late = [(clock(x.t), x.kind) for x in lines if x.what == "notify"
            and x.step == "ack_deadline"]
    assert late == [("+0:15:00", "dept_head")]


def test_earthquake_roll_call_by_person_names_who_did_not_answer() -> None:
    lines = rehearse("earthquake", "earthquake")
    got = steps(lines)
    assert got[1] == ("+0:00:00", "notify", "alert")
    alert = next(x for x in lines if x.what == "notify" and x.step == "alert")
    assert alert.kind == "dept_head,deputy,admin,it,gm,compliance,property"   # everyone
    asked = next(x for x in lines if x.what == "notify" and x.step == "rollcall")
    assert asked.kind == "张三,李四,王五,赵六"                    # each person, by name
    texts = [(clock(x.t), x.kind, x.text) for x in lines if x.what == "entry"]
    assert ("+0:06:00", "safe", "张三 已确认安全, 由 李四 代报") in texts
    assert ("+0:07:00", "safe_ignored", "张三: 已确认过安全") in texts
    assert ("+0:08:00", "safe_ignored", "钱总: 不在点名名单中") in texts
    assert ("+0:15:00", "rollcall_missing", "未确认安全 1 人: 赵六") in texts
    assert ("+0:20:00", "safe", "赵六 已确认安全 (超时后)") in texts   # counted late, kept
    assert ("+0:45:00", "deadline_met", "bank_deadline") in got
    assert got[-1] == ("+4:00:00", "closed", "")


def test_a_roll_call_everyone_answers_goes_on_at_once() -> None:
    pb = load_playbook(ROOT / "playbooks" / "earthquake.yaml")
    engine, inc = Engine(pb), Incident("i", "earthquake", "v", "site", 0.0)
    world = World(0.0, (), {"*": ("张三", "李四", "物业周工"), "it": ("张三",),
                            "dept_head": ("李四",), "property": ("物业周工",)})
    engine.feed(inc, Start("演练"), world)
    assert inc.step == "rollcall" and inc.rollcall == {"rollcall": {"张三": None, "李四": None}}
    engine.feed(inc, Safe("张三", "张三"), replace(world, now=60.0))
    assert inc.step == "rollcall"
    out = engine.feed(inc, Safe("李四", "李四"), replace(world, now=90.0))
    assert inc.step == "counts" and Cancel("rollcall#timeout") in out


def test_system_outage_hardware_fault_with_a_late_authorisation() -> None:
    lines = rehearse("system_outage", "system_outage_hardware")
    got = steps(lines)
    assert ("+0:40:00", "timeout", "authorise") in got              # 30 min after asking
    reminded = [(clock(x.t), x.kind) for x in lines if x.what == "notify"
                and x.step == "authorise_overdue"]
    assert reminded == [("+0:40:00", "gm,compliance,dept_head")]
    assert ("+0:45:00", "approved", "authorise") in got
    assert ("+0:45:00", "branch", "power_cause") in got and \
        ("+0:50:00", "checklist", "hardware") in got               # no power alarm: diagnose
    # the hour to tell the bank counts from the outage: the late authorisation cost it
    assert ("+1:00:00", "deadline_missed", "bank_deadline") in got
    assert ("+1:20:00", "confirmed", "inform_bank") in got
    assert ("+2:30:00", "resolved", "restored") in got              # the check came back
    assert got[-1] == ("+3:20:00", "closed", "")


def test_system_outage_caused_by_power_takes_the_power_path() -> None:
    got = steps(rehearse("system_outage", "system_outage_power"))
    assert got[0] == ("+0:03:00", "started", "")
    assert ("+0:12:00", "notify", "power_path") in got
    assert not [k for k in got if k[2] in ("diagnose", "hardware", "os_repair")]
    assert ("+1:40:00", "resolved", "restored") in got              # after the ERP is back


def test_system_outage_without_authorisation_is_handled_routinely() -> None:
    got = steps(rehearse("system_outage", "system_outage_refused"))
    assert ("+0:15:00", "rejected", "authorise") in got
    assert not [k for k in got if k[2] in ("report", "bank_deadline")]   # the plan never ran
    assert ("+0:40:00", "resolved", "restored") in got and got[-1] == ("+1:10:00", "closed", "")


def test_a_threshold_rule_named_earthquake_starts_the_procedure_at_any_level() -> None:
    pb = load_playbook(ROOT / "playbooks" / "earthquake.yaml")
    for alarm in ("earthquake", "earthquake.high", "earthquake.high_high"):
        assert any(t.alarm is not None and t.alarm.matches(
            {"alarm": alarm, "severity": "critical", "area": "", "device_class": "",
             "feed": ""}) for t in pb.triggers), alarm
    assert not any(t.alarm is not None and t.alarm.matches(
        {"alarm": "earthquakes", "severity": "critical", "area": "", "device_class": "",
         "feed": ""}) for t in pb.triggers)
