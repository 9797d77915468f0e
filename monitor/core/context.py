"""What every part that attaches to the daemon gets: the shared services, never the daemon."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.alarms.facts import AlarmFacts
from monitor.alarms.manager import AlarmManager
from monitor.config.model import SiteConfig
from monitor.core.actions import ActionRunner
from monitor.core.bus import Bus
from monitor.core.metrics import Metrics
from monitor.core.state import SiteState
from monitor.core.store import Store
from monitor.core.supervisor import Supervisor
from monitor.core.timers import Timers


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
