"""How alarms reach people: routes (first match wins unless ``continue``), and escalation
policies: ordered levels, each notifying targets, then waiting for an acknowledgement."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.oncall import Window
from monitor.config.types import Duration, Strict

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]


class Target(Strict):
    """Exactly one of: a role (whoever is on call for it), a person, a group."""

    role: str | None = None
    person: str | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if sum(x is not None for x in (self.role, self.person, self.group)) != 1:
            raise ValueError("give exactly one of role, person, group")
        return self


class Level(Strict):
    notify: list[Target] = Field(min_length=1)
    wait: Duration = Field(default=300.0, gt=0,
                           description="for an acknowledgement before the next level")


class Policy(Strict):
    name: Name
    levels: list[Level] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10, description="times to go through it again")


class Match(Strict):
    """Every given list must contain the alarm's value (empty: anything)."""

    severity: list[str] = Field(default_factory=list)
    area: list[str] = Field(default_factory=list)
    device_class: list[str] = Field(default_factory=list)
    feed: list[str] = Field(default_factory=list, description="the UPS a device hangs on, or "
                                                              "mains")
    alarm: list[str] = Field(default_factory=list,
                             description="alarm ids, a rule's name (each of its levels: "
                                         "NAME.high, ...), or prefixes like comm:")

    def matches(self, found: dict[str, str]) -> bool:
        """Every list given holds the alarm's value (alarm ids also by a rule's name for its
        levels, ``x.high``, and by prefix ``x:``)."""
        alarm = found["alarm"]
        if self.alarm and not any(alarm == a or alarm.startswith(f"{a}.") or (
                a.endswith(":") and alarm.startswith(a)) for a in self.alarm):
            return False
        return all(not allowed or found[key] in allowed for key, allowed in (
            ("severity", self.severity), ("area", self.area),
            ("device_class", self.device_class), ("feed", self.feed)))


class Route(Strict):
    match: Match = Match()
    policy: str
    when: Window | None = Field(default=None, description="only on these days and hours "
                                                          "(the site's time zone)")
    continue_: bool = Field(default=False, alias="continue",
                            description="also try the routes after this one")


Fact = Literal["area", "severity", "device_class", "feed"]
"""Facts of an alarm that grouping and inhibition rules compare."""


class Inhibit(Strict):
    """An alarm matching ``target`` is suppressed (kept and shown, not sent) while an active
    alarm matching ``source`` holds with the same ``equal`` facts (Alertmanager's
    inhibit_rules)."""

    source: Match
    target: Match
    equal: list[Fact] = Field(default_factory=list)
    note: str = Field(default="", description="said before the source alarm's message, "
                                              "e.g. 市电中断")


PERSON_LIMIT_MAX = 100


class PersonLimit(Strict):
    """At most this many messages to one person in any such period; more wait, and go as
    one message when the period allows."""

    messages: int = Field(default=20, ge=1, le=PERSON_LIMIT_MAX)
    per: Duration = Field(default=600.0, gt=0)


class NotifyConfig(Strict):
    policies: list[Policy] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    timeout: Duration = Field(default=15.0, gt=0, description="per channel and message")
    group_by: list[Fact] = Field(default_factory=lambda: list[Fact](["area"]),
                                     description="alarms alike for grouping")
    group_interval: Duration = Field(
        default=60.0, ge=0, description="after a message, more alarms of the same group for "
                                        "the same person wait this long and go as one (0: off)")
    person_limit: PersonLimit | None = Field(default=PersonLimit(),
                                             description="null: no limit per person")
    resend: Duration = Field(default=60.0, gt=0,
                             description="a page that reached its person on no channel goes "
                                         "again after this, doubling up to 10 minutes, until "
                                         "it gets through or the alarm is handled")
    retries: int = Field(default=2, ge=0, le=10, description="more attempts per channel")
    retry_delay: Duration = Field(default=5.0, gt=0, description="before the first retry; "
                                                                 "doubles each time")
    public_url: str | None = Field(default=None, pattern=r"^https?://",
                                   description="how phones reach Vigil's API, for the "
                                               "acknowledgement links (default: api.listen and "
                                               "api.port)")
    link_lifetime: Duration = Field(default=86400.0, gt=0,
                                    description="how long an acknowledgement link works")
