"""A playbook: an emergency procedure as data. Triggers start it; steps (each with an id and
a kind, as in orquesta and Home Assistant scripts) say who is told, what must be confirmed or
approved, what runs, what waits and which deadlines hold."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.actions import Runnable
from monitor.config.notify import Match
from monitor.config.types import Duration, Strict

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
END = "end"
"""A ``next`` that ends the playbook's path."""


class Count(Strict):
    match: Match
    at_least: int = Field(ge=1)


class Condition(Strict):
    """Exactly one test; ``any``/``all`` combine others."""

    alarm: Match | None = Field(default=None, description="an active alarm matches")
    alarms: Count | None = Field(default=None, description="at least this many active alarms "
                                                           "match (e.g. two fire zones)")
    no_alarm: Match | None = Field(default=None, description="no active alarm matches")
    elapsed: Duration | None = Field(default=None, description="since the incident started")
    checked: str | None = Field(default=None, description="a checklist item was confirmed")
    acknowledged: bool | None = Field(default=None, description="the incident was "
                                                                "acknowledged")
    any: list[Condition] | None = None
    all: list[Condition] | None = None

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if sum(getattr(self, k) is not None for k in type(self).model_fields) != 1:
            raise ValueError("give exactly one of " + ", ".join(type(self).model_fields))
        return self


class EventMatch(Strict):
    kind: list[str] = Field(min_length=1, description="event kinds, e.g. ONBATT, SEISMIC")
    device: list[str] = Field(default_factory=list)


class Trigger(Strict):
    """Exactly one: a raised alarm that matches, a device event, or a start by hand/API."""

    alarm: Match | None = None
    event: EventMatch | None = None
    manual: bool = False

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if sum((self.alarm is not None, self.event is not None, self.manual)) != 1:
            raise ValueError("give exactly one of alarm, event, manual: true")
        return self


class Step(Strict):
    id: Name
    alias: str = Field(default="", description="what the timeline calls it, e.g. 通知物业")
    enabled: bool = True
    next: str | None = Field(default=None, description="the step after this one (default: "
                                                       "the next in the list; end: stop)")


class Waits(Step):
    """A step that waits for people or the site; it needs an explicit ``on_timeout``."""

    timeout: Duration | None = Field(default=None, gt=0)
    on_timeout: str | None = Field(default=None, description="the step to go to when the "
                                                             "timeout passes")


class NotifyStep(Step):
    kind: Literal["notify"]
    roles: list[str] = Field(min_length=1)
    message: str = Field(min_length=1)


class ChecklistItem(Strict):
    id: Name
    text: str = Field(min_length=1, description="e.g. 疏散完毕")
    role: str


class ChecklistStep(Waits):
    """Asks each item's role to confirm it; waits until every item is confirmed, unless
    ``blocking: false`` (then the path goes on, and deadlines or conditions use the items)."""

    kind: Literal["checklist"]
    items: list[ChecklistItem] = Field(min_length=1)
    blocking: bool = True


class WaitStep(Waits):
    """Waits a time (``for``), or until a condition holds (``until``)."""

    kind: Literal["wait"]
    for_: Duration | None = Field(default=None, alias="for", gt=0)
    until: Condition | None = None

    @model_validator(mode="after")
    def _one(self) -> WaitStep:
        if (self.for_ is None) == (self.until is None):
            raise ValueError("give exactly one of for, until")
        return self


class RollCallStep(Waits):
    """Every person of the roles (everyone in the directory when none are given) answers for
    themself, by the link in their own message or through the API, that they are safe. It
    waits until all have answered or the timeout; the timeline names who did not."""

    kind: Literal["rollcall"]
    roles: list[str] = Field(default_factory=list, description="none: everyone")
    text: str = Field(min_length=1, description="what each person is asked, e.g. 请确认您已"
                                                "安全撤离")


class BranchStep(Step):
    kind: Literal["branch"]
    when: Condition
    then: str
    else_: str = Field(alias="else")


class ApprovalStep(Waits):
    kind: Literal["approval"]
    role: str
    text: str = Field(min_length=1, description="what is to be approved")
    on_reject: str = Field(default=END, description="the step to go to when refused")


class ActionStep(Step, Runnable):
    """A command (argv, allow-listed) or an HTTP call through the action runner."""

    kind: Literal["action"]
    unsafe: bool = Field(default=False, description="not run in a drill unless the drill "
                                                    "allows it")
    on_failure: str | None = Field(default=None, description="the step after a failure or "
                                                             "timeout (default: next)")


class DeadlineStep(Step):
    """A target that runs beside the path: met when ``met`` holds before ``within`` has
    passed since the incident started, else missed and escalated to ``escalate``."""

    kind: Literal["deadline"]
    target: str = Field(min_length=1, description="e.g. 一小时内报告委托银行")
    within: Duration = Field(gt=0)
    met: Condition
    escalate: list[str] = Field(default_factory=list, description="roles told when missed")


class EscalateStep(Step):
    """Raise the incident's level (e.g. 初起火灾 -> 重大火灾) and tell these roles."""

    kind: Literal["escalate"]
    level: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)


class ResolveStep(Step):
    """The emergency is over (when ``when`` holds, or by hand); the steps after it are the
    recovery phase."""

    kind: Literal["resolve"]
    when: Condition | None = None


STEPS = (NotifyStep, ChecklistStep, WaitStep, BranchStep, ApprovalStep, ActionStep,
         DeadlineStep, EscalateStep, ResolveStep, RollCallStep)
STEP_KINDS = frozenset(s.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]
                       for s in STEPS)
AnyStep = Annotated[NotifyStep | ChecklistStep | WaitStep | BranchStep | ApprovalStep
                    | ActionStep | DeadlineStep | EscalateStep | ResolveStep | RollCallStep,
                    Field(discriminator="kind")]


class Playbook(Strict):
    name: Name
    label: str = Field(min_length=1, description="e.g. 停电应急预案")
    description: str = ""
    scope: Literal["site", "area"] = "site"
    roles: list[str] = Field(min_length=1, description="the roles this procedure involves")
    triggers: list[Trigger] = Field(min_length=1)
    caused_by: list[Name] = Field(
        default_factory=list, description="playbooks whose running incident this one follows "
                                          "from (power_loss for a system outage): linked")
    ack_within: Duration | None = Field(default=None, gt=0,
                                        description="target: acknowledged within this")
    steps: list[AnyStep] = Field(min_length=1)

    def step(self, step_id: str) -> AnyStep:
        return next(s for s in self.steps if s.id == step_id)

    def after(self, step_id: str) -> str:
        """The step a finished step goes to: its ``next``, else the following enabled one."""
        i = next(n for n, s in enumerate(self.steps) if s.id == step_id)
        given = self.steps[i].next
        if given is not None:
            return given
        return next((s.id for s in self.steps[i + 1:] if s.enabled), END)
