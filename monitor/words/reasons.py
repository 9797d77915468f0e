"""A driver's reason for a failed poll (English, for the log) said in Chinese for an alarm's
message: ``cannot connect to 10.0.0.5:502: Connection refused`` -> ``无法连接 10.0.0.5:502
(连接被拒绝)``. A reason the table does not know stays as it is."""

from __future__ import annotations

import re

_LEADS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), zh) for p, zh in (
    (r"no answer within (?P<n>[\d.]+) s", "{n} 秒内无应答"),
    (r"no result within (?P<n>[\d.]+) s", "{n} 秒内无结果"),
    (r"cannot connect to (?P<where>\S+?)(?:: (?P<why>.+))?", "无法连接 {where}"),
    (r"connection to (?P<where>\S+) lost(?:: (?P<why>.+))?", "与 {where} 的连接中断"),
    (r"(?P<where>\S+) closed the connection mid-reply", "{where} 在应答中途断开了连接"),
    (r"(?P<where>\S+) did not answer", "{where} 无应答"),
    (r"no answer from (?P<where>\S+?)(?: \((?P<why>.+)\))?", "{where} 无应答"),
    (r"(?P<where>upsd \S+): (?P<ups>\S+): ERR DATA-STALE", "{where}: {ups} 的数据已过期"),
    (r"(?P<where>upsd \S+): (?P<ups>\S+): ERR DRIVER-NOT-CONNECTED",
     "{where}: {ups} 的驱动未连接 UPS"),
    (r"(?P<where>upsd \S+): (?P<why>\w+: .*)", "与 {where} 通信失败"),
    (r"driver error: (?P<why>.+)", "驱动程序出错"),
))
"""Whole reasons: pattern -> Chinese; ``why``, when there is one, is said by ``_CAUSES``
in parentheses."""

_CAUSES = (
    (("Connection refused", "ConnectionRefusedError", "Connect call failed"), "连接被拒绝"),
    (("timed out", "TimeoutError"), "超时"),
    (("No route to host",), "无法路由到该主机"),
    (("Network is unreachable",), "网络不可达"),
    (("Connection reset", "ConnectionResetError"), "连接被对方重置"),
    (("EOFError", "IncompleteReadError", "Broken pipe", "BrokenPipeError"),
     "连接被对方关闭"),
    (("Name or service not known", "Temporary failure in name resolution",
      "nodename nor servname"), "无法解析主机名"),
    (("the agent is down or unreachable",), "设备的 SNMP 代理未运行、不可达或不接受此团体名"),
)
"""Causes as libraries and the OS say them -> Chinese; an unknown one is kept as said."""


def in_chinese(reason: str) -> str:
    """The reason said in Chinese where the tables know it, else as it is."""
    for pattern, zh in _LEADS:
        found = pattern.fullmatch(reason)
        if found is not None:
            parts = found.groupdict()
            why = parts.pop("why", None)
            said = zh.format(**parts)
            return f"{said} ({_cause(why)})" if why else said
    return reason


def _cause(why: str) -> str:
    return next((zh for said, zh in _CAUSES if any(s in why for s in said)), why)
