"""Modbus UPS profiles: a register map in YAML, with a status word mapped onto NUT's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from drivers.modbus.spec import ModbusPoint, Table
from monitor.config.types import Strict
from monitor.devices.ups.status import STATUS_FLAGS

BUILTIN = Path(__file__).parent / "profiles"
STATUS_KEY = "ups.status"
WORD_KEY = "ups.status_word"


class StatusWord(Strict):
    table: Table
    address: int = Field(ge=0, le=65535)
    set: dict[int, str] = Field(default_factory=dict, description="bit -> flag while 1")
    clear: dict[int, str] = Field(default_factory=dict, description="bit -> flag while 0")

    @field_validator("set", "clear", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(isinstance(v, bool) for v in value.values()):
            raise ValueError("a flag read as true/false: quote it (YAML reads OFF and ON as "
                             "booleans)")
        return value

    @field_validator("set", "clear")
    @classmethod
    def _bits_and_flags(cls, value: dict[int, str]) -> dict[int, str]:
        for bit, flag in value.items():
            if not 0 <= bit <= 15:
                raise ValueError(f"bit {bit} is not in 0..15")
            if flag not in STATUS_FLAGS:
                raise ValueError(f"{flag!r} is not a NUT status flag "
                                 f"({' '.join(STATUS_FLAGS)})")
        return value

    def flags(self, word: int) -> str:
        out = [flag for bit, flag in sorted(self.clear.items()) if not word >> bit & 1]
        out += [flag for bit, flag in sorted(self.set.items()) if word >> bit & 1]
        return " ".join(dict.fromkeys(out))


class Profile(Strict):
    name: str
    description: str = ""
    points: list[ModbusPoint] = Field(default_factory=list)
    status: StatusWord | None = None


def load_profile(ref: str) -> Profile:
    """A built-in profile by name, or a YAML file by path; ValueError says what is wrong."""
    path = BUILTIN / f"{ref}.yaml" if "/" not in ref and not ref.endswith(".yaml") else Path(ref)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in BUILTIN.glob("*.yaml")))
        raise ValueError(f"no Modbus profile {ref!r} (built in: {known}; or a path to a "
                         f"YAML file)")
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Profile.model_validate(data)
    except (yaml.YAMLError, OSError) as err:
        raise ValueError(f"profile {path}: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"profile {path}: {where}: {first['msg']}") from err
