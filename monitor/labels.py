"""What people read instead of ids, in zh-CN and English: severities, states, qualities,
device classes, event kinds, incident statuses and timeline lines, alarm journal lines,
channels, limit directions, area purposes, UPS status flags and variables, the words each
kind of boolean point is said in, and the console's own words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from monitor.console import CONSOLE
from monitor.playbooks.words import Language, words
from monitor.ups import STATUS_FLAGS

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

QUALITY: dict[str, Pair] = {
    "good": ("正常", "good"), "stale": ("过期", "stale"),
    "comm_lost": ("通信中断", "communication lost"), "invalid": ("无效", "invalid")}

DEVICE_CLASS: dict[str, Pair] = {
    "ups": ("UPS", "UPS"), "environment": ("温湿度", "environment"), "leak": ("漏水", "leak"),
    "fire_panel": ("消防主机", "fire panel"), "door": ("门禁", "door"),
    "camera": ("摄像机", "camera"), "nvr": ("录像机", "NVR"), "host": ("主机", "host")}

EVENT: dict[str, Pair] = {
    "ONLINE": ("市电恢复", "mains restored"), "ONBATT": ("电池供电", "on battery"),
    "LOWBATT": ("电池电量低", "low battery"), "FSD": ("强制关机", "forced shutdown"),
    "COMMOK": ("通信恢复", "communication restored"),
    "COMMBAD": ("通信中断", "communication lost"),
    "NOCOMM": ("长时间无通信", "no communication"),
    "REPLBATT": ("需更换电池", "replace battery"), "BYPASS": ("旁路供电", "on bypass"),
    "OVERLOAD": ("过载", "overload"), "SHUTDOWN": ("关机动作", "shutdown action"),
    "PLAYBOOK_ACTION": ("预案动作", "playbook action"),
    "AUTH_FAILURE": ("认证失败", "authentication failure"),
    "ACK_LINK_REFUSED": ("确认链接被拒绝", "acknowledgement link refused"),
    "LOGIN_FAILED": ("登录失败", "failed sign-in")}
"""Every kind of ``DeviceEvent`` Vigil publishes."""

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

_FLAGS_EN = {
    "OL": "on mains", "OB": "on battery", "LB": "low battery", "HB": "high battery",
    "RB": "replace battery", "CHRG": "charging", "DISCHRG": "discharging",
    "BYPASS": "on bypass", "CAL": "calibrating", "OFF": "output off", "OVER": "overloaded",
    "TRIM": "trimming voltage", "BOOST": "boosting voltage", "FSD": "forced shutdown",
    "ALARM": "alarm", "WAIT": "waiting for driver data"}
UPS_FLAG: dict[str, Pair] = {flag: (zh, _FLAGS_EN[flag]) for flag, zh in STATUS_FLAGS.items()}

UPS_POINT: dict[str, tuple[str, str, str]] = {
    "ups.status": ("UPS 状态", "UPS status", ""),
    "ups.status_word": ("状态字", "status word", ""),
    "ups.alarm": ("UPS 告警", "UPS alarms", ""),
    "ups.load": ("负载", "load", "%"),
    "ups.temperature": ("机内温度", "internal temperature", "°C"),
    "ups.realpower": ("有功功率", "real power", "W"),
    "ups.power": ("视在功率", "apparent power", "VA"),
    "ups.test.result": ("自检结果", "self-test result", ""),
    "ups.beeper.status": ("蜂鸣器", "beeper", ""),
    "ups.delay.shutdown": ("关机延时", "shutdown delay", "s"),
    "ups.timer.shutdown": ("关机倒计时", "shutdown timer", "s"),
    "ups.time_on_battery": ("电池供电时长", "time on battery", "s"),
    "ups.mfr": ("制造商", "manufacturer", ""),
    "ups.model": ("型号", "model", ""),
    "ups.serial": ("序列号", "serial number", ""),
    "ups.firmware": ("固件版本", "firmware", ""),
    "battery.charge": ("电池电量", "battery charge", "%"),
    "battery.charge.low": ("低电量阈值", "low battery charge", "%"),
    "battery.charge.warning": ("电量警告阈值", "battery charge warning", "%"),
    "battery.runtime": ("剩余时间", "runtime", "s"),
    "battery.runtime.low": ("低剩余时间阈值", "low runtime", "s"),
    "battery.voltage": ("电池电压", "battery voltage", "V"),
    "battery.voltage.nominal": ("电池额定电压", "nominal battery voltage", "V"),
    "battery.temperature": ("电池温度", "battery temperature", "°C"),
    "battery.date": ("电池安装日期", "battery date", ""),
    "battery.type": ("电池类型", "battery type", ""),
    "battery.current": ("电池电流", "battery current", "A"),
    "input.voltage": ("输入电压", "input voltage", "V"),
    "input.voltage.nominal": ("额定输入电压", "nominal input voltage", "V"),
    "input.frequency": ("输入频率", "input frequency", "Hz"),
    "input.current": ("输入电流", "input current", "A"),
    "input.transfer.low": ("低压转换点", "low transfer voltage", "V"),
    "input.transfer.high": ("高压转换点", "high transfer voltage", "V"),
    "input.load": ("输入负载", "input load", "%"),
    "output.voltage": ("输出电压", "output voltage", "V"),
    "output.voltage.nominal": ("额定输出电压", "nominal output voltage", "V"),
    "output.frequency": ("输出频率", "output frequency", "Hz"),
    "output.current": ("输出电流", "output current", "A"),
    "output.load": ("输出负载", "output load", "%"),
    "device.mfr": ("设备制造商", "device manufacturer", ""),
    "device.model": ("设备型号", "device model", ""),
    "device.serial": ("设备序列号", "device serial number", ""),
    "device.type": ("设备类型", "device type", "")}
"""A UPS's canonical points (NUT's variable names): label in zh-CN, in English, and unit,
for points the configuration gives none."""

BOOLEAN: dict[str, tuple[Pair, Pair]] = {
    "alarm": (("报警", "正常"), ("alarm", "normal")),
    "fault": (("故障", "正常"), ("fault", "normal")),
    "open": (("开", "关"), ("open", "closed")),
    "leak": (("漏水", "正常"), ("leak", "dry")),
    "check": (("正常", "故障"), ("up", "down")),
    "flag": (("是", "否"), ("yes", "no"))}
"""Meaning -> ((zh-CN true, false), (en true, false)); see ``boolean_meaning``."""

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
    "quality": QUALITY, "device_class": DEVICE_CLASS, "event": EVENT,
    "incident_status": INCIDENT_STATUS, "channel": CHANNEL, "level": LEVEL,
    "area_purpose": AREA_PURPOSE, "ups_flag": UPS_FLAG, "timeline": TIMELINE,
    "console": CONSOLE}


def _i(language: Language) -> int:
    return 1 if language == "en" else 0


def label(table: Mapping[str, Pair], key: str, language: Language = "zh-CN") -> str:
    """``key``'s word in ``language``; the key itself where the table has none."""
    pair = table.get(key)
    return pair[_i(language)] if pair else key


