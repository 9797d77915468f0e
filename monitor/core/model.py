"""Core data: readings, their quality, device availability."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Value = float | int | bool | str | None


class Quality(StrEnum):
    GOOD = "good"
    STALE = "stale"
    COMM_LOST = "comm_lost"
    INVALID = "invalid"


class DeviceState(StrEnum):
    """Availability of a device as its poll task sees it."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    PROTOCOL_ERROR = "protocol_error"
    UNAVAILABLE = "unavailable"
    DISABLED = "disabled"


@dataclass(slots=True, frozen=True)
class Reading:
    """One value of one point at one time. ``point`` is ``DEVICE.KEY``."""

    point: str
    value: Value
    ts: float
    quality: Quality = Quality.GOOD


def split_point_id(point_id: str) -> tuple[str, str]:
    """``mr_env.temperature`` -> ``("mr_env", "temperature")``; device names hold no dots."""
    device, _, key = point_id.partition(".")
    return device, key
