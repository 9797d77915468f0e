"""The site configuration schema (strict: unknown keys are errors)."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from monitor.config.actions import ActionsConfig
from monitor.config.directory import Group, Person, Role
from monitor.config.notify import Inhibit, NotifyConfig
from monitor.config.oncall import Schedule, time_zone
from monitor.config.power import PowerConfig
from monitor.config.types import (
    AuthProtocol,
    ByteSize,
    Duration,
    PrivProtocol,
    SecretRef,
    Strict,
)
from monitor.devices.base import classes

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]


def known_class(name: str) -> str:
    """A device class that is registered (``monitor.devices``)."""
    found = classes()
    if name not in found:
        raise ValueError(f"unknown device class {name!r} (known: {', '.join(sorted(found))})")
    return name


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INFO = "info"


class SiteInfo(Strict):
    name: str = Field(min_length=1)
    label: str = ""
    timezone: Annotated[str, AfterValidator(time_zone)] = "Asia/Shanghai"
    language: Literal["zh-CN", "en"] = "zh-CN"


class Area(Strict):
    name: Name
    label: str = ""
    purpose: str = Field(default="", description="machine_room, work_area, office, entrance, ...")


class PointBase(Strict):
    """Fields every point has, whatever its driver."""

    key: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=128)
    label: str = ""
    unit: str = ""
    area: str | None = Field(default=None, description="where this point is, when not where "
                                                       "its device is (a fire panel's zones, "
                                                       "a door controller's doors)")


class DeviceConfig(Strict):
    """One box; ``connection`` and ``points`` are checked by the driver named by ``type``."""

    name: Name
    area: str
    device_class: Annotated[str, AfterValidator(known_class)] = Field(
        alias="class", description="ups, environment, leak, fire_panel, door, camera, nvr, host, "
                                   "or a class a plug-in registers")
    type: str
    label: str = ""
    interval: Duration = Field(default=10.0, gt=0,
                               description="default: the driver's (nut 0.5 s, snmp 5 s, 10 s)")
    timeout: Duration = Field(default=3.0, gt=0,
                              description="default: the driver's (nut 0.4 s, snmp 2 s, 3 s)")
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="fraction of the interval")
    failures_before_unavailable: int = Field(default=3, ge=1)
    backoff_max: Duration = Field(default=60.0, gt=0)
    enabled: bool = True
    connection: dict[str, Any] = Field(default_factory=dict)
    profile: str | None = Field(default=None, description="a driver's ready-made point map")
    points: list[dict[str, Any]] = Field(default_factory=list)
    _spec: Any = PrivateAttr(default=None)
    _described: dict[str, PointBase] | None = PrivateAttr(default=None)

    @property
    def spec(self) -> Any:
        """The driver's validated view of ``connection`` and ``points``."""
        return self._spec

    def described_points(self) -> dict[str, PointBase]:
        """Points by key as configured, a profile's included, and what a driver derives from
        them (labels and units)."""
        if self._described is not None:
            return self._described
        described = getattr(self._spec, "described", None)
        found = dict(described()) if callable(described) else {
            p.key: p for p in getattr(self._spec, "points", [])}
        if self._spec is not None:  # kept: the live stream asks for each reading
            self._described = found
        return found


class RuleBase(Strict):
    name: Name
    point: str = Field(description="DEVICE.KEY")
    severity: Severity = Severity.MAJOR
    message: str = ""
    advice: str = Field(default="", description="what to do, said in every message, e.g. "
                                                "检查空调, 通知维保")
    on_delay: Duration = Field(default=0.0, ge=0)
    off_delay: Duration = Field(default=0.0, ge=0)
    enabled: bool = True


class ThresholdRule(RuleBase):
    kind: Literal["threshold"]
    high: float | None = None
    high_high: float | None = None
    low: float | None = None
    low_low: float | None = None
    deadband: float = Field(default=0.0, ge=0)
    severity_extreme: Severity = Field(default=Severity.CRITICAL,
                                       description="severity of high_high and low_low")

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRule:
        levels = [self.low_low, self.low, self.high, self.high_high]
        given = [v for v in levels if v is not None]
        if not given:
            raise ValueError("give at least one of high, high_high, low, low_low")
        if given != sorted(given) or len(set(given)) != len(given):
            raise ValueError("limits must rise strictly: low_low < low < high < high_high")
        return self


class StateRule(RuleBase):
    kind: Literal["state"]
    equals: list[Any] = Field(min_length=1, description="alarm while the value is one of these")


class RateRule(RuleBase):
    kind: Literal["rate"]
    max_per_minute: float = Field(gt=0, description="alarm when |change| per minute exceeds this")
    window: Duration = Field(default=60.0, gt=0)


class StaleRule(RuleBase):
    kind: Literal["stale"]
    max_age: Duration = Field(gt=0)


