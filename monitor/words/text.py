"""Words for people: durations as they are said, and a point's value as a person reads it."""

from __future__ import annotations

import math

from monitor.core.model import Value
from monitor.words.labels import boolean_word
from monitor.words.report import Language


def spoken_duration(seconds: float, language: str = "zh-CN") -> str:
    """``5400`` -> ``1 小时 30 分``; ``120`` -> ``2 分钟``; ``45`` -> ``45 秒``
    (English: ``1 h 30 min``, ``2 min``, ``45 s``)."""
    if language == "en":
        return _english(round(seconds))
    s = round(seconds)
    if s < 60:
        return f"{s} 秒"
    if s < 3600:
        minutes, rest = divmod(s, 60)
        return f"{minutes} 分钟" + (f" {rest} 秒" if rest else "")
    if s < 86400:
        hours, rest = divmod(s, 3600)
        return f"{hours} 小时" + (f" {rest // 60} 分" if rest // 60 else "")
    days, rest = divmod(s, 86400)
    return f"{days} 天" + (f" {rest // 3600} 小时" if rest // 3600 else "")


def _english(s: int) -> str:
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")
    return f"{s // 86400} d" + (f" {s % 86400 // 3600} h" if s % 86400 // 3600 else "")


def number(value: float) -> str:
    """``23.456`` -> ``23.5``, ``0.123`` -> ``0.12``, ``1234.5`` -> ``1234``; integers as
    they are."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    size = abs(value)
    return f"{value:.0f}" if size >= 1000 else f"{value:.1f}" if size >= 1 or size == 0 \
        else f"{value:.2f}"


def quantity(value: float, unit: str, language: Language = "zh-CN") -> str:
    """A number with its unit; seconds as a spoken duration (``5400`` s -> ``1 小时 30 分``)."""
    if unit == "s" and math.isfinite(value):
        return spoken_duration(value, language)
    return f"{number(value)} {unit}" if unit else number(value)


def display(value: Value, unit: str, language: Language = "zh-CN",
            meaning: str = "flag") -> str:
    """What a person reads for a point's value: a boolean as the words of what it means
    (``meaning``: 报警/正常, 开/关, ...), numbers rounded with their unit, durations spoken,
    and ``—`` for no value (a device class may say its own values first:
    ``monitor.devices.words.display``)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return boolean_word(meaning, value, language)
    if isinstance(value, int | float):
        return quantity(value, unit, language)
    return value
