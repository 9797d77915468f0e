"""The playbook engine: an incident's state and what each input does to it, without I/O.

``Engine.feed`` takes an incident, an input (started, a timer came due, the site changed, an
acknowledgement, a checklist confirmation, an approval, an action's result, a resolution by
hand, a note) and a snapshot of the site, changes the incident, and returns effects: people
to notify, timers to arm or cancel, actions to run, and timeline entries. The runtime carries
them out; rehearsals and tests read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.playbooks.model import (
    END,
    ActionStep,
    AnyStep,
    ApprovalStep,
    BranchStep,
    ChecklistItem,
    ChecklistStep,
    Condition,
    DeadlineStep,
    EscalateStep,
    NotifyStep,
    Playbook,
    ResolveStep,
    RollCallStep,
    WaitStep,
)
from monitor.words.text import spoken_duration

MAX_STEPS = 1000
"""Transitions one input may cause; more means a cycle without a wait (``vigil playbook
check`` reports those)."""


@dataclass
class Incident:
    """One run of a playbook: what the path has reached and what people have done. Plain
    data, stored as JSON."""

    id: str
    playbook: str
    version: str
    scope: str
    started: float
    drill: bool = False
    unsafe_allowed: bool = False
    status: str = "running"
    """running, recovery (resolved: the steps after the resolve step), closed."""
    step: str | None = None
    level: str = ""
    reached: list[str] = field(default_factory=list)
    acked: tuple[str, float] | None = None
    checked: dict[str, tuple[str, float]] = field(default_factory=dict)
    decisions: dict[str, tuple[str, bool, float]] = field(default_factory=dict)
    deadlines: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    """Action step -> running, ok, failed, timeout, skipped, unknown."""
    resolved: tuple[str, float] | None = None
    links: list[str] = field(default_factory=list)
    """Linked incidents: what caused this one, or what it caused."""
    cause: str = ""
    """What started it (an alarm and where, an event, by whom), said in every message."""
    rollcall: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Roll-call step -> person -> when they said they are safe (None: not yet)."""
    script: list[dict[str, Any]] = field(default_factory=list)
    """A scripted drill's inputs (``{at, raise|clear|ack|confirm|...}``), fed at their times."""
    scripted: dict[str, dict[str, str]] = field(default_factory=dict)
    """A scripted drill's alarms now active (its world instead of the site's alarms)."""


# -- the site as the engine sees it, and what comes in --------------------------------------

@dataclass(frozen=True)
class World:
    now: float
    active: tuple[dict[str, str], ...] = ()
    """Facts (severity, area, device_class, feed, alarm) of the active alarms in scope."""
    roster: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Role -> the people (names) who hold it; ``*`` -> everyone (for roll calls)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Person name -> what people call them, for the timeline."""


@dataclass(frozen=True)
class Start:
    why: str


@dataclass(frozen=True)
class Due:
    timer: str
    """``STEP#timeout``, ``STEP#for`` or ``STEP#deadline``."""


@dataclass(frozen=True)
class Changed:
    """The site changed (an alarm came or went): conditions are judged again."""


@dataclass(frozen=True)
class Ack:
    who: str


@dataclass(frozen=True)
class Confirm:
    item: str
    who: str


@dataclass(frozen=True)
class Decide:
    step: str
    who: str
    approve: bool
    note: str = ""


@dataclass(frozen=True)
class Safe:
    """``person`` (a name) is safe (a roll call), said by ``who`` (themself, or someone who
    saw them)."""

    person: str
    who: str


@dataclass(frozen=True)
class Done:
    step: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Resolve:
    who: str


@dataclass(frozen=True)
class Note:
    who: str
    text: str


@dataclass(frozen=True)
class Restarted:
    """The daemon started again: actions that were running may or may not have run."""


Input = (Start | Due | Changed | Ack | Confirm | Decide | Safe | Done | Resolve | Note
         | Restarted)


# -- what goes out ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Notify:
    step: str
    roles: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Arm:
    timer: str
    due: float


@dataclass(frozen=True)
class Cancel:
    timer: str


