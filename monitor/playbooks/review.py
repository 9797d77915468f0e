"""The management review of one incident or drill, from the incident, its timeline and its
playbook, without I/O: how long until it was acknowledged, first acted on and resolved; each
target of the playbook passed, missed (and how late) or still open; each step's times and
people; how fast each role answered what it was asked. ``compare`` puts runs side by side.

In a scripted drill, what the script did in a person's place (its actor ``演练脚本 (代 NAME)``)
is shown as the script's and counts in no figure of people: not the times to acknowledge and
to first action, not a target (it is ``scripted``), not a role's answers."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Literal, NamedTuple, TypeGuard

from monitor.playbooks.engine import Incident
from monitor.playbooks.model import (
    ActionStep,
    AnyStep,
    ApprovalStep,
    ChecklistStep,
    DeadlineStep,
    Playbook,
    ResolveStep,
    RollCallStep,
    WaitStep,
)
from monitor.playbooks.rehearse import by_script


class Row(NamedTuple):
    """One line of the timeline, as the ``timeline`` table keeps it."""

    ts: float
    kind: str
    step: str | None
    actor: str | None
    text: str


ENTERED = frozenset({"notify", "branch", "deadline", "escalated", "action", "action_skipped",
                     "checklist", "wait", "approval", "rollcall"})
"""Timeline kinds written when the path enters a step."""
MOVED = ENTERED | {"timeout", "resolved", "closed"}
"""Kinds that say the waiting step was left."""
ACTED = frozenset({"confirmed", "approved", "rejected", "note", "resolved"})
"""Kinds that are a person's doing when they name the person."""
ACTION_RESULTS = frozenset({"action_ok", "action_failed", "action_timeout", "action_unknown"})

State = Literal["passed", "missed", "open", "void", "unreached", "scripted"]
"""passed, missed; open: not due yet; void: the incident (or the step) ended before it was
due, without it; unreached: the path never came to the step; scripted: a drill's script did
it, in a person's place (not people's performance)."""


@dataclass(frozen=True)
class Target:
    key: str
    """``ack_within`` or the step's id: the same target in every run of the playbook."""
    what: Literal["ack", "deadline", "timeout"]
    label: str
    """The deadline's target text, or the step's alias."""
    within: float
    due: float | None
    done: float | None
    state: State
    late: float | None = None
    """Seconds after the due time that it was done (missed, but done)."""


@dataclass(frozen=True)
class StepRecord:
    step: str
    label: str
    kind: str
    entered: float | None
    """None: the path passed it without a timeline line (nothing left to wait for)."""
    done: float | None
    outcome: str
    """done, waiting, timeout, switched (a wait for the site that ended by its timeout into
    the path the procedure has for that), incomplete, approved, rejected, resolved, left (the
    path went on without it), an action's (acting, ok, failed, timeout, skipped, unknown), or for a
    deadline its target's state."""
    who: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleRecord:
    role: str
    asked: int
    """Checklist items and approvals asked of the role."""
    answered: int
    average: float | None
    slowest: float | None
    people: tuple[str, ...]


@dataclass(frozen=True)
class Review:
    incident: Incident
    playbook: Playbook
    timeline: tuple[Row, ...]
    end: float | None
    acknowledged: float | None
    """Seconds from the start; so are ``first_action`` and ``resolution``."""
    first_action: float | None
    first_action_row: Row | None
    resolution: float | None
    targets: tuple[Target, ...]
    steps: tuple[StepRecord, ...]
    roles: tuple[RoleRecord, ...]


def review(inc: Incident, rows: list[Row], pb: Playbook, now: float) -> Review:
    """The measures of ``inc`` as of ``now`` (for what is still running)."""
    timeline = tuple(rows)
    end = next((r.ts for r in timeline if r.kind == "closed"), None)
    script = _Script(inc)
    first = next((r for r in timeline if r.kind == "action"
                  or (r.kind in ACTED and r.actor is not None and not script.did(r.actor))),
                 None)
    acked = inc.acked if inc.acked and not script.did(inc.acked[0]) else None
    resolved = inc.resolved[1] if inc.resolved else end
    walk = _Walk(inc, timeline, pb, end if end is not None else now)
    targets = tuple(walk.targets())
    return Review(inc, pb, timeline, end,
                  acked[1] - inc.started if acked else None,
                  first.ts - inc.started if first else None, first,
                  resolved - inc.started if resolved is not None else None,
                  targets, tuple(walk.steps({t.key: t for t in targets})),
                  tuple(walk.roles()))


class _Script:
    """What a scripted drill's script did (only a scripted drill has a script)."""

    def __init__(self, inc: Incident):
        self.scripted = bool(inc.drill and inc.script)

    def did(self, actor: str | None) -> bool:
        return self.scripted and by_script(actor)


