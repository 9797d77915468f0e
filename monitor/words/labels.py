"""What people read instead of ids, in zh-CN and English: severities, states, qualities,
event kinds, incident statuses and timeline lines, alarm journal lines, channels, limit
directions, area purposes, the words each kind of boolean point is said in, and the
console's own words. A device class brings its own words (``monitor.devices.words``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from monitor.words.console import CONSOLE
from monitor.words.report import Language, words

Pair = tuple[str, str]
"""(zh-CN, en)"""

SEVERITY: dict[str, Pair] = {
    "critical": ("紧急", "critical"), "major": ("重要", "major"), "minor": ("次要", "minor"),
    "warning": ("警告", "warning"), "info": ("提示", "info")}

ALARM_STATE: dict[str, Pair] = {
    "active_unacknowledged": ("未确认", "unacknowledged"),
    "active_acknowledged": ("已确认", "acknowledged"),
    "cleared_unacknowledged": ("已恢复未确认", "cleared, unacknowledged"),
    "normal": ("正常", "normal"), "shelved": ("已搁置", "shelved"),
    "suppressed": ("已抑制", "suppressed")}

DEVICE_STATE: dict[str, Pair] = {
    "online": ("在线", "online"), "protocol_error": ("应答异常", "answers wrongly"),
    "unavailable": ("通信中断", "unreachable"), "disabled": ("已停用", "disabled"),
    "unknown": ("未知", "unknown")}

ZONE_STATE: dict[str, Pair] = {
    "normal": ("正常", "normal"), "alarm": ("火警", "fire alarm"), "fault": ("故障", "fault"),
    "disabled": ("屏蔽", "disabled"), "supervisory": ("监管", "supervisory"),
    "start": ("启动", "started"), "feedback": ("反馈", "feedback"), "delay": ("延时", "delay")}
"""What a fire system's or a fire panel component's state reads as."""
QUALITY: dict[str, Pair] = {
    "good": ("正常", "good"), "stale": ("过期", "stale"),
    "comm_lost": ("通信中断", "communication lost"), "invalid": ("无效", "invalid")}

EVENT: dict[str, Pair] = {
    "COMMOK": ("通信恢复", "communication restored"),
    "COMMBAD": ("通信中断", "communication lost"),
    "PLAYBOOK_ACTION": ("预案动作", "playbook action"),
    "AUTH_FAILURE": ("认证失败", "authentication failure"),
    "ACK_LINK_REFUSED": ("确认链接被拒绝", "acknowledgement link refused"),
    "LOGIN_FAILED": ("登录失败", "failed sign-in")}
"""The kinds of ``DeviceEvent`` every device may have (a device class adds its own)."""

INCIDENT_STATUS: dict[str, Pair] = {
    status: (words("zh-CN")[status], words("en")[status])
    for status in ("running", "recovery", "closed")}

TIMELINE: dict[str, Pair] = {
    key[2:]: (said, words("en")[key]) for key, said in words("zh-CN").items()
    if key.startswith("k.")}
"""What each kind of line of an incident's timeline means."""

CHANNEL: dict[str, Pair] = {
    "inbox": ("站内信", "inbox"), "email": ("邮件", "e-mail"), "wecom": ("企业微信", "WeCom"),
    "dingtalk": ("钉钉", "DingTalk"), "feishu": ("飞书", "Feishu"), "sms": ("短信", "SMS"),
    "webhook": ("Webhook", "webhook"), "mqtt": ("MQTT", "MQTT"), "other": ("其他", "other"),
    "none": ("无渠道", "no channel")}
"""How a message went; ``none``: it found nobody to go to."""

LEVEL: dict[str, Pair] = {
    "high_high": ("过高", "very high"), "high": ("偏高", "high"), "low": ("偏低", "low"),
    "low_low": ("过低", "very low")}
"""A threshold's direction, said in its alarm's message."""

AREA_PURPOSE: dict[str, Pair] = {
    "machine_room": ("机房", "machine room"), "work_area": ("作业区", "work area"),
    "office": ("办公区", "office"), "entrance": ("入口", "entrance"),
    "archive_room": ("档案室", "archive room")}
"""What an area without a label is called, by its purpose."""





BOOLEAN: dict[str, tuple[Pair, Pair]] = {
    "alarm": (("报警", "正常"), ("alarm", "normal")),
    "fault": (("故障", "正常"), ("fault", "normal")),
    "open": (("开", "关"), ("open", "closed")),
    "leak": (("漏水", "正常"), ("leak", "dry")),
    "check": (("正常", "故障"), ("up", "down")),
    "flag": (("是", "否"), ("yes", "no"))}
"""Meaning -> ((zh-CN true, false), (en true, false)); see ``boolean_meaning``."""
AT_REST = {"check": True}
"""The value of a true/false point at rest, by meaning (a passing check is true; else
false)."""

ALARM_ACTION: dict[str, Pair] = {
    "raised": ("报警", "raised"), "cleared": ("恢复", "cleared"),
    "acknowledged": ("确认", "acknowledged"), "shelved": ("搁置", "shelved"),
    "unshelved": ("取消搁置", "unshelved"), "suppressed": ("抑制", "suppressed"),
    "unsuppressed": ("解除抑制", "unsuppressed"), "retired": ("撤销", "withdrawn"),
    "noted": ("备注", "note")}
"""What happened to an alarm, as its journal (``alarm_log``) says."""

TABLES: dict[str, Mapping[str, Pair]] = {
    "severity": SEVERITY, "alarm_state": ALARM_STATE, "alarm_action": ALARM_ACTION,
    "device_state": DEVICE_STATE,
    "quality": QUALITY, "event": EVENT,
    "incident_status": INCIDENT_STATUS, "channel": CHANNEL, "level": LEVEL,
    "area_purpose": AREA_PURPOSE, "timeline": TIMELINE,
    "console": CONSOLE}


def _i(language: Language) -> int:
    return 1 if language == "en" else 0


def label(table: Mapping[str, Pair], key: str, language: Language = "zh-CN") -> str:
    """``key``'s word in ``language``; the key itself where the table has none."""
    pair = table.get(key)
    return pair[_i(language)] if pair else key


def table(which: Mapping[str, Pair], language: Language = "zh-CN") -> dict[str, str]:
    return {key: pair[_i(language)] for key, pair in which.items()}


def boolean_meaning(key: str, otherwise: str = "flag") -> str:
    """What a true/false point means, from its key's last word: ``...alarm`` a fire zone's
    alarm, ``...fault`` a fault input, ``...open`` a door or contact, a key naming ``leak``
    water; else what its device's class says (``otherwise``: ``leak`` for a leak detector,
    ``check`` for a host check, true while it passes), else a plain yes/no."""
    last = re.split(r"[._]", key)[-1]
    if last in ("alarm", "fault", "open"):
        return last
    return "leak" if "leak" in key else otherwise


def boolean_word(meaning: str, value: bool, language: Language = "zh-CN") -> str:
    return BOOLEAN[meaning][_i(language)][0 if value else 1]


def area_label(name: str, given: str, purpose: str, language: Language = "zh-CN") -> str:
    """An area as people call it: its label, else its purpose's word, else its name."""
    return given or (label(AREA_PURPOSE, purpose, language) if purpose in AREA_PURPOSE
                     else name)


def all_labels(language: Language) -> dict[str, Any]:
    """Every table in one language (for the console's JavaScript)."""
    i = _i(language)
    return {**{name: table(t, language) for name, t in TABLES.items()},
            "boolean": {m: {"true": said[i][0], "false": said[i][1]}
                        for m, said in BOOLEAN.items()}}
