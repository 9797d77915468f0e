"""The power section of a site config: what each UPS feeds, what the loads need, shutdowns."""

from __future__ import annotations

from pydantic import Field, model_validator

from monitor.config.actions import Action
from monitor.config.notify import Inhibit, Match
from monitor.config.types import Duration, Strict

MAINS = "mains"

def power_rules(upses: list[str]) -> list[Inhibit]:
    """The power topology as inhibition rules: what a UPS on battery (its ``power:UPS``
    alarm, by exact id: never its runtime alarm) feeds goes dark when it shuts down; what
    hangs on mains alone goes dark as soon as mains fails; a whole-site mains loss is one
    situation, not one alarm per UPS."""
    if not upses:
        return []  # an empty matcher would match every alarm
    battery = Match(alarm=[f"power:{ups}" for ups in upses])
    return [Inhibit(source=battery, target=Match(alarm=["comm:"]), equal=["feed"]),
            Inhibit(source=battery, target=Match(alarm=["comm:"], feed=[MAINS]), note="市电中断"),
            Inhibit(source=Match(alarm=["power:site"]), target=battery)]


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


class Shutdown(Action):
    """An action run once per outage when its condition holds; cancelled by mains return."""

    ups: str
    when: When


class PowerConfig(Strict):
    feeds: list[Feed] = Field(default_factory=list)
    needs: dict[str, Duration] = Field(
        default_factory=dict, description="device class -> battery time it needs (default: "
                                          "its class's; doors, cameras, recorders 30 min)")
    suppress: bool = Field(default=True, description="apply the power topology's inhibition "
                                                     "rules (see docs/notifications.md)")
    nocomm_after: Duration = Field(default=300.0, gt=0)
    shutdown: list[Shutdown] = Field(default_factory=list)
