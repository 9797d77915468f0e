"""Inhibition: an alarm is suppressed (kept and shown, not annunciated or sent) while another
holds, by rules like Alertmanager's: the site's ``inhibit`` list and the power topology's."""

from __future__ import annotations

from collections.abc import Callable, Collection

from monitor.alarms.facts import AlarmFacts
from monitor.alarms.model import Alarm
from monitor.config.model import SiteConfig
from monitor.config.notify import Inhibit


class Inhibition:
    """The rules of the running configuration, judged on alarm facts."""

    def __init__(self, cfg: SiteConfig, facts: AlarmFacts,
                 designed: Callable[[SiteConfig], list[Inhibit]] = lambda cfg: []):
        """``designed``: the rules the site's parts bring (the power topology's)."""
        self.facts, self.designed = facts.of, designed
        self.use(cfg)

    def use(self, cfg: SiteConfig) -> None:
        self.rules: list[Inhibit] = [*cfg.inhibit, *self.designed(cfg)]

    def is_source(self, alarm: Alarm) -> bool:
        """Whether this alarm coming or going can change what is suppressed."""
        return any(rule.source.matches(self.facts(alarm)) for rule in self.rules)

    def reason(self, alarm: Alarm, alarms: Collection[Alarm]) -> str | None:
        """Why ``alarm`` is suppressed now: the first rule that has an active source for it
        among ``alarms``, said as the rule's note and the source's message."""
        mine = self.facts(alarm)
        for rule in self.rules:
            if not rule.target.matches(mine):
                continue
            for other in alarms:
                if not other.active or other.id == alarm.id:
                    continue
                theirs = self.facts(other)
                if rule.source.matches(theirs) and all(theirs[k] == mine[k] for k in rule.equal):
                    return f"{rule.note} ({other.message})" if rule.note else other.message
        return None
