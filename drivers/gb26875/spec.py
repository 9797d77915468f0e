"""The ``gb26875`` listener's settings, and its devices: a transmission device by the source
address it sends from, with its fire systems' and components' points."""

from __future__ import annotations

from pydantic import Field, field_validator

from monitor.config.model import PointBase
from monitor.config.types import Duration, Strict


class Gb26875Settings(Strict):
    listen: str = Field(default="0.0.0.0", description="address to listen on (TCP and UDP)")
    port: int = Field(ge=1, le=65535, description="the standard names none: as the device "
                                                  "is set up")
    tcp: bool = True
    udp: bool = True
    idle: Duration = Field(default=600.0, gt=0, description="a TCP connection silent this "
                                                            "long is closed")
    quiet: Duration = Field(default=2.0, gt=0, description="bytes that make no whole frame "
                                                           "for this long are given up")
    max_connections: int = Field(default=2000, ge=1)


class Gb26875Point(PointBase):
    """A fire system's state (``system`` alone), or one of its components (a zone, a
    detector, a call point) by its address as the panel sends it."""

    system: int = Field(ge=0, le=255, description="系统地址")
    component: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{8}$",
                                  description="部件地址: 8 hex digits as events show it, in "
                                              "quotes (e.g. '000600d9')")

    @field_validator("component", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write the component address as 8 hex digits in quotes, e.g. "
                             "'000600d9' (YAML reads bare digits as a number, even octal)")
        return value

    @property
    def address(self) -> int | None:
        """The component's address as the frame carries it (4 bytes, low byte first)."""
        return None if self.component is None else int(self.component, 16)


class Gb26875Connection(Strict):
    address: str = Field(pattern=r"^[0-9a-fA-F]{12}$",
                         description="the source address it sends, 12 hex digits as sent")


class Gb26875Device(Strict):
    connection: Gb26875Connection
    points: list[Gb26875Point] = Field(default_factory=list)
