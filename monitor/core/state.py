"""The latest value of every point and the availability of every device."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.core.model import DeviceState, Quality, Reading


@dataclass
class DeviceStatus:
    name: str
    state: DeviceState = DeviceState.UNKNOWN
    failures: int = 0
    last_ok: float | None = None
    last_error: str | None = None
    problems: list[str] = field(default_factory=list)
    latency: float | None = None


class SiteState:
    """In-memory view the API serves; the store keeps the history."""

    def __init__(self) -> None:
        self.latest: dict[str, Reading] = {}
        self.devices: dict[str, DeviceStatus] = {}

    def update(self, readings: list[Reading]) -> None:
        latest = self.latest
        for r in readings:
            latest[r.point] = r

    def mark(self, device: str, keys: list[str], quality: Quality, ts: float) -> list[Reading]:
        """Give every point of ``device`` ``quality``, keeping the last value; returns them."""
        out = []
        for key in keys:
            point = f"{device}.{key}"
            old = self.latest.get(point)
            value = old.value if old is not None and quality is Quality.STALE else None
            out.append(Reading(point, value, old.ts if old and value is not None else ts, quality))
        self.update(out)
        return out
