"""InfluxDB line protocol for readings, device status and events (schema in docs/storage.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_TAG_ESCAPE = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_MEAS_ESCAPE = str.maketrans({",": r"\,", " ": r"\ "})


def _field_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))  # always float: a field never changes type in InfluxDB
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def tag_set(tags: Mapping[str, str]) -> str:
    """``,k=v,...`` with keys sorted (InfluxDB's preferred order); empty values left out."""
    return "".join(f",{k.translate(_TAG_ESCAPE)}={v.translate(_TAG_ESCAPE)}"
                   for k, v in sorted(tags.items()) if v)


def line(measurement: str, tags: str, fields: Iterable[tuple[str, Any]], ts: float) -> str | None:
    """One line, or None when no field has a value to write. ``tags`` comes from tag_set."""
    parts = []
    for key, value in fields:
        text = _field_value(value)
        if text is not None:
            parts.append(f"{key.translate(_TAG_ESCAPE)}={text}")
    if not parts:
        return None
    return f"{measurement.translate(_MEAS_ESCAPE)}{tags} {','.join(parts)} {int(ts * 1e9)}"