class _Walk:
    """The timeline read against the playbook: where each step was entered and left."""

    def __init__(self, inc: Incident, rows: tuple[Row, ...], pb: Playbook, limit: float):
        self.inc, self.rows, self.pb, self.limit = inc, rows, pb, limit
        self.over = inc.status == "closed"
        self.script = _Script(inc)
        resolves = {s.id for s in pb.steps if isinstance(s, ResolveStep)}
        self.entered: dict[str, int] = {}
        """Step -> index of the row that first entered it."""
        for i, r in enumerate(rows):
            if r.step is not None and r.step not in self.entered and (
                    r.kind in ENTERED or (r.kind == "resolved" and r.step in resolves)):
                self.entered[r.step] = i

    def at(self, step: str) -> float | None:
        i = self.entered.get(step)
        return self.rows[i].ts if i is not None else None

    def left(self, step: str) -> Row | None:
        """The row that says the first visit of ``step`` ended."""
        i = self.entered.get(step)
        if i is None:
            return None
        if self.rows[i].kind in MOVED - ENTERED:  # a resolve step resolved on entry
            return self.rows[i]
        return next((r for r in self.rows[i + 1:] if r.kind in MOVED), None)

    def judge(self, key: str, what: Literal["ack", "deadline", "timeout"], label: str,
              within: float, due: float | None, done: float | None, *,
              limit: float | None = None, over: bool | None = None) -> Target:
        if due is None:
            return Target(key, what, label, within, None, None, "unreached")
        if done is not None and any(self.script.did(r.actor) and abs(r.ts - done) < 0.05
                                    for r in self.rows):
            return Target(key, what, label, within, due, done, "scripted")
        limit = self.limit if limit is None else limit
        if done is not None:
            late = done - due if done > due else None
            return Target(key, what, label, within, due, done,
                          "missed" if late is not None else "passed", late)
        if limit >= due:
            return Target(key, what, label, within, due, None, "missed")
        return Target(key, what, label, within, due, None,
                      "void" if (self.over if over is None else over) else "open")

    # -- targets ------------------------------------------------------------------------------
    def targets(self) -> list[Target]:
        inc, pb = self.inc, self.pb
        out = []
        if pb.ack_within is not None:
            out.append(self.judge("ack_within", "ack", "", pb.ack_within,
                                  inc.started + pb.ack_within,
                                  inc.acked[1] if inc.acked else None))
        for step in pb.steps:
            if isinstance(step, DeadlineStep):
                d = inc.deadlines.get(step.id)
                out.append(self.judge(step.id, "deadline", step.target, step.within,
                                      d["due"] if d else None, d["met"] if d else None))
            elif _timed(step):
                out.append(self._timeout(step))
        return out

    def _timeout(self, step: ChecklistStep | WaitStep | ApprovalStep | RollCallStep) -> Target:
        assert step.timeout is not None
        label, entered = step.alias or step.id, self.at(step.id)
        due = entered + step.timeout if entered is not None else None
        left = self.left(step.id)
        done = self._done(step, left)
        if left is not None and left.kind == "timeout":
            return self.judge(step.id, "timeout", label, step.timeout, due, done,
                              limit=float("inf"))
        if left is not None:  # gone on without it (resolved by hand): not judged
            return self.judge(step.id, "timeout", label, step.timeout, due, done,
                              limit=left.ts, over=True)
        return self.judge(step.id, "timeout", label, step.timeout, due, done)

    def _done(self, step: AnyStep, left: Row | None) -> float | None:
        """When the step's own work was done (not when it timed out or was cut short)."""
        inc = self.inc
        if isinstance(step, ChecklistStep):
            got = [inc.checked[i.id][1] for i in step.items if i.id in inc.checked]
            return max(got) if len(got) == len(step.items) else None
        if isinstance(step, ApprovalStep):
            decision = inc.decisions.get(step.id)
            return decision[2] if decision else None
        if isinstance(step, RollCallStep):
            answers = list(inc.rollcall.get(step.id, {}).values())
            if not answers:  # nobody to ask: done when it was reached
                return self.at(step.id)
            return None if None in answers else max(a for a in answers if a is not None)
        if left is None or left.kind == "timeout":
            return None
        if left.kind == "resolved" and left.step == step.id and not isinstance(step,
                                                                               ResolveStep):
            return None  # cut short: resolved by hand while it waited
        return left.ts

    # -- steps --------------------------------------------------------------------------------
    def steps(self, targets: dict[str, Target]) -> list[StepRecord]:
        out = []
        for step_id in dict.fromkeys(self.inc.reached):
            step = self.pb.step(step_id)
            entered, left = self.at(step_id), self.left(step_id)
            base = (step_id, step.alias or step_id, step.kind, entered)
            match step:
                case DeadlineStep():
                    t = targets[step_id]
                    out.append(StepRecord(*base, t.done, t.state))
                case ActionStep():
                    result = next((r for r in self.rows if r.step == step_id
                                   and r.kind in ACTION_RESULTS), None)
                    state = self.inc.actions[step_id]
                    out.append(StepRecord(*base, result.ts if result else
                                          entered if state == "skipped" else None,
                                          "acting" if state == "running" else state))
                case ChecklistStep() | ApprovalStep() | WaitStep() | ResolveStep() \
                        | RollCallStep():
                    out.append(self._waited(step, base, left))
                case _:
                    out.append(StepRecord(*base, entered, "done"))
        return out

    def _waited(self, step: ChecklistStep | ApprovalStep | WaitStep | ResolveStep
                | RollCallStep, base: tuple[str, str, str, float | None], left: Row | None
                ) -> StepRecord:
        inc = self.inc
        loose = isinstance(step, ChecklistStep) and not step.blocking
        if loose:
            left = None  # the path went on at once; its items stay open while it runs
        done = self._done(step, left)
        who: tuple[str, ...] = ()
        if isinstance(step, ChecklistStep):
            confirmed = sorted((inc.checked[i.id] for i in step.items if i.id in inc.checked),
                               key=lambda c: c[1])
            who = tuple(dict.fromkeys(w for w, _ in confirmed))
        elif isinstance(step, ApprovalStep) and step.id in inc.decisions:
            decider, approve, _ = inc.decisions[step.id]
            return StepRecord(*base, done, "approved" if approve else "rejected", (decider,))
        elif left is not None and left.kind == "resolved" and left.actor:
            who = (left.actor,)
        if done is not None:
            outcome = "resolved" if isinstance(step, ResolveStep) else "done"
        elif left is not None and left.kind == "timeout":
            outcome = "switched" if isinstance(step, WaitStep) else "timeout"
        elif base[3] is None and left is None and inc.step != step.id:
            outcome = "done"  # nothing was left to wait for when it was reached
        elif left is None and not self.over and (inc.step == step.id or loose):
            outcome = "waiting"
        else:
            outcome = "left" if left is not None else "incomplete"
        return StepRecord(*base, done, outcome, who)

    # -- roles --------------------------------------------------------------------------------
    def roles(self) -> list[RoleRecord]:
        asks: dict[str, list[tuple[float, tuple[str, float] | None]]] = {}
        inc = self.inc
        for step in self.pb.steps:
            asked = self.at(step.id)
            if asked is None:
                continue
            if isinstance(step, ChecklistStep):
                for item in step.items:
                    asks.setdefault(item.role, []).append((asked, inc.checked.get(item.id)))
            elif isinstance(step, ApprovalStep):
                decision = inc.decisions.get(step.id)
                asks.setdefault(step.role, []).append(
                    (asked, (decision[0], decision[2]) if decision else None))
        asks = {role: kept for role, asked_of in asks.items()  # the script's is no one's
                if (kept := [a for a in asked_of
                             if a[1] is None or not self.script.did(a[1][0])])}
        out = []
        for role in sorted(asks, key=self.pb.roles.index):
            answers = [(max(0.0, a[1] - t), a[0]) for t, a in asks[role] if a is not None]
            waits = [w for w, _ in answers]
            out.append(RoleRecord(role, len(asks[role]), len(answers),
                                  fmean(waits) if waits else None, max(waits, default=None),
                                  tuple(dict.fromkeys(who for _, who in answers))))
        return out


