"""Routing, the first stage (Alertmanager's): the policies an alarm's facts and the time
choose, the people a level's targets are at a moment (on call, groups), and the whole plan in
words (``vigil route test``). Pure: the configuration and the time in, choices out."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config.directory import Person
from monitor.config.model import SiteConfig
from monitor.config.notify import Policy, Target
from monitor.notify.oncall import covers, on_call
from monitor.words.text import spoken_duration


def route_facts(cfg: SiteConfig, found: dict[str, str],
                at: datetime | None = None) -> list[Policy]:
    """The policies for an alarm with these facts at ``at`` (now): routes whose matcher and
    time window (days, hours) hold."""
    local = (at or datetime.now()).astimezone(ZoneInfo(cfg.site.timezone))
    policies = {p.name: p for p in cfg.notify.policies}
    chosen: list[Policy] = []
    for r in cfg.notify.routes:
        if r.match.matches(found) and (r.when is None or covers(r.when, local)):
            chosen.append(policies[r.policy])
            if not r.continue_:
                break
    return chosen


def people(cfg: SiteConfig, targets: list[Target], at: datetime) -> list[Person]:
    """The people ``targets`` are at ``at``: a person, a role's on-call holders, a group's
    members and its roles' holders; each once."""
    names: list[str] = []
    for t in targets:
        if t.person is not None:
            names.append(t.person)
        elif t.role is not None:
            names += on_call(cfg, t.role, at).people
        else:
            group = next(g for g in cfg.groups if g.name == t.group)
            names += group.members
            for role in group.roles:
                names += [p.name for p in cfg.people if role in p.roles]
    found = [cfg.person(n) for n in dict.fromkeys(names)]
    return [p for p in found if p is not None]


def plan(cfg: SiteConfig, found: dict[str, str], at: datetime) -> list[str]:
    """What would happen to an alarm with these facts, in words: routes, levels, who, when
    (``vigil route test``). Nobody acknowledges in this telling."""
    lines = []
    policies = route_facts(cfg, found, at)
    if not policies:
        return ["no route matches: nobody is paged (the alarm shows on the console only)"]
    for policy in policies:
        lines.append(f"policy {policy.name}:")
        offset = 0.0
        for round_ in range(policy.repeat + 1):
            for n, level in enumerate(policy.levels, 1):
                when = at + timedelta(seconds=offset)
                who = people(cfg, level.notify, when)
                names = ", ".join(f"{p.label or p.name} ({p.name}: "
                                  f"{', '.join(c.channel for c in p.contacts) or 'no contacts'})"
                                  for p in who) or "nobody"
                again = f", round {round_ + 1}" if round_ else ""
                lines.append(f"  +{spoken_duration(offset) if offset else '0 秒'}: level {n}"
                             f"{again}: {names}")
                offset += level.wait
    return lines
