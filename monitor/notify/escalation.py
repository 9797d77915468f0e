"""The escalation machine: a raised alarm is routed to policies (unless a silence holds it
back); each level pages its targets, having first stored when the next level is due (a
durable ``escalate`` timer, so a restart neither repeats a level nor forgets the next); an
acknowledgement, a clear, shelving or suppression stops every pending level at once. ``clock``
says now (the due times, and who is on call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from monitor.alarms.model import Alarm
from monitor.config.directory import Person
from monitor.config.notify import Policy
from monitor.core.context import Context
from monitor.core.timers import fields, name
from monitor.notify.routing import people, route_facts
from monitor.notify.silences import Silences

log = logging.getLogger(__name__)

Page = Callable[[Alarm, Person], None]


def pageable(alarm: Alarm) -> bool:
    """Whether an alarm is still one to page for."""
    return alarm.active and not alarm.acked and alarm.shelved_until is None \
        and alarm.suppressed_by is None


class Escalation:
    def __init__(self, ctx: Context, silences: Silences, page: Page,
                 clock: Callable[[], float] = time.time):
        self.ctx, self.silences, self.page, self.clock = ctx, silences, page, clock
        ctx.timers.on("escalate", self._due, legacy=lambda old: tuple(old.rsplit("#", 3)))

    def start(self, alarm_id: str) -> None:
        """A new occurrence: route it, and page each policy's first level."""
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None:
            return
        found = self.ctx.facts.of(alarm)
        window = self.silences.holding(found, self.clock())
        if window is not None:  # planned work: recorded, announced when the window ends
            self.silences.hold(window, alarm_id)
            return
        for policy in route_facts(self.ctx.cfg, found, self._now()):
            self._level(alarm_id, policy, 0, 0)

    def announce(self, alarm_ids: list[str]) -> None:
        """A window ended: what it held back and is still unhandled goes out now."""
        for alarm_id in alarm_ids:
            alarm = self.ctx.alarms.alarms.get(alarm_id)
            if alarm is not None and alarm.active and not alarm.acked:
                self.start(alarm_id)

    def stop(self, alarm_id: str) -> None:
        """Every pending level of ``alarm_id`` is off."""
        for timer in self.ctx.timers.pending("escalate"):
            if fields(timer)[0] == alarm_id:
                self.ctx.timers.cancel("escalate", timer)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock()).astimezone()

    def _due(self, timer: str) -> None:
        alarm_id, policy_name, round_, level = fields(timer)
        policy = next((p for p in self.ctx.cfg.notify.policies if p.name == policy_name), None)
        if policy is not None and int(level) < len(policy.levels):
            self._level(alarm_id, policy, int(round_), int(level))

    def _level(self, alarm_id: str, policy: Policy, round_: int, level: int) -> None:
        """Page one level, having first stored when the next one is due."""
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None or not pageable(alarm):
            return
        step = policy.levels[level]
        if level + 1 < len(policy.levels):
            nxt: tuple[int, int] | None = (round_, level + 1)
        else:
            nxt = (round_ + 1, 0) if round_ < policy.repeat else None
        if nxt is not None:
            self.ctx.timers.arm("escalate", name(alarm_id, policy.name, *nxt),
                                self.clock() + step.wait)
        who = people(self.ctx.cfg, step.notify, self._now())
        log.info("alarm %s: notifying level %d of %s: %s", alarm_id, level + 1, policy.name,
                 ", ".join(p.name for p in who) or "nobody")
        for person in who:
            self.page(alarm, person)
