"""Every word the console shows has a label in both languages: event kinds (found in the
source, so a new kind without a label fails here), states, classes and the UPS model; values
said as people say them; limit alarms with their direction word; the API's labels."""

from __future__ import annotations

import re
import time
import typing
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.profile import WORD_KEY
from monitor.alarms.model import AlarmState
from monitor.alarms.rules import LEVELS
from monitor.config.directory import Contact
from monitor.config.model import Severity
from monitor.core.model import DeviceState, Quality, Reading
from monitor.devices import words
from monitor.devices.base import classes
from monitor.devices.ups.status import EVENTS, FLAG_WORDS, STATUS_FLAGS, VARIABLES
from monitor.words import labels
from monitor.words.reasons import in_chinese
from tests.conftest import config
from tests.fixtures import api as client

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")


def source(*folders: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in folders
                     for p in sorted((ROOT / d).rglob("*.py")))


def published_event_kinds() -> set[str]:
    """Kinds given as literals where events are made (DeviceEvent, a feed's or the core's
    ``event``, the UPS watcher's ``record``, an action's ``kind=``), and every NUT event."""
    text = source("monitor", "drivers")
    made = re.findall(r'(?:DeviceEvent|\.event|\.record)\(\s*[^,()]+,\s*"([A-Z_]+)"', text)
    given = re.findall(r'\bkind="([A-Z_]+)"', text)
    return {*made, *given, *EVENTS}


def assert_both(table: dict[str, labels.Pair], ids: typing.Iterable[str]) -> None:
    for key in ids:
        assert key in table, f"{key} has no label"
        zh, en = table[key]
        assert zh and en, key


def test_every_event_kind_the_code_publishes_has_labels() -> None:
    kinds = published_event_kinds()
    assert {"COMMBAD", "COMMOK", "AUTH_FAILURE", "ACK_LINK_REFUSED", "SHUTDOWN",
            "PLAYBOOK_ACTION", "ONBATT", "NOCOMM"} <= kinds   # the scan finds each way
    assert_both(words.events(), kinds)
    assert all(CJK.search(words.events()[k][0]) for k in kinds)


def test_every_enum_value_has_labels() -> None:
    engine = (ROOT / "monitor/playbooks/engine.py").read_text(encoding="utf-8")
    statuses = set(re.findall(r'\bstatus\b[^=\n]*= \(?"(\w+)"', engine))
    assert statuses == {"running", "recovery", "closed"}
    channels = typing.get_args(Contact.model_fields["channel"].annotation)
    for table, ids in ((labels.SEVERITY, Severity), (labels.ALARM_STATE, AlarmState),
                       (labels.DEVICE_STATE, DeviceState), (labels.QUALITY, Quality),
                       ({n: c.label for n, c in classes().items()},
                        ("ups", "environment", "leak", "fire_panel", "door", "camera", "nvr",
                         "host")), (labels.INCIDENT_STATUS, statuses),
                       (labels.CHANNEL, channels), (labels.LEVEL, LEVELS),
                       (FLAG_WORDS, STATUS_FLAGS)):
        assert_both(table, [str(i) for i in ids])


def test_a_ups_canonical_points_have_labels_and_units() -> None:
    mib = (ROOT / "drivers/snmp/upsmib.py").read_text(encoding="utf-8")
    keys = {*VARIABLES, WORD_KEY, *re.findall(r'out\["([a-z_.]+)"\]', mib)}
    assert "ups.time_on_battery" in keys
    for key in keys:
        zh, en = words.point_words("ups", key)[0], words.point_words("ups", key, "en")[0]
        assert CJK.search(zh) and en, key
    assert words.point_words("ups", "battery.runtime") == ("剩余时间", "s")
    assert words.point_words("ups", "battery.runtime", "en") == ("runtime", "s")
    assert words.point_words("environment", "battery.runtime") == ("", "")


