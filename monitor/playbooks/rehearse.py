"""Rehearsal: a playbook run against scripted inputs on a virtual clock. Nothing is sent and
nothing runs; the timeline and the notifications are printed (``vigil playbook rehearse``)
and returned for tests to assert.

A scenario (YAML)::

    name: long_outage
    until: 6h                   # the clock runs on to here after the last input
    actions: {shutdown_pcs: {ok: false, after: 10s}}   # default: each action succeeds at once
    people: {dept_head: [李四], it: [张三]}         # who holds each role (roll calls)
    inputs:
      - {at: 0s, raise: {alarm: "power:ups1", device_class: ups, area: machine_room}}
      - {at: 3m, confirm: duration_asked, who: 王五}
      - {at: 4m, ack: 张三}
      - {at: 5m, approve: gm_ok, who: 赵总}        # or reject:
      - {at: 50m, clear: "power:ups1"}
      - {at: 55m, resolve: 张三}
      - {at: 56m, start: 手动启动}                  # a start by hand (trigger manual)
      - {at: 60m, event: ONBATT}
      - {at: 61m, safe: 李四}                       # a roll call's answer (who: on behalf)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.load import validation_issues
from monitor.config.types import Duration, Strict
from monitor.config.yamlsource import parse_yaml
from monitor.playbooks.engine import (
    Ack,
    Arm,
    Cancel,
    Changed,
    Confirm,
    Decide,
    Done,
    Due,
    Engine,
    Entry,
    Incident,
    Input,
    Notify,
    Resolve,
    RollCall,
    Run,
    Safe,
    Start,
    World,
)
from monitor.playbooks.model import Playbook, Trigger


class ScriptedAction(Strict):
    ok: bool = True
    after: Duration = 0.0
    hang: bool = Field(default=False, description="never answers (its timeout decides)")


class Step(Strict):
    """One scripted input at ``at`` after the start of the rehearsal."""

    at: Duration = Field(ge=0)
    raise_: dict[str, str] | None = Field(default=None, alias="raise")
    clear: str | None = None
    event: str | None = None
    start: str | None = None
    ack: str | None = None
    confirm: str | None = None
    approve: str | None = None
    reject: str | None = None
    resolve: str | None = None
    safe: str | None = Field(default=None, description="this person answers the roll call")
    who: str = "演练人员"

    @model_validator(mode="after")
    def _one(self) -> Step:
        given = [k for k in ("raise_", "clear", "event", "start", "ack", "confirm", "approve",
                             "reject", "resolve", "safe") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of raise, clear, event, start, ack, confirm, "
                             "approve, reject, resolve, safe")
        if self.raise_ is not None and "alarm" not in self.raise_:
            raise ValueError("raise needs the alarm id (alarm: ...)")
        return self


class Scenario(Strict):
    name: str
    until: Duration = Field(default=86400.0, gt=0)
    drill: bool = False
    actions: dict[str, ScriptedAction] = Field(default_factory=dict)
    people: dict[str, list[str]] = Field(default_factory=dict,
                                         description="role -> who holds it, for roll calls")
    inputs: list[Step] = Field(min_length=1)


@dataclass
class Line:
    """What happened at ``t`` seconds: a timeline entry or a notification."""

    t: float
    what: Literal["entry", "notify"]
    kind: str
    text: str
    step: str | None = None
    actor: str | None = None


@dataclass
class Rehearsal:
    playbook: Playbook
    scenario: Scenario
    lines: list[Line] = field(default_factory=list)
    incident: Incident | None = None

    def run(self) -> list[Line]:
        engine = Engine(self.playbook)
        active: dict[str, dict[str, str]] = {}
        timers: dict[str, float] = {}
        queue: list[tuple[float, int, str, Any]] = []
        seq = 0

        def push(t: float, kind: str, item: Any) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(queue, (t, seq, kind, item))
        for step in self.scenario.inputs:
            push(step.at, "input", step)

        people = self.scenario.people
        roster = {"*": tuple(dict.fromkeys(p for names in people.values() for p in names))} \
            | {role: tuple(names) for role, names in people.items()}

        def world(t: float) -> World:
            return World(t, tuple(active.values()), roster)

        def feed(t: float, inp: Input) -> None:
            if self.incident is None:
                if not isinstance(inp, Start):
                    return
                self.incident = Incident("rehearsal", self.playbook.name, "rehearsal",
                                         "site", t, drill=self.scenario.drill)
            for effect in engine.feed(self.incident, inp, world(t)):
                apply(t, effect)

        def apply(t: float, effect: Any) -> None:
            if isinstance(effect, Entry):
                self.lines.append(Line(t, "entry", effect.kind, effect.text, effect.step,
                                       effect.actor))
            elif isinstance(effect, Notify):
                self.lines.append(Line(t, "notify", ",".join(effect.roles), effect.text,
                                       effect.step))
            elif isinstance(effect, RollCall):
                self.lines.append(Line(t, "notify", ",".join(effect.people), effect.text,
                                       effect.step))
            elif isinstance(effect, Arm):
                timers[effect.timer] = effect.due
                push(effect.due, "timer", effect.timer)
            elif isinstance(effect, Cancel):
                timers.pop(effect.timer, None)
            elif isinstance(effect, Run):
                scripted = self.scenario.actions.get(effect.step, ScriptedAction())
                if not scripted.hang:
                    push(t + scripted.after, "done", (effect.step, scripted.ok))

        while queue:
            t, _, kind, item = heapq.heappop(queue)
            if t > self.scenario.until:
                break
            if kind == "timer":
                if timers.get(item) == t:
                    del timers[item]
                    feed(t, Due(item))
            elif kind == "done":
                step_id, ok = item
                feed(t, Done(step_id, ok, "演练: 成功" if ok else "演练: 失败"))
            else:
                self._input(t, item, active, feed)
        return self.lines

    def _input(self, t: float, step: Step, active: dict[str, dict[str, str]],
               feed: Any) -> None:
        pb = self.playbook
        if step.raise_ is not None:
            facts = scripted_facts(step.raise_)
            active[facts["alarm"]] = facts
            trigger = next((tr for tr in pb.triggers if tr.alarm is not None
                            and tr.alarm.matches(facts)), None)
            started = self.incident is None and trigger is not None
            feed(t, Start(f"告警 {facts['alarm']}") if started else Changed())
        elif step.clear is not None:
            active.pop(step.clear, None)
            feed(t, Changed())
        elif step.event is not None:
            if any(_event(tr, step.event) for tr in pb.triggers):
                feed(t, Start(f"事件 {step.event}"))
        elif step.start is not None:
            feed(t, Start(step.start))
        else:
            feed(t, person_input(step))


def scripted_facts(raised: dict[str, str]) -> dict[str, str]:
    """A scripted alarm's facts (critical unless it says otherwise)."""
    return {"severity": "critical", "area": "", "device_class": "", "feed": "", **raised}


