"""The power section of a site config: what each UPS feeds, what the loads need, shutdowns."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monitor.config.types import Duration, Strict

DEFAULT_NEEDS = {"door": 30 * 60.0, "camera": 30 * 60.0, "nvr": 30 * 60.0}
"""Seconds of battery the tender asks for: access control and CCTV at least 30 minutes."""


MAINS = "mains"


class Feed(Strict):
    ups: str = Field(description="a device of class ups, or mains for what no UPS backs")
    devices: list[str] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list, description="every device in these areas")


class When(Strict):
    on_battery_for: Duration | None = Field(default=None, gt=0)
    low_battery: bool = False
    runtime_below: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> When:
        given = [self.on_battery_for is not None, self.low_battery, self.runtime_below is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of on_battery_for, low_battery, runtime_below")
        return self


class HttpAction(Strict):
    url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "PUT", "GET"] = "POST"
    body: dict[str, str] = Field(default_factory=dict)


class Shutdown(Strict):
    """An action run once per outage when its condition holds; cancelled by mains return."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    ups: str
    when: When
    command: list[str] | None = Field(default=None, min_length=1,
                                      description="argv; argv[0] must be in allowed_commands")
    http: HttpAction | None = None
    timeout: Duration = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_action(self) -> Shutdown:
        if (self.command is None) == (self.http is None):
            raise ValueError("give exactly one of command or http")
        return self


class PowerConfig(Strict):
    feeds: list[Feed] = Field(default_factory=list)
    needs: dict[str, Duration] = Field(default_factory=lambda: dict(DEFAULT_NEEDS),
                                       description="device class -> battery time it needs")
    nocomm_after: Duration = Field(default=300.0, gt=0)
    shutdown: list[Shutdown] = Field(default_factory=list)
    allowed_commands: list[str] = Field(default_factory=list)