def table(which: Mapping[str, Pair], language: Language = "zh-CN") -> dict[str, str]:
    return {key: pair[_i(language)] for key, pair in which.items()}


def boolean_meaning(device_class: str, key: str) -> str:
    """What a true/false point means, from its key's last word and its device's class:
    ``...alarm`` a fire zone's alarm, ``...fault`` a fault input, ``...open`` a door or
    contact, a key naming ``leak`` (or a leak detector's point) water, a host's check (its
    own key is true while the check passes); anything else is a plain yes/no."""
    last = re.split(r"[._]", key)[-1]
    if last in ("alarm", "fault", "open"):
        return last
    if "leak" in key or device_class == "leak":
        return "leak"
    return "check" if device_class == "host" else "flag"


def boolean_word(device_class: str, key: str, value: bool, language: Language = "zh-CN") -> str:
    return BOOLEAN[boolean_meaning(device_class, key)][_i(language)][0 if value else 1]


def default_point(device_class: str, key: str, language: Language = "zh-CN") -> tuple[str, str]:
    """(label, unit) of a point the configuration leaves without them; ``("", "")`` where
    Vigil knows none (only a UPS's canonical points have them)."""
    known = UPS_POINT.get(key) if device_class == "ups" else None
    return (known[_i(language)], known[2]) if known else ("", "")


def area_label(name: str, given: str, purpose: str, language: Language = "zh-CN") -> str:
    """An area as people call it: its label, else its purpose's word, else its name."""
    return given or (label(AREA_PURPOSE, purpose, language) if purpose in AREA_PURPOSE
                     else name)


def all_labels(language: Language) -> dict[str, Any]:
    """Every table in one language (for the console's JavaScript)."""
    i = _i(language)
    return {**{name: table(t, language) for name, t in TABLES.items()},
            "boolean": {m: {"true": said[i][0], "false": said[i][1]}
                        for m, said in BOOLEAN.items()},
            "ups_point": {key: {"label": p[i], "unit": p[2]} for key, p in UPS_POINT.items()}}
