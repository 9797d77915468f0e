"""What the API is handed by the wiring: the context's services are enough for most; these are
the parts it reads and acts through beside them (never the daemon itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitor.notify.links import UsedLinks
from monitor.notify.silences import Silences
from monitor.playbooks.runtime import Incidents


@dataclass(frozen=True)
class ApiParts:
    started: float
    """When the daemon started (epoch seconds), for /health's uptime."""
    silences: Silences
    incidents: Incidents
    links: UsedLinks
    reload: Callable[[], Awaitable[list[str]]]
    """Re-read the config file; the reasons it was refused, if it was."""