SCRIPT = "演练脚本"
"""The actor of what a scripted drill's script does in a person's place."""


def by_script(actor: str | None) -> bool:
    """Whether a timeline's actor is a drill's script (not a person)."""
    return actor is not None and actor.startswith(SCRIPT)


def person_input(step: Step, on_behalf: bool = False) -> Input:
    """What a person does in a scripted step: ack, confirm, approve or reject, answer a roll
    call, resolve. ``on_behalf``: the actor is the script, in that person's place (a live
    drill's timeline and review never credit a person with what the script did)."""
    def actor(who: str) -> str:
        return f"{SCRIPT} (代 {who})" if on_behalf else who
    if step.ack is not None:
        return Ack(actor(step.ack))
    if step.confirm is not None:
        return Confirm(step.confirm, actor(step.who))
    if step.approve is not None or step.reject is not None:
        return Decide(step.approve or step.reject or "", actor(step.who),
                      step.approve is not None)
    if step.safe is not None:
        return Safe(step.safe, actor(step.who if "who" in step.model_fields_set else step.safe))
    assert step.resolve is not None
    return Resolve(actor(step.resolve))


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file, or ConfigError naming file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(str(p), 1, (), f"cannot read the file: {err}")]) from err
    src = parse_yaml(text, str(p))
    try:
        return Scenario.model_validate(src.data)
    except ValidationError as err:
        raise ConfigError(validation_issues(src, err)) from None


def _event(trigger: Trigger, kind: str) -> bool:
    return trigger.event is not None and kind in trigger.event.kind


def clock(t: float) -> str:
    """Seconds since the start as +H:MM:SS."""
    s = int(t)
    return f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render(lines: list[Line], playbook: Playbook) -> str:
    """The rehearsal as people read it: one line per moment, notifications indented."""
    out = []
    for line in lines:
        if line.what == "notify":
            out.append(f"{clock(line.t)}    → {line.kind}: {line.text}")
        else:
            actor = f" ({line.actor})" if line.actor else ""
            out.append(f"{clock(line.t)}  {line.kind:16} {line.text}{actor}")
    return "\n".join(out)