def _timed(step: AnyStep) -> TypeGuard[ChecklistStep | ApprovalStep | RollCallStep]:
    """A step whose timeout is a target for people: a blocking checklist, an approval, a
    roll call. (A ``wait until`` waits for the site, e.g. mains back within 30 minutes or a
    fire put out: its timeout chooses the path, it is not people's performance.)"""
    if isinstance(step, ChecklistStep):
        return step.blocking and step.timeout is not None
    return isinstance(step, ApprovalStep | RollCallStep) and step.timeout is not None


# -- runs side by side ------------------------------------------------------------------------

Trend = Literal["better", "worse", "same"]
RANK = {"passed": 2, "open": 1, "void": 1, "missed": 0}


def quicker(before: float | None, after: float | None) -> Trend | None:
    """A time against the previous run's: shorter is better, never (None) worst."""
    if before is None and after is None:
        return None
    if before is None or after is None:
        return "better" if before is None else "worse"
    return "better" if after < before else "worse" if after > before else "same"


def target_trend(before: Target | None, after: Target | None) -> Trend | None:
    """Passed beats open beats missed; between two misses, less late is better."""
    if before is None or after is None or {"unreached", "scripted"} & {before.state,
                                                                          after.state}:
        return None
    if RANK[before.state] != RANK[after.state]:
        return "better" if RANK[after.state] > RANK[before.state] else "worse"
    if after.state == "missed":
        return quicker(before.late, after.late)
    return "same"


def passed(r: Review) -> tuple[int, int]:
    """Targets passed, of those judged (passed or missed)."""
    judged = [t for t in r.targets if t.state in ("passed", "missed")]
    return sum(t.state == "passed" for t in judged), len(judged)
