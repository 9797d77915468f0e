"""Words for people: durations as they are said."""

from __future__ import annotations


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
