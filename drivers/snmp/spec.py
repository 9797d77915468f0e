"""Config of an SNMP agent: the target, its credentials, and what to read."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from monitor.config.model import PointBase
from monitor.config.types import AuthProtocol, PrivProtocol, SecretRef, Strict

_OID = re.compile(r"^\d+(\.\d+)+$")
_NAME = re.compile(r"^[A-Za-z][\w-]*::[A-Za-z][\w-]*(\.\d+)*$")


class SnmpConnection(Strict):
    host: str
    port: int = Field(default=161, ge=1, le=65535)
    version: Literal["1", "2c", "3"] = "2c"
    community: SecretRef | None = Field(default=None, description="v1/v2c; public if left out")
    user: str | None = Field(default=None, description="v3 USM user")
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretRef | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretRef | None = None
    context: str = ""
    retries: int = Field(default=1, ge=0, le=5)
    max_repetitions: int = Field(default=25, ge=1, le=200)
    max_varbinds: int = Field(default=40, ge=1, le=100, description="OIDs per GET request")
    mib_dirs: list[str] = Field(default_factory=list,
                                description="folders of MIB source files for MIB names")

    @model_validator(mode="after")
    def _credentials(self) -> SnmpConnection:
        v3_keys = {"user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"}
        given = v3_keys & self.model_fields_set
        if self.version != "3":
            if given:
                raise ValueError(f"{', '.join(sorted(given))}: only for version 3")
            return self
        if self.community is not None:
            raise ValueError("community is for versions 1 and 2c; version 3 uses user")
        if not self.user:
            raise ValueError("version 3 needs user")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("give auth_protocol and auth_key together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("give priv_protocol and priv_key together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy needs authentication (authPriv)")
        return self


class SnmpPoint(PointBase):
    oid: str = Field(description="numeric (1.3.6.1.2.1.33.1.2.4.0) or MIB::name.index")
    scale: float = 1.0
    offset: float = 0.0
    map: dict[int, str] | None = Field(default=None, description="enumeration: number -> text")

    @model_validator(mode="after")
    def _oid_form(self) -> SnmpPoint:
        if not (_OID.match(self.oid) or _NAME.match(self.oid)):
            raise ValueError(f"oid {self.oid!r} is neither numeric (1.3.6.1...) nor "
                             f"MIB::name.index")
        return self


class SnmpSpec(Strict):
    connection: SnmpConnection
    profile: Literal["ups-mib"] | None = Field(
        default=None, description="ups-mib: RFC 1628 UPS-MIB onto the UPS model")
    points: list[SnmpPoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_read(self) -> SnmpSpec:
        if self.profile is None and not self.points:
            raise ValueError("give points, or a profile (ups-mib)")
        return self
