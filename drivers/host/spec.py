"""Config of a host: its address, and the checks to run on it, each on its own interval."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.snmp.spec import SnmpConnection
from monitor.config.model import PointBase
from monitor.config.types import Duration, Strict

_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")


class HostConnection(Strict):
    host: str = Field(description="address or name")
    snmp: SnmpConnection | None = Field(
        default=None, description="for interface checks: version, community or v3 user; "
                                  "the host is this connection's")

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        if not _HOST.match(host):
            raise ValueError(f"{host[:60]!r} is not a host name or an IP address")
        return host

    @model_validator(mode="before")
    @classmethod
    def _snmp_host(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("snmp"), dict) \
                and "host" not in data["snmp"]:
            data = {**data, "snmp": {**data["snmp"], "host": data.get("host")}}
        return data


class CheckBase(PointBase):
    interval: Duration | None = Field(default=None, gt=0,
                                      description="default: the device's interval")
    timeout: Duration | None = Field(default=None, gt=0,
                                     description="default: the device's timeout")


class IcmpCheck(CheckBase):
    """Echo requests: up while any is answered. Readings KEY, KEY.rtt (ms), KEY.loss (%)."""

    check: Literal["icmp"]
    count: int = Field(default=3, ge=1, le=10)


class TcpCheck(CheckBase):
    """A TCP connect: up when it is accepted. Readings KEY, KEY.ms."""

    check: Literal["tcp"]
    port: int = Field(ge=1, le=65535)


class HttpCheck(CheckBase):
    """An HTTP(S) GET: up when the status is expected and the body holds ``expect_body``.
    Readings KEY, KEY.ms, KEY.status."""

    check: Literal["http"]
    url: str = Field(max_length=2000, description="http(s)://... or a path on the host (http)")
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="with a path: the host's port (80 by default)")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    expect_body: str | None = Field(default=None, min_length=1,
                                    description="text the first 64 KiB must contain")
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://", "/")):
            raise ValueError(f"{url[:60]!r}: give http://..., https://... or a path "
                             f"starting with / (asked of the host over http)")
        return url


class InterfaceCheck(CheckBase):
    """IF-MIB ifOperStatus of one interface (by ifIndex, or ifName/ifDescr) over SNMP: up
    when it is up. Readings KEY, KEY.status (up, down, lowerLayerDown, ...)."""

    check: Literal["interface"]
    interface: int | str = Field(description="ifIndex, or the interface's ifName or ifDescr")


Check = Annotated[IcmpCheck | TcpCheck | HttpCheck | InterfaceCheck,
                  Field(discriminator="check")]
CHECK_KINDS = frozenset({"icmp", "tcp", "http", "interface"})
_DETAIL = ("原因", "")
EXTRA: dict[str, dict[str, tuple[str, str]]] = {
    "icmp": {"rtt": ("往返时间", "ms"), "loss": ("丢包率", "%"), "detail": _DETAIL},
    "tcp": {"ms": ("连接时间", "ms"), "detail": _DETAIL},
    "http": {"ms": ("响应时间", "ms"), "status": ("HTTP 状态码", ""), "detail": _DETAIL},
    "interface": {"status": ("接口状态", ""), "detail": _DETAIL}}
"""The readings a check adds besides KEY (up or down): suffix -> (label, unit)."""


class HostSpec(Strict):
    connection: HostConnection
    points: list[Check] = Field(min_length=1, description="the checks")

    def described(self) -> dict[str, PointBase]:
        """Each check, and the readings it adds, with labels and units."""
        out: dict[str, PointBase] = {}
        for c in self.points:
            name = c.label or c.key
            out[c.key] = c
            for suffix, (label, unit) in EXTRA[c.check].items():
                out[f"{c.key}.{suffix}"] = PointBase(key=f"{c.key}.{suffix}",
                                                     label=f"{name} {label}", unit=unit)
        return out

    @model_validator(mode="after")
    def _snmp_for_interfaces(self) -> HostSpec:
        keys = [p.key for p in self.points if isinstance(p, InterfaceCheck)]
        if self.connection.snmp is None and keys:
            raise ValueError(f"interface checks ({', '.join(keys)}) need connection.snmp "
                             f"(version, community or v3 user)")
        return self