@pytest.mark.parametrize(("cls", "key", "value", "unit", "zh", "en"), [
    ("ups", "battery.runtime", 5400, "s", "1 小时 30 分", "1 h 30 min"),
    ("ups", "battery.runtime", 45.0, "s", "45 秒", "45 s"),
    ("fire_panel", "zone1.alarm", True, "", "报警", "alarm"),
    ("fire_panel", "zone1.alarm", False, "", "正常", "normal"),
    ("fire_panel", "zone2.fault", True, "", "故障", "fault"),
    ("door", "entrance.open", True, "", "开", "open"),
    ("door", "entrance.open", False, "", "关", "closed"),
    ("host", "web", True, "", "正常", "up"),
    ("host", "web", False, "", "故障", "down"),
    ("leak", "floor", True, "", "漏水", "leak"),
    ("environment", "water_leak", False, "", "正常", "dry"),
    ("environment", "fan_running", True, "", "是", "yes"),
    ("ups", "ups.status", "OB LB", "", "电池供电、电池电量低", "on battery, low battery"),
    ("environment", "humidity", 29.04, "%RH", "29.0 %RH", "29.0 %RH"),
    ("ups", "input.voltage", 230.44, "V", "230.4 V", "230.4 V"),
    ("ups", "ups.realpower", 1234.5, "W", "1234 W", "1234 W"),
    ("ups", "battery.charge", 85, "%", "85 %", "85 %"),
    ("host", "web.loss", 0.123, "", "0.12", "0.12"),
    ("host", "web.detail", "HTTP 503", "", "HTTP 503", "HTTP 503"),
    ("ups", "battery.charge", None, "%", "—", "—"),
    ("ups", "battery.runtime", float("nan"), "s", "nan s", "nan s"),
])
def test_values_as_people_read_them(cls: str, key: str, value: Any, unit: str, zh: str,
                                    en: str) -> None:
    assert words.display(cls, key, value, unit) == zh
    assert words.display(cls, key, value, unit, "en") == en


@pytest.mark.parametrize(("reason", "said"), [
    ("cannot connect to 127.0.0.1:15993", "无法连接 127.0.0.1:15993"),
    ("cannot connect to 10.0.0.5:502: [Errno 111] Connection refused",
     "无法连接 10.0.0.5:502 (连接被拒绝)"),
    ("no answer within 0.5 s", "0.5 秒内无应答"),
    ("connection to 10.0.0.5:502 lost: [Errno 104] Connection reset by peer",
     "与 10.0.0.5:502 的连接中断 (连接被对方重置)"),
    ("10.0.0.5:502 did not answer", "10.0.0.5:502 无应答"),
    ("no answer from 10.0.0.9:161 (the agent is down or unreachable, or ignores this "
     "community)", "10.0.0.9:161 无应答 (设备的 SNMP 代理未运行、不可达或不接受此团体名)"),
    ("upsd 127.0.0.1:3493: ConnectionRefusedError: [Errno 111] Connect call failed "
     "('127.0.0.1', 3493)", "与 upsd 127.0.0.1:3493 通信失败 (连接被拒绝)"),
    ("upsd 127.0.0.1:3493: ups1: ERR DATA-STALE", "upsd 127.0.0.1:3493: ups1 的数据已过期"),
    ("cannot connect to /dev/ttyUSB0: something odd", "无法连接 /dev/ttyUSB0 (something odd)"),
    ("a reason nobody wrote down", "a reason nobody wrote down"),
])
def test_driver_reasons_said_in_chinese(reason: str, said: str) -> None:
    assert in_chinese(reason) == said


def site(tmp_path: Path, language: str = "zh-CN") -> Any:
    return config(tmp_path, [
        {"name": "ups1", "label": "机房 UPS", "area": "machine_room", "class": "ups",
         "type": "nut", "enabled": False,
         "connection": {"host": "127.0.0.1", "port": 1, "ups": "ups1"}},
        {"name": "office_env", "label": "办公区温湿度", "area": "office",
         "class": "environment", "type": "modbus", "enabled": False,
         "connection": {"host": "127.0.0.1", "port": 1},
         "points": [{"key": "humidity", "label": "办公区湿度", "unit": "%RH",
                     "table": "holding", "address": 1}]},
        {"name": "fire", "label": "消防主机", "area": "machine_room", "class": "fire_panel",
         "type": "modbus", "enabled": False, "connection": {"host": "127.0.0.1", "port": 1},
         "points": [{"key": "zone1.alarm", "label": "1 号防区火警",
                     "table": "discrete_input", "address": 0}]}],
        [{"name": "office_humidity", "point": "office_env.humidity", "kind": "threshold",
          "low_low": 20, "low": 30, "high": 70, "severity": "minor", "message": "办公区湿度"},
         {"name": "ups_runtime", "point": "ups1.battery.runtime", "kind": "threshold",
          "low": 600},
         {"name": "ups_load", "point": "ups1.ups.load", "kind": "threshold", "high": 80,
          "message": "UPS 负载过高"}],
        site={"name": "test", "language": language},
        areas=[{"name": "machine_room", "purpose": "machine_room"},
               {"name": "office", "label": "办公区", "purpose": "office"}])


