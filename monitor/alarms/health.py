"""What /health reports: ``ok``, or ``degraded`` with the reasons. Every fault the daemon
cannot fix by itself is an alarm of its own (store, internal tasks, bus, sink, outbox, a
page or incident message that reached nobody); while one of those is active, the daemon is
degraded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.alarms.manager import AlarmManager

SYSTEM_PREFIXES = ("store:", "internal:", "bus:", "sink:", "outbox:", "notify:failed")


def health(alarms: AlarmManager) -> dict[str, Any]:
    reasons = sorted(f"{a.id}: {a.message}" for a in alarms.alarms.values()
                     if a.active and a.id.startswith(SYSTEM_PREFIXES))
    return {"status": "degraded" if reasons else "ok", "reasons": reasons}
