"""Config of a UPS read through upsd (NUT)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monitor.config.model import PointBase
from monitor.config.types import SecretRef, Strict


class NutConnection(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=3493, ge=1, le=65535)
    ups: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="name in ups.conf")
    tls: Literal["off", "try", "require"] = Field(
        default="try", description="STARTTLS: try (plain if upsd has no TLS), require, off")
    ca_file: str | None = Field(default=None, description="verify upsd's certificate with it")
    username: str | None = None
    password: SecretRef | None = None
    login: bool = Field(default=False,
                        description="LOGIN as a secondary monitor (upsd counts Vigil)")

    @model_validator(mode="after")
    def _credentials(self) -> NutConnection:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together")
        if self.login and self.username is None:
            raise ValueError("login needs username and password")
        return self


class NutPoint(PointBase):
    var: str | None = Field(default=None, description="NUT variable; the key by default")


class NutSpec(Strict):
    connection: NutConnection
    points: list[NutPoint] = Field(default_factory=list,
                                   description="none: every variable upsd reports")
