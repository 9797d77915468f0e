"""Actions (a command or an HTTP call) as configured, and the ``actions`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monitor.config.types import Duration, SecretRef, Strict


class HttpAction(Strict):
    url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "PUT", "GET"] = "POST"
    body: dict[str, str] = Field(default_factory=dict)


class MqttAction(Strict):
    """A message published to a topic (a building system, a gateway): JSON of ``payload``,
    counted done when the broker accepts it."""

    url: str = Field(pattern=r"^mqtts?://[^@/]+/[^#+]+$",
                     description="mqtt[s]://HOST[:PORT]/TOPIC[?qos=1&retain=no]; no password "
                                 "in it")
    user: str | None = None
    password: SecretRef | None = None
    payload: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Runnable(Strict):
    """Exactly one of an argv (never a shell string), an HTTP call or an MQTT publish,
    under a timeout."""

    command: list[str] | None = Field(default=None, min_length=1,
                                      description="argv; argv[0] must be in "
                                                  "actions.allowed_commands")
    http: HttpAction | None = None
    mqtt: MqttAction | None = None
    timeout: Duration = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_action(self) -> Runnable:
        if sum(x is not None for x in (self.command, self.http, self.mqtt)) != 1:
            raise ValueError("give exactly one of command, http or mqtt")
        return self


class Action(Runnable):
    """A named command or HTTP call (power's shutdown actions)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")


class ActionsConfig(Strict):
    allowed_commands: list[str] = Field(default_factory=list,
                                        description="programs (absolute paths) actions may run")
    dry_run: bool = Field(default=False, description="record what would run, run nothing")
