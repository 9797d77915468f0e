"""Incident messages: a playbook step tells roles something (each message with the person's
link to take the incident on), a roll call asks each person to say they are safe; in a drill
every message says so. Once a message is someone's to deliver, the playbooks' stored copy
gives way to its deliveries (one transaction); one that finds nobody holding its roles is
recorded so, keeps ``notify:failed`` up, and goes again later, each time later. A drill that
ends takes its undelivered messages and its failures with it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from monitor.config.notify import Target
from monitor.core.bus import IncidentNotice
from monitor.core.context import Context
from monitor.notify.compose import Composer
from monitor.notify.delivery import Deliveries, resend_at
from monitor.notify.routing import people
from monitor.playbooks import records
from monitor.words.alarms import said


class Outcomes(Protocol):
    """What the notifier keeps of messages that reached nobody."""

    def unheard(self, key: str, subject: str, why: str, drill: bool) -> None: ...

    def heard(self, key: str) -> None: ...

    def keys_of(self, subject: str) -> list[str]: ...


class IncidentMessages:
    def __init__(self, ctx: Context, composer: Composer, deliveries: Deliveries,
                 outcomes: Outcomes, deliver: Callable[..., None],
                 nobody: Callable[[IncidentNotice], None],
                 spawn: Callable[..., None], clock: Callable[[], float] = time.time):
        """``deliver``: the notifier's delivery of one message to people; ``nobody``: record
        that a message found nobody; ``spawn``: run one-shot work."""
        self.ctx, self.composer, self.deliveries, self.outcomes = ctx, composer, deliveries, \
            outcomes
        self.deliver, self.nobody, self.spawn, self.clock = deliver, nobody, spawn, clock
        self.unsent: dict[str, int] = {}
        """Message key -> times it found nobody holding its roles in a row."""
        ctx.timers.on("notice", self._due)

    def tell(self, event: IncidentNotice) -> None:
        cfg = self.ctx.cfg
        if event.key and self.deliveries.batch(event.key):
            return  # already being delivered (a copy published again at a restart)
        if event.people:
            who = [p for p in (cfg.person(n) for n in event.people) if p is not None]
        else:
            who = people(cfg, [Target(role=r) for r in event.roles
                               if any(role.name == r for role in cfg.roles)],
                         datetime.fromtimestamp(self.clock()).astimezone())
        subject = f"{'safe' if event.rollcall else 'incident'}:{event.incident}"
        reachable = [p for p in who if p.contacts]
        key = event.key or secrets.token_hex(8)
        if reachable:
            self.unsent.pop(key, None)
            self.deliver("incident", [event.incident], reachable,
                         self.composer.incident(event, subject), batch=key, drill=event.drill,
                         step=event.step_id, also=records.drop_notice(key))
            return
        self.nobody(event)
        self.outcomes.unheard(key, event.incident, said(
            "notify.nobody", cfg.site.language, playbook=event.playbook, text=event.text)[:200],
                              event.drill)
        if event.key:
            n = self.unsent[event.key] = self.unsent.get(event.key, 0) + 1
            self.ctx.timers.arm("notice", event.key,
                                resend_at(self.ctx.cfg.notify.resend, n, self.clock()))

    def _due(self, key: str) -> None:
        """A message that found nobody goes again (if it is still undelivered)."""
        async def again() -> None:
            notice = await self.ctx.store.read(lambda c: records.notice(c, key))
            if notice is not None:
                self.tell(notice)
        self.spawn(again())

    def drill_over(self, incident: str, started: bool = True) -> None:
        """A drill closed: its messages still undelivered, and its failures, end with it. A
        message of its last moments still gets its first round (``started``: in this run;
        after a restart none is begun again)."""
        mine = [d for d in self.deliveries.active.values()
                if d.kind == "incident" and d.subjects == [incident]]
        for d in mine:
            d.again = False
        self.deliveries.drop(lambda d: d in mine and (not started or d.round > 1))
        for key in self.outcomes.keys_of(incident):
            self.ctx.timers.cancel("notice", key)
            self.unsent.pop(key, None)
            self.outcomes.heard(key)
        self.ctx.store.submit(records.drop_notices_of(incident))
