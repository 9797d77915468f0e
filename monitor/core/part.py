"""The one small protocol every part attached to the daemon shares, so the daemon's wiring is
a loop over its parts: take back its state at start, follow a new configuration, write its
state again into a database made anew, forget what it keeps no longer, and finish its work
at stop. Each does nothing unless the part has something to do there."""

from __future__ import annotations

import sqlite3

from monitor.config.model import SiteConfig
from monitor.core.bus import Subscription


class Part:
    name = "part"
    subscription: Subscription | None = None
    """What it hears on the bus, if anything (run under the supervisor by the daemon)."""

    async def load(self) -> None:
        """Take back what the last run left in the store (at start, before the bus runs)."""

    def use(self, cfg: SiteConfig) -> None:
        """Follow the running configuration (after a reload)."""

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: write what it holds again, into a database made anew."""

    def prune(self, now: float) -> None:
        """Forget what is older than the part keeps, in memory and in the store (every five
        minutes)."""

    async def close(self) -> None:
        """Finish its work at stop (the bus still runs)."""