@pytest.mark.parametrize(("language", "expected"), [
    ("zh-CN", {"office_humidity.high": "办公区湿度偏高 (限值 70)",
               "office_humidity.low": "办公区湿度偏低 (15.0 %RH, 限值 30)",
               "office_humidity.low_low": "办公区湿度过低 (15.0 %RH, 限值 20)",
               "ups_runtime.low": "机房 UPS 剩余时间偏低 (5 分钟, 限值 10 分钟)",
               "ups_load.high": "UPS 负载过高 (85.0 %, 限值 80)"}),  # its own word
    ("en", {"office_humidity.high": "办公区湿度 high (limit 70)",
            "office_humidity.low": "办公区湿度 low (15.0 %RH, limit 30)",
            "office_humidity.low_low": "办公区湿度 very low (15.0 %RH, limit 20)",
            "ups_runtime.low": "机房 UPS runtime low (5 min, limit 10 min)",
            "ups_load.high": "UPS 负载过高 high (85.0 %, limit 80)"}),
])
async def test_a_limit_alarm_says_its_direction(tmp_path: Path, daemon_factory: Any,
                                               language: str, expected: dict[str, str]) -> None:
    daemon = await daemon_factory(site(tmp_path, language))
    now = time.time()
    daemon.core.rules.on_readings([Reading("office_env.humidity", 15.0, now),
                                   Reading("ups1.battery.runtime", 300, now),
                                   Reading("ups1.ups.load", 85, now)])
    said = {a: daemon.alarms.alarms[a].message if a in daemon.alarms.alarms
            else daemon.alarms.defs[a].message for a in expected}
    assert said == expected
    assert not daemon.alarms.is_active("office_humidity.high")


