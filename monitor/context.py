"""What every part that attaches to the daemon gets: the shared services, never the daemon."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.actions import ActionRunner
from monitor.alarms import AlarmManager
from monitor.bus import Bus
from monitor.config.model import SiteConfig
from monitor.facts import AlarmFacts
from monitor.metrics import Metrics
from monitor.state import SiteState
from monitor.store import Store
from monitor.supervisor import Supervisor
from monitor.timers import Timers


@dataclass
class Context:
    """The runtime services. ``cfg`` is the running configuration (replaced on reload)."""

    cfg: SiteConfig
    bus: Bus
    state: SiteState
    store: Store
    timers: Timers
    actions: ActionRunner
    alarms: AlarmManager
    metrics: Metrics
    supervisor: Supervisor
    facts: AlarmFacts
    """What routes, silences, inhibition rules and playbooks match alarms on."""