@dataclass(frozen=True)
class RollCall:
    """Ask each of ``people`` whether they are safe, each with their own answer link."""

    step: str
    people: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Run:
    step: str


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    ts: float
    kind: str
    text: str
    step: str | None = None
    actor: str | None = None


Effect = Notify | RollCall | Arm | Cancel | Run | Entry


class PlaybookError(Exception):
    """The playbook sent the path round a cycle with no wait (a defect ``check`` reports)."""


def open_items(inc: Incident, pb: Playbook) -> list[ChecklistItem]:
    """The checklist items of the steps the incident reached that nobody has confirmed."""
    return [i for s in pb.steps if isinstance(s, ChecklistStep) and s.id in inc.reached
            for i in s.items if i.id not in inc.checked]


def pending_approval(inc: Incident, pb: Playbook) -> ApprovalStep | None:
    """The approval the incident waits for now, if any."""
    step = pb.step(inc.step) if inc.step else None
    return step if isinstance(step, ApprovalStep) and step.id not in inc.decisions else None


class Engine:
    def __init__(self, playbook: Playbook):
        self.pb = playbook

    def feed(self, inc: Incident, inp: Input, world: World) -> list[Effect]:
        out: list[Effect] = []
        now = world.now
        if inc.status == "closed":
            if isinstance(inp, Note):
                out.append(Entry(now, "note", inp.text, actor=inp.who))
            return out
        match inp:
            case Start(why):
                inc.cause = why
                out.append(Entry(now, "started", why))
                first = next((s.id for s in self.pb.steps if s.enabled), END)
                self._go(inc, first, world, out)
            case Due(timer):
                self._due(inc, timer, world, out)
            case Ack(who):
                if inc.acked is None:
                    inc.acked = (who, now)
                    out.append(Entry(now, "acknowledged", "事件已确认", actor=who))
            case Confirm(item, who):
                self._confirm(inc, item, who, world, out)
            case Decide(step, who, approve, note):
                self._decide(inc, step, who, approve, note, world, out)
            case Safe(person, who):
                self._safe(inc, person, who, world, out)
            case Done(step, ok, detail):
                self._done(inc, step, ok, detail, world, out)
            case Resolve(who):
                self._resolve(inc, who, world, out)
            case Note(who, text):
                out.append(Entry(now, "note", text, actor=who))
            case Restarted():
                for step_id, state in list(inc.actions.items()):
                    if state == "running":
                        inc.actions[step_id] = "unknown"
                        out.append(Entry(now, "action_unknown", "重启前可能已执行, 结果未知, "
                                                                "不再重复执行", step_id))
                        if inc.step == step_id:
                            out.append(Cancel(f"{step_id}#timeout"))
                            action = self.pb.step(step_id)
                            assert isinstance(action, ActionStep)
                            self._go(inc, action.on_failure or self.pb.after(step_id), world,
                                     out)
        if not isinstance(inp, Note):
            self._settle(inc, world, out)
        return out

    # -- conditions -------------------------------------------------------------------------
    def holds(self, cond: Condition, inc: Incident, world: World) -> bool:
        if cond.alarm is not None:
            return any(cond.alarm.matches(f) for f in world.active)
        if cond.alarms is not None:
            match = cond.alarms.match
            return sum(match.matches(f) for f in world.active) >= cond.alarms.at_least
        if cond.no_alarm is not None:
            return not any(cond.no_alarm.matches(f) for f in world.active)
        if cond.elapsed is not None:
            return world.now - inc.started >= cond.elapsed
        if cond.checked is not None:
            return cond.checked in inc.checked
        if cond.acknowledged is not None:
            return (inc.acked is not None) == cond.acknowledged
        if cond.any is not None:
            return any(self.holds(c, inc, world) for c in cond.any)
        assert cond.all is not None
        return all(self.holds(c, inc, world) for c in cond.all)

    # -- the path -----------------------------------------------------------------------------
    def _go(self, inc: Incident, step_id: str, world: World, out: list[Effect]) -> None:
        """Enter steps from ``step_id`` on until one waits or the path ends."""
        now = world.now
        for _ in range(MAX_STEPS):
            if step_id == END:
                self._close(inc, now, out)
                return
            step = self.pb.step(step_id)
            if not step.enabled:
                step_id = self.pb.after(step_id)
                continue
            inc.step = step_id
            inc.reached.append(step_id)
            nxt = self._enter(inc, step, world, out)
            if nxt is None:
                return
            step_id = nxt
        raise PlaybookError(f"playbook {self.pb.name}: the path goes round without waiting "
                            f"(at step {step_id})")

    def _enter(self, inc: Incident, step: AnyStep, world: World,
               out: list[Effect]) -> str | None:
        """Start ``step``; the step to go on to, or None while it waits."""
        now, after = world.now, self.pb.after(step.id)
        label = step.alias or step.id
        match step:
            case NotifyStep():
                out.append(Entry(now, "notify", f"{label}: {step.message}", step.id))
                out.append(Notify(step.id, tuple(step.roles), step.message))
                return after
            case BranchStep():
                taken = step.then if self.holds(step.when, inc, world) else step.else_
                said = taken if taken == END else (self.pb.step(taken).alias or taken)
                out.append(Entry(now, "branch", f"{label}: 转到 {said}", step.id))
                return taken
            case DeadlineStep():
                due = inc.started + step.within
                inc.deadlines[step.id] = {"target": step.target, "due": due, "met": None,
                                          "missed": False}
                out.append(Entry(now, "deadline", f"目标: {step.target}", step.id))
                out.append(Arm(f"{step.id}#deadline", due))
                return after
            case EscalateStep():
                inc.level = step.level
                out.append(Entry(now, "escalated", f"升级为 {step.level}", step.id))
                if step.roles:
                    out.append(Notify(step.id, tuple(step.roles), f"事件升级为 {step.level}"))
                return after
            case ActionStep():
                if inc.drill and step.unsafe and not inc.unsafe_allowed:
                    inc.actions[step.id] = "skipped"
                    out.append(Entry(now, "action_skipped", f"{label}: 演练中不执行", step.id))
                    return after
                inc.actions[step.id] = "running"
                out.append(Entry(now, "action", f"{label}: 执行", step.id))
                out.append(Run(step.id))
                out.append(Arm(f"{step.id}#timeout", now + step.timeout))
                return None
            case ChecklistStep():
                if all(i.id in inc.checked for i in step.items):
                    return after
                out.append(Entry(now, "checklist", label, step.id))
                for role in dict.fromkeys(i.role for i in step.items):
                    items = "; ".join(i.text for i in step.items if i.role == role)
                    out.append(Notify(step.id, (role,), f"请确认: {items}"))
                if not step.blocking:
                    return after
                self._timeout(step, now, out)
                return None
            case WaitStep():
                if step.for_ is not None:
                    out.append(Entry(now, "wait", label, step.id))
                    out.append(Arm(f"{step.id}#for", now + step.for_))
                    return None
                assert step.until is not None
                if self.holds(step.until, inc, world):
                    return after
                out.append(Entry(now, "wait", label, step.id))
                self._timeout(step, now, out)
                return None
            case RollCallStep():
                roster = world.roster
                people = sorted({p for r in (step.roles or ["*"]) for p in roster.get(r, ())})
                if not people:
                    out.append(Entry(now, "rollcall", f"{label}: 无人可点名", step.id))
                    return after
                inc.rollcall[step.id] = dict.fromkeys(people)
                out.append(Entry(now, "rollcall", f"{label}: 点名 {len(people)} 人", step.id))
                out.append(RollCall(step.id, tuple(people), step.text))
                self._timeout(step, now, out)
                return None
            case ApprovalStep():
                out.append(Entry(now, "approval", f"{label}: {step.text}", step.id))
                out.append(Notify(step.id, (step.role,), f"请审批: {step.text}"))
                self._timeout(step, now, out)
                return None
            case ResolveStep():
                if step.when is not None and self.holds(step.when, inc, world):
                    self._mark_resolved(inc, None, now, out)
                    return after
                out.append(Entry(now, "wait", f"{label}: 等待解除", step.id))
                return None
        raise AssertionError(step)

    def _timeout(self, step: ChecklistStep | WaitStep | ApprovalStep | RollCallStep, now: float,
                 out: list[Effect]) -> None:
        if step.timeout is not None:
            out.append(Arm(f"{step.id}#timeout", now + step.timeout))

    def _leave(self, inc: Incident, to: str, world: World, out: list[Effect]) -> None:
        """The waiting step is over: cancel its timer, go on."""
        if inc.step is not None:
            out.append(Cancel(f"{inc.step}#timeout"))
        self._go(inc, to, world, out)

    # -- inputs -------------------------------------------------------------------------------
    def _due(self, inc: Incident, timer: str, world: World, out: list[Effect]) -> None:
        step_id, _, what = timer.rpartition("#")
        now = world.now
        if what == "deadline":
            deadline = inc.deadlines.get(step_id)
            if deadline is not None and deadline["met"] is None and not deadline["missed"]:
                deadline["missed"] = True
                step = self.pb.step(step_id)
                assert isinstance(step, DeadlineStep)
                out.append(Entry(now, "deadline_missed", f"未达成: {step.target}", step_id))
                if step.escalate:
                    out.append(Notify(step_id, tuple(step.escalate), f"未达成: {step.target}"))
            return
        if inc.step != step_id:
            return  # the step was left before its timer came due
        step = self.pb.step(step_id)
        if what == "for":
            self._go(inc, self.pb.after(step_id), world, out)
        elif isinstance(step, ActionStep):
            inc.actions[step_id] = "timeout"
            out.append(Entry(now, "action_timeout", f"{step.timeout:g} 秒内未完成", step_id))
            self._go(inc, step.on_failure or self.pb.after(step_id), world, out)
        elif isinstance(step, ChecklistStep | WaitStep | ApprovalStep | RollCallStep):
            out.append(Entry(now, "timeout", f"{step.alias or step.id}: 超时", step_id))
            missing = [world.labels.get(p, p) for p, ts in inc.rollcall.get(step_id, {}).items()
                       if ts is None]
            if missing:
                out.append(Entry(now, "rollcall_missing", f"未确认安全 {len(missing)} 人: "
                                 f"{', '.join(missing)}", step_id))
            self._go(inc, step.on_timeout or self.pb.after(step_id), world, out)

    def _confirm(self, inc: Incident, item: str, who: str, world: World,
                 out: list[Effect]) -> None:
        now = world.now
        found = next(((s, i) for s in self.pb.steps if isinstance(s, ChecklistStep)
                      and s.id in inc.reached for i in s.items if i.id == item), None)
        if found is None:
            out.append(Entry(now, "refused", f"没有待确认的清单项 {item}", actor=who))
            return
        step, entry = found
        if item in inc.checked:
            first, _ = inc.checked[item]
            out.append(Entry(now, "confirm_ignored", f"{entry.text}: 已由 {first} 确认",
                             step.id, who))
            return
        inc.checked[item] = (who, now)
        out.append(Entry(now, "confirmed", entry.text, step.id, who))
        if inc.step == step.id and all(i.id in inc.checked for i in step.items):
            self._leave(inc, self.pb.after(step.id), world, out)

    def _safe(self, inc: Incident, person: str, who: str, world: World,
              out: list[Effect]) -> None:
        """A person is safe: counted in the roll call that asked them (also after its
        timeout, so the count is right); the roll call goes on once everyone answered."""
        now, name = world.now, world.labels.get(person, person)
        step_id = next((s for s, people in inc.rollcall.items() if person in people
                        and people[person] is None), None)
        if step_id is None:
            asked = any(person in people for people in inc.rollcall.values())
            out.append(Entry(now, "safe_ignored", f"{name}: " + (
                "已确认过安全" if asked else "不在点名名单中"), actor=who))
            return
        inc.rollcall[step_id][person] = now
        late = "" if inc.step == step_id else " (超时后)"
        by = "" if who == name else f", 由 {who} 代报"
        out.append(Entry(now, "safe", f"{name} 已确认安全{late}{by}", step_id, who))
        if inc.step == step_id and all(ts is not None for ts in inc.rollcall[step_id].values()):
            self._leave(inc, self.pb.after(step_id), world, out)

    def _decide(self, inc: Incident, step_id: str, who: str, approve: bool, note: str,
                world: World, out: list[Effect]) -> None:
        now = world.now
        step = next((s for s in self.pb.steps if s.id == step_id), None)
        if not isinstance(step, ApprovalStep) or inc.step != step_id:
            out.append(Entry(now, "refused", f"步骤 {step_id} 不在等待审批", actor=who))
            return
        inc.decisions[step_id] = (who, approve, now)
        text = ("批准" if approve else "不批准") + (f": {note}" if note else "")
        out.append(Entry(now, "approved" if approve else "rejected", text, step_id, who))
        self._leave(inc, self.pb.after(step_id) if approve else step.on_reject, world, out)

    def _done(self, inc: Incident, step_id: str, ok: bool, detail: str, world: World,
              out: list[Effect]) -> None:
        if inc.actions.get(step_id) != "running":
            return  # timed out (or unknown after a restart) before the result came
        inc.actions[step_id] = "ok" if ok else "failed"
        out.append(Entry(world.now, "action_ok" if ok else "action_failed", detail, step_id))
        if inc.step == step_id:
            step = self.pb.step(step_id)
            assert isinstance(step, ActionStep)
            nxt = self.pb.after(step_id) if ok else (step.on_failure or self.pb.after(step_id))
            self._leave(inc, nxt, world, out)

    def _resolve(self, inc: Incident, who: str, world: World, out: list[Effect]) -> None:
        """By hand: the emergency is over; the path goes on after the resolve step (the
        recovery phase), or ends when there is none."""
        if inc.status != "running":
            return
        self._mark_resolved(inc, who, world.now, out)
        resolve = next((s for s in self.pb.steps if isinstance(s, ResolveStep)), None)
        self._leave(inc, self.pb.after(resolve.id) if resolve else END, world, out)

    def _mark_resolved(self, inc: Incident, who: str | None, now: float,
                       out: list[Effect]) -> None:
        inc.status, inc.resolved = "recovery", (who or "条件满足", now)
        out.append(Entry(now, "resolved", "应急结束, 进入恢复阶段", inc.step, who))

    def _settle(self, inc: Incident, world: World, out: list[Effect]) -> None:
        """After any input: a waiting step whose condition holds goes on, and deadlines
        whose target is now met are met (late, when they were already missed)."""
        now = world.now
        if inc.step is not None and inc.status != "closed":
            step = self.pb.step(inc.step)
            if isinstance(step, WaitStep) and step.until is not None \
                    and self.holds(step.until, inc, world):
                self._leave(inc, self.pb.after(step.id), world, out)
            elif isinstance(step, ResolveStep) and inc.status == "running" \
                    and step.when is not None and self.holds(step.when, inc, world):
                self._mark_resolved(inc, None, now, out)
                self._leave(inc, self.pb.after(step.id), world, out)
        for step_id, deadline in inc.deadlines.items():
            if deadline["met"] is None:
                step = self.pb.step(step_id)
                assert isinstance(step, DeadlineStep)
                if not self.holds(step.met, inc, world):
                    continue
                deadline["met"] = now
                if deadline["missed"]:  # reached after all: how late is on the timeline
                    late = spoken_duration(now - deadline["due"])
                    out.append(Entry(now, "deadline_late", f"迟到 {late} 达成: {step.target}",
                                     step_id))
                else:
                    out.append(Entry(now, "deadline_met", f"达成: {step.target}", step_id))
                    out.append(Cancel(f"{step_id}#deadline"))

    def _close(self, inc: Incident, now: float, out: list[Effect]) -> None:
        inc.status, inc.step = "closed", None
        for step_id, deadline in inc.deadlines.items():
            if deadline["met"] is None and not deadline["missed"]:
                out.append(Cancel(f"{step_id}#deadline"))
        out.append(Entry(now, "closed", "事件结束"))
