"""One UPS model whatever the protocol: NUT's status flags and NUT's event vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

UPS = "ups"
"""The class's name."""

STATUS_FLAGS: dict[str, str] = {
    "OL": "市电供电", "OB": "电池供电", "LB": "电池电量低", "HB": "电池电量高",
    "RB": "需更换电池", "CHRG": "充电中", "DISCHRG": "放电中", "BYPASS": "旁路供电",
    "CAL": "校准中", "OFF": "输出关闭", "OVER": "过载", "TRIM": "降压", "BOOST": "升压",
    "FSD": "强制关机", "ALARM": "告警", "WAIT": "等待驱动数据",
}

EVENTS: dict[str, tuple[str, str]] = {
    "ONLINE": ("市电恢复, UPS 回到市电供电", "mains restored, the UPS is back on mains"),
    "ONBATT": ("市电中断, UPS 转电池供电", "mains lost, the UPS is on battery"),
    "LOWBATT": ("UPS 电池电量低", "the UPS's battery is low"),
    "FSD": ("UPS 强制关机 (FSD)", "the UPS forces a shutdown (FSD)"),
    "COMMOK": ("与 UPS 通信恢复", "communication with the UPS restored"),
    "COMMBAD": ("与 UPS 通信中断", "communication with the UPS lost"),
    "NOCOMM": ("长时间无法与 UPS 通信", "no communication with the UPS for long"),
    "REPLBATT": ("UPS 电池需要更换", "the UPS's battery needs replacing"),
    "BYPASS": ("UPS 转旁路供电", "the UPS is on bypass"),
    "OVERLOAD": ("UPS 过载", "the UPS is overloaded"),
}
"""What each event says in the timeline, in zh-CN and English."""

EVENT_FLAGS = {"ONBATT": "OB", "LOWBATT": "LB", "FSD": "FSD", "REPLBATT": "RB",
               "BYPASS": "BYPASS", "OVERLOAD": "OVER"}
"""The status flag an event implies (a trap may announce it before the next poll shows it)."""

_RAISED_BY = (("LB", "LOWBATT"), ("FSD", "FSD"), ("RB", "REPLBATT"), ("BYPASS", "BYPASS"),
              ("OVER", "OVERLOAD"))

VARIABLES = frozenset("""
ups.status ups.alarm ups.load ups.temperature ups.realpower ups.power ups.test.result
ups.beeper.status ups.delay.shutdown ups.timer.shutdown ups.mfr ups.model ups.serial
ups.firmware battery.charge battery.charge.low battery.charge.warning battery.runtime
battery.runtime.low battery.voltage battery.voltage.nominal battery.temperature battery.date
battery.type battery.current input.voltage input.voltage.nominal input.frequency input.current
input.transfer.low input.transfer.high input.load output.voltage output.voltage.nominal
output.frequency output.current output.load device.mfr device.model device.serial device.type
""".split())
"""NUT's standard variable names: the canonical point keys of the ``ups`` device class."""



@dataclass(frozen=True)
class Status:
    """A parsed ``ups.status``: its flags, and what is wrong with it."""

    flags: frozenset[str]
    problems: tuple[str, ...] = ()

    @property
    def on_battery(self) -> bool:
        """OB wins over OL: a UPS that claims both is treated as on battery."""
        return "OB" in self.flags


def parse_status(text: str) -> Status:
    flags = frozenset(text.split())
    problems = []
    if {"OL", "OB"} <= flags:
        problems.append("ups.status reports OL and OB at once; taken as on battery (OB)")
    unknown = sorted(flags - STATUS_FLAGS.keys())
    if unknown:
        problems.append(f"ups.status has unknown flags: {' '.join(unknown)}")
    return Status(flags, tuple(problems))


def status_events(before: Status | None, now: Status) -> list[str]:
    """Events for the change from ``before`` to ``now``; at first sight only what is wrong."""
    was_battery = before.on_battery if before else False
    had = before.flags if before else frozenset()
    events = []
    if now.on_battery and not was_battery:
        events.append("ONBATT")
    elif was_battery and not now.on_battery and "OL" in now.flags:
        events.append("ONLINE")
    events += [event for flag, event in _RAISED_BY if flag in now.flags and flag not in had]
    return events


_FLAGS_EN = {
    "OL": "on mains", "OB": "on battery", "LB": "low battery", "HB": "high battery",
    "RB": "replace battery", "CHRG": "charging", "DISCHRG": "discharging",
    "BYPASS": "on bypass", "CAL": "calibrating", "OFF": "output off", "OVER": "overloaded",
    "TRIM": "trimming voltage", "BOOST": "boosting voltage", "FSD": "forced shutdown",
    "ALARM": "alarm", "WAIT": "waiting for driver data"}
FLAG_WORDS: dict[str, tuple[str, str]] = {flag: (zh, _FLAGS_EN[flag])
                                         for flag, zh in STATUS_FLAGS.items()}
"""Each status flag in zh-CN and English."""

POINT_WORDS: dict[str, tuple[str, str, str]] = {
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

EVENT_WORDS: dict[str, tuple[str, str]] = {
    "ONLINE": ("市电恢复", "mains restored"), "ONBATT": ("电池供电", "on battery"),
    "LOWBATT": ("电池电量低", "low battery"), "FSD": ("强制关机", "forced shutdown"),
    "NOCOMM": ("长时间无通信", "no communication"),
    "REPLBATT": ("需更换电池", "replace battery"), "BYPASS": ("旁路供电", "on bypass"),
    "OVERLOAD": ("过载", "overload"), "SHUTDOWN": ("关机动作", "shutdown action")}
"""The events of a UPS (NUT's, and power's shutdown actions) in zh-CN and English."""


@dataclass(frozen=True, slots=True)
class UpsStatusChanged:
    """(On the bus) a UPS's parsed ``ups.status`` (flags) changed or was seen for the first time."""

    device: str
    flags: frozenset[str]
    ts: float

    @property
    def on_battery(self) -> bool:
        return "OB" in self.flags
