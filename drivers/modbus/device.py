"""A Modbus device entry as the driver sees it: connection, points, and a profile's map."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from drivers.modbus.profile import WORD_KEY, load_profile
from drivers.modbus.spec import ModbusConnection, ModbusPoint
from monitor.config.types import Strict


class ModbusSpec(Strict):
    connection: ModbusConnection
    profile: str | None = Field(default=None, description="built-in name or YAML path")
    points: list[ModbusPoint] = Field(default_factory=list)
    status: Any = Field(default=None, exclude=True, description="(from the profile)")

    @model_validator(mode="before")
    @classmethod
    def _merge_profile(cls, data: Any) -> Any:
        """A profile's points come first; the device's own points add to or replace them."""
        if not isinstance(data, dict) or not data.get("profile"):
            return data
        profile = load_profile(str(data["profile"]))
        own = {p.get("key"): p for p in data.get("points") or [] if isinstance(p, dict)}
        points: list[Any] = [p for p in profile.points if p.key not in own]
        if profile.status is not None and WORD_KEY not in own:
            points.append(ModbusPoint(key=WORD_KEY, table=profile.status.table,
                                      address=profile.status.address))
        return {**data, "points": [*points, *own.values()], "status": profile.status}

    @model_validator(mode="after")
    def _some_points(self) -> ModbusSpec:
        if not self.points:
            raise ValueError("give points, or a profile")
        return self