async def test_the_api_gives_labels_and_values_as_people_read_them(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    now = time.time()
    daemon.state.update([Reading("ups1.ups.status_word", 3, now),
                         Reading("ups1.battery.runtime", 5400, now),
                         Reading("ups1.ups.status", "OL CHRG", now),
                         Reading("office_env.humidity", 29.04, now),
                         Reading("fire.zone1.alarm", True, now)])
    daemon.core.rules.on_readings([Reading("office_env.humidity", 25.0, now)])
    async with client(daemon) as api:
        points = {p["id"]: p for p in (await api.get("/api/v1/points")).json()}
        english = {p["id"]: p for p in
                   (await api.get("/api/v1/points", params={"lang": "en"})).json()}
        devices = {d["name"]: d for d in (await api.get("/api/v1/devices")).json()}
        alarms = {a["id"]: a for a in (await api.get("/api/v1/alarms")).json()}
        words = (await api.get("/api/v1/labels", params={"lang": "en"})).json()
        assert (await api.get("/api/v1/labels", params={"lang": "fr"})).status_code == 422
        anon = await api.get("/api/v1/labels", headers={"Authorization": ""})
        assert anon.status_code == 401
    said = {pid: (p["label"], p["unit"], p["display"]) for pid, p in points.items()}
    assert said["ups1.ups.status_word"] == ("状态字", "", "3")
    assert said["ups1.battery.runtime"] == ("剩余时间", "s", "1 小时 30 分")
    assert said["ups1.ups.status"] == ("UPS 状态", "", "市电供电、充电中")
    assert said["office_env.humidity"] == ("办公区湿度", "%RH", "29.0 %RH")  # configured
    assert said["fire.zone1.alarm"] == ("1 号防区火警", "", "报警")
    assert points["fire.zone1.alarm"]["value"] is True                         # ids stay
    assert points["fire.zone1.alarm"]["quality_label"] == "正常"
    assert (english["ups1.battery.runtime"]["label"], english["ups1.battery.runtime"]["display"],
            english["fire.zone1.alarm"]["display"]) == ("runtime", "1 h 30 min", "alarm")
    assert {n: (d["area_label"], d["class_label"], d["state_label"])
            for n, d in devices.items()} == {"ups1": ("机房", "UPS", "已停用"),
                                             "office_env": ("办公区", "温湿度", "已停用"),
                                             "fire": ("机房", "消防主机", "已停用")}
    low = alarms["office_humidity.low"]
    assert low["message"] == "办公区湿度偏低 (25.0 %RH, 限值 30)"
    assert (low["severity"], low["state"]) == ("minor", "active_unacknowledged")
    assert (low["severity_label"], low["state_label"], low["area_label"], low["class_label"],
            low["device_label"]) == ("次要", "未确认", "办公区", "温湿度", "办公区温湿度")
    assert words["language"] == "en" and words["severity"]["critical"] == "critical"
    assert words["event"]["ONBATT"] == "on battery"
    assert words["boolean"]["open"] == {"true": "open", "false": "closed"}
    assert words["device_class"]["fire_panel"] == "fire panel"
    assert [(s["kind"], s["text"]) for s in words["situations"]][:2] == [
        ("fire", "FIRE"), ("power", "Mains lost")]           # the worst first


@pytest.mark.parametrize(("language", "expected"), [
    ("zh-CN", {"zone1_fire": "1 号防区火警: 报警",
               "humidity_fast": "办公区湿度 变化过快 (> 5/分钟)",
               "humidity_silent": "办公区湿度 超过 10 分钟没有有效数据"}),
    ("en", {"zone1_fire": "1 号防区火警: alarm",
            "humidity_fast": "办公区湿度 changing too fast (> 5/min)",
            "humidity_silent": "办公区湿度: no valid data for over 10 min"}),
])
async def test_state_rate_and_stale_alarms_speak_the_sites_language(
        tmp_path: Path, daemon_factory: Any, language: str, expected: dict[str, str]) -> None:
    cfg = site(tmp_path, language)
    data = cfg.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    rules = [{"name": "zone1_fire", "point": "fire.zone1.alarm", "kind": "state",
              "equals": [True]},
             {"name": "humidity_fast", "point": "office_env.humidity", "kind": "rate",
              "max_per_minute": 5, "window": 60},
             {"name": "humidity_silent", "point": "office_env.humidity", "kind": "stale",
              "max_age": 600}]
    daemon = await daemon_factory(config(tmp_path, data.pop("devices"), rules, **{
        k: v for k, v in data.items() if k in ("site", "areas")}))
    assert {r: daemon.alarms.defs[r].message for r in expected} == expected


@pytest.mark.parametrize(("language", "lost", "battery", "paging"), [
    ("zh-CN", "机房 UPS 通信中断: 与 upsd 127.0.0.1:", "机房 UPS 电池供电",
     "通知发送全部失败, 无人收到告警"),
    ("en", "机房 UPS: communication lost: upsd 127.0.0.1:", "机房 UPS on battery",
     "no message got through: nobody heard")])
async def test_vigils_own_alarms_are_said_in_the_sites_language(
        tmp_path: Path, daemon_factory: Any, language: str, lost: str, battery: str,
        paging: str) -> None:
    from tests import peers
    from tests.util import eventually

    cfg = config(tmp_path, [{"name": "ups1", "label": "机房 UPS", "area": "machine_room",
                             "class": "ups", "type": "nut", "interval": 0.2, "timeout": 0.1,
                             "failures_before_unavailable": 1,
                             "connection": {"host": "127.0.0.1", "port": peers.free_port(),
                                            "ups": "ups1"}}],
                 site={"name": "test", "language": language})
    daemon = await daemon_factory(cfg)
    await eventually(lambda: daemon.alarms.is_active("comm:ups1"), 5)
    assert daemon.alarms.alarms["comm:ups1"].message.startswith(lost)
    assert daemon.alarms.defs["power:ups1"].message == battery
    assert daemon.alarms.defs["notify:failed"].message == paging
    assert bool(CJK.search(daemon.alarms.defs["store:recreated"].advice)) is (language == "zh-CN")