Rule = Annotated[ThresholdRule | StateRule | RateRule | StaleRule, Field(discriminator="kind")]


class OutboxConfig(Strict):
    max_bytes: ByteSize = Field(default=512 * 2**20, gt=0)
    max_age: Duration = Field(default=7 * 86400.0, gt=0)
    warn_ratio: float = Field(default=0.8, gt=0, lt=1)


class StoreConfig(Strict):
    retention_days: float = Field(default=30, gt=0)
    outbox: OutboxConfig = OutboxConfig()
    flush_interval: Duration = Field(default=0.2, gt=0, le=5)
    max_pending: int = Field(default=1_000_000, ge=1000,
                             description="readings held in memory while the disk refuses "
                                         "writes; beyond it the oldest are dropped (alarm)")


class SinkConfig(Strict):
    type: Literal["influxdb_v2", "influxdb_v1"]
    url: str = Field(pattern=r"^https?://")
    token: SecretRef | None = None
    org: str = "vigil"
    bucket: str = "vigil"
    database: str = "vigil"
    username: str | None = None
    password: SecretRef | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval: Duration = Field(default=1.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    retry_max: Duration = Field(default=60.0, gt=0)


MIN_TOKEN_LENGTH = 16
"""An API token shorter than this refuses to start."""


class ApiConfig(Strict):
    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = Field(default=8320, ge=1, le=65535)
    token: SecretRef | None = None
    hosts: list[str] = Field(default_factory=list, description=(
        "names people reach Vigil by, besides its addresses, localhost and the host of "
        "notify.public_url; a request for any other name is refused (DNS rebinding)"))
    trusted_proxies: list[str] = Field(default_factory=list, description=(
        "addresses or networks of the reverse proxies in front: only their "
        "X-Forwarded-For and X-Forwarded-Proto are believed (none by default)"))

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each as the network it names (``10.0.0.5/24`` is ``10.0.0.0/24``), the form the
        server matches addresses against."""
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError as err:
                raise ValueError(f"{item!r} is not an IP address or network") from err
        return out


class TrapUser(Strict):
    """An SNMPv3 user whose traps and informs are accepted."""

    user: str = Field(min_length=1)
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretRef | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretRef | None = None
    engine_id: str | None = Field(default=None, pattern=r"^(0x)?[0-9A-Fa-f]{10,64}$",
                                  description="the sender's engine id (hex), for v3 traps; "
                                              "informs need none")


class TrapConfig(Strict):
    """The SNMP trap and inform receiver."""

    listen: str = "0.0.0.0"
    port: int = Field(default=162, ge=1, le=65535)
    communities: list[SecretRef] = Field(default_factory=list, description="v1/v2c")
    users: list[TrapUser] = Field(default_factory=list, description="v3")
    accept_from: list[str] = Field(default_factory=list,
                                   description="sources besides the SNMP devices' hosts")
    receive_buffer: ByteSize = Field(default=32 * 2**20, ge=2**16,
                                     description="UDP buffer that holds a trap flood")


class ListenerConfig(Strict):
    """A push source: ``type`` a registered listener type (snmp_traps, ...), ``settings``
    checked by it. It serves the devices of its own type, and those of the types it binds."""

    name: Name
    type: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    _spec: Any = PrivateAttr(default=None)

    @property
    def spec(self) -> Any:
        """The source's validated view of ``settings``."""
        return self._spec


TRAPS = "snmp_traps"
"""The listener type (and name) the ``traps`` section is short for."""


class SiteConfig(Strict):
    """A whole site: what to watch, how to judge it, where to keep it."""

    site: SiteInfo
    data_dir: Path = Path("/var/lib/vigil")
    areas: list[Area] = Field(min_length=1)
    devices: list[DeviceConfig] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    store: StoreConfig = StoreConfig()
    sink: SinkConfig | None = None
    traps: TrapConfig | None = Field(default=None, description="short for a listener of type "
                                                                "snmp_traps with these settings")
    listeners: list[ListenerConfig] = Field(default_factory=list)
    power: PowerConfig = PowerConfig()
    actions: ActionsConfig = ActionsConfig()
    roles: list[Role] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    notify: NotifyConfig = NotifyConfig()
    inhibit: list[Inhibit] = Field(default_factory=list, description="besides the power "
                                                                     "topology's rules")
    playbooks: Path | None = Field(default=None, description="directory of playbook files "
                                                             "(*.yaml; relative to this file)")
    api: ApiConfig = ApiConfig()

    def device(self, name: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.name == name), None)

    def listening(self) -> list[ListenerConfig]:
        """The push sources to run: the enabled listeners, and the ``traps`` section's."""
        found = [x for x in self.listeners if x.enabled]
        if self.traps is not None:
            traps = ListenerConfig(name=TRAPS, type=TRAPS)
            traps._spec = self.traps
            found.append(traps)
        return found

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)
