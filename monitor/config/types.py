"""Reusable config field types: durations, sizes, secret references."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
               "gib": 2**30, None: 1}


def parse_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 10s, 5m or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise ValueError("expected a duration such as 500ms, 10s, 5m or a number of seconds")


def _size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ValueError("expected a size such as 500MB, 2GiB or a number of bytes")


AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "3DES", "AES", "AES192", "AES256"]
"""SNMPv3 USM protocols."""

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; YAML may say ``500ms``, ``10s``, ``5m``, ``1h``, ``2d`` or a number."""

ByteSize = Annotated[int, BeforeValidator(_size)]


class Strict(BaseModel):
    """Base for config models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """A secret given by reference: ``{env: NAME}`` or ``{file: PATH}``; never by value."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_plain_values(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise ValueError("secrets are given by reference, {env: NAME} or {file: PATH}, "
                             "never written into the config")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def resolve(self) -> SecretStr:
        """The secret's value; raises ValueError naming the reference (not the value)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(value)
        assert self.file is not None
        try:
            text = self.file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ValueError(f"cannot read secret file {self.file}: {err.strerror}") from err
        if not text:
            raise ValueError(f"secret file {self.file} is empty")
        return SecretStr(text)
