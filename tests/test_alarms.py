"""Alarm lifecycle (ISA-18.2), delays that survive a restart, and the rule kinds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from monitor.alarms.facts import AlarmFacts
from monitor.alarms.inhibit import Inhibition
from monitor.alarms.manager import AlarmError, AlarmManager, alarm_log
from monitor.alarms.model import AlarmDef, AlarmState
from monitor.alarms.rules import RuleEngine
from monitor.config.model import (
    PointBase,
    RateRule,
    Severity,
    StaleRule,
    StateRule,
    ThresholdRule,
)
from monitor.core.bus import AlarmEvent, Bus
from monitor.core.model import Quality, Reading
from monitor.core.store import Store
from monitor.core.timers import Timers, name
from tests.conftest import config, modbus_device
from tests.util import eventually


def manager(store: Store, *defs: AlarmDef) -> AlarmManager:
    timers = Timers(store)
    m = AlarmManager(store, Bus(), timers)
    for d in defs:
        m.define(d)
    timers.start()
    return m


async def restarted(store: Store, *defs: AlarmDef) -> AlarmManager:
    """An alarm manager as the daemon starts one: stored timers and alarms loaded, armed."""
    timers = Timers(store)
    m = AlarmManager(store, Bus(), timers)
    for d in defs:
        m.define(d)
    await timers.load()
    await m.load()
    timers.start()
    return m


async def test_lifecycle_raise_ack_clear(store: Store) -> None:
    m = manager(store, AlarmDef("hot", Severity.MAJOR, "机房温度偏高"))
    m.set_condition("hot", True, 30.0)
    assert m.alarms["hot"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    await m.acknowledge("hot", "张三", "空调已报修")
    assert m.alarms["hot"].state() is AlarmState.ACTIVE_ACKNOWLEDGED
    with pytest.raises(AlarmError, match="was already acknowledged by 张三 at 20"):
        await m.acknowledge("hot", "李四")                  # the second is told who was first
    m.set_condition("hot", False, 25.0)
    assert m.alarms["hot"].state() is AlarmState.NORMAL
    assert m.current() == []
    # raised again and cleared before anyone acknowledged: cleared-unacknowledged
    m.set_condition("hot", True, 31.0)
    m.set_condition("hot", False, 25.0)
    assert m.alarms["hot"].state() is AlarmState.CLEARED_UNACKNOWLEDGED
    assert [a.id for a in m.current()] == ["hot"]
    await m.acknowledge("hot", "张三")
    assert m.alarms["hot"].state() is AlarmState.NORMAL
    log = await store.call(lambda c: alarm_log(c, "hot", 100))
    assert [e["action"] for e in reversed(log)] == [
        "raised", "acknowledged", "cleared", "raised", "cleared", "acknowledged"]
    assert log[-2]["who"] == "张三" and log[-2]["note"] == "空调已报修"


async def test_unknown_alarm_is_an_operator_error(store: Store) -> None:
    with pytest.raises(AlarmError, match="no alarm 'nope'"):
        await manager(store).acknowledge("nope", "张三")


async def test_shelving_expires(store: Store) -> None:
    m = manager(store, AlarmDef("door", Severity.MINOR, "门未关"))
    m.set_condition("door", True, True)
    await m.shelve("door", "王五", "装修期间", 0.2)
    assert m.alarms["door"].state() is AlarmState.SHELVED
    await eventually(lambda: m.alarms["door"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED, 3)
    log = await store.call(lambda c: alarm_log(c, "door", 10))
    assert log[0]["action"] == "unshelved" and log[0]["who"] == "system"


async def test_on_delay_needs_the_condition_to_hold(store: Store) -> None:
    m = manager(store, AlarmDef("hot", Severity.MAJOR, "hot", on_delay=0.3, off_delay=0.3))
    m.set_condition("hot", True, 30)
    await asyncio.sleep(0.1)
    m.set_condition("hot", False, 20)      # a blip shorter than the delay raises nothing
    await asyncio.sleep(0.4)
    assert not m.alarms["hot"].active
    m.set_condition("hot", True, 30)
    assert not m.alarms["hot"].active       # not before the delay
    await eventually(lambda: m.alarms["hot"].active, 3)
    m.set_condition("hot", False, 20)
    assert m.alarms["hot"].active           # off delay holds it
    await eventually(lambda: not m.alarms["hot"].active, 3)


async def test_pending_delay_survives_a_restart(tmp_path: Path) -> None:
    defn = AlarmDef("hot", Severity.MAJOR, "hot", on_delay=0.5)
    store = Store(tmp_path, 0.02)
    m = manager(store, defn)
    m.set_condition("hot", True, 30, now=time.time())
    await asyncio.sleep(0.1)
    store.close()                           # the daemon stops 0.1 s into a 0.5 s delay
    store = Store(tmp_path, 0.02)
    m2 = await restarted(store, defn)
    assert m2.timers.get("alarm", name("hot", "on")) is not None
    await asyncio.sleep(0.5)
    assert not m2.alarms.get("hot") or not m2.alarms["hot"].active  # no reading yet
    m2.set_condition("hot", True, 31)       # the first reading after the due time raises at once
    assert m2.alarms["hot"].active
    store.close()


async def test_active_alarm_and_ack_survive_a_restart(tmp_path: Path) -> None:
    defn = AlarmDef("hot", Severity.MAJOR, "hot")
    store = Store(tmp_path, 0.02)
    m = manager(store, defn)
    m.set_condition("hot", True, 30)
    await m.acknowledge("hot", "张三")
    store.close()
    store = Store(tmp_path, 0.02)
    m2 = await restarted(store, defn)
    assert m2.alarms["hot"].state() is AlarmState.ACTIVE_ACKNOWLEDGED
    assert m2.alarms["hot"].acked_by == "张三"
    store.close()


def r(value: object, ts: float, quality: Quality = Quality.GOOD) -> Reading:
    return Reading("env.t", value, ts, quality)  # type: ignore[arg-type]


async def test_threshold_levels_and_deadband(store: Store) -> None:
    m = manager(store)
    engine = RuleEngine([ThresholdRule(name="t", point="env.t", kind="threshold", high=27,
                                       high_high=32, low=10, deadband=1)], m)
    now = time.time()
    engine.on_readings([r(27.5, now)])
    assert m.alarms["t.high"].active and not m.alarms["t.high_high"].active
    engine.on_readings([r(26.5, now + 1)])   # inside the deadband: still high
    assert m.alarms["t.high"].active
    engine.on_readings([r(33, now + 2)])
    assert m.alarms["t.high_high"].active
    assert m.alarms["t.high_high"].severity == "critical"
    engine.on_readings([r(25.9, now + 3)])
    assert not m.alarms["t.high"].active and not m.alarms["t.high_high"].active
    engine.on_readings([r(None, now + 4, Quality.INVALID), r(5, now + 5, Quality.COMM_LOST)])
    assert not m.alarms["t.low"].active      # bad-quality readings judge nothing
    engine.on_readings([r(9, now + 6)])
    assert m.alarms["t.low"].active


async def test_state_rate_and_stale_rules(store: Store) -> None:
    m = manager(store)
    engine = RuleEngine([
        StateRule(name="s", point="env.t", kind="state", equals=["OB", True]),
        RateRule(name="rate", point="env.t", kind="rate", max_per_minute=6, window=20),
        StaleRule(name="stale", point="env.t", kind="stale", max_age=10)], m)
    now = time.time()
    engine.on_readings([r("OL", now)])
    assert not m.alarms["s"].active
    engine.on_readings([r("OB", now + 1)])
    assert m.alarms["s"].active
    engine.on_readings([r(20.0, now + 2), r(25.0, now + 3)])    # 1 s: too short to judge
    assert "rate" not in m.alarms or not m.alarms["rate"].active
    engine.on_readings([r(20.5, now + 12)])                     # 3 per minute over 10 s
    assert not m.alarms["rate"].active
    engine.on_readings([r(23.0, now + 22)])                     # 9 per minute over 20 s
    assert m.alarms["rate"].active
    engine.tick(now + 30)
    assert not m.alarms["stale"].active
    engine.tick(now + 33)                   # last good reading at now + 22
    assert m.alarms["stale"].active
    engine.on_readings([r(23.1, now + 34)])
    assert not m.alarms["stale"].active


async def test_a_shelve_that_expired_while_stopped_ends_at_start(tmp_path: Path) -> None:
    defn = AlarmDef("door", Severity.MINOR, "门未关")
    store = Store(tmp_path, 0.02)
    m = manager(store, defn)
    m.set_condition("door", True, True)
    await m.shelve("door", "王五", "装修期间", 0.3)
    store.close()
    await asyncio.sleep(0.5)                # the shelving ends while the daemon is down
    store = Store(tmp_path, 0.02)
    m2 = await restarted(store, defn)
    await eventually(lambda: m2.alarms["door"].shelved_until is None, 2)
    assert m2.alarms["door"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    log = await store.call(lambda c: alarm_log(c, "door", 10))
    assert (log[0]["action"], log[0]["who"], log[0]["note"]) == (
        "unshelved", "system", "shelving expired")
    store.close()


async def test_shelving_ends_on_the_monotonic_clock(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    m = manager(store, AlarmDef("door", Severity.MINOR, "门未关"))
    m.set_condition("door", True, True)
    await m.shelve("door", "王五", "", 0.3)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # the wall clock jumps back 1 h
    await eventually(lambda: m.alarms["door"].shelved_until is None, 2)
    assert m.alarms["door"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED


async def test_transitions_go_onto_the_bus_with_who_and_why(store: Store) -> None:
    m = manager(store, AlarmDef("hot", Severity.MAJOR, "机房温度偏高"))
    sub = m.bus.subscribe("test", kinds=(AlarmEvent,))
    m.set_condition("hot", True, 30.0)
    await m.acknowledge("hot", "张三", "空调已报修")
    m.set_condition("hot", False, 25.0)
    events = list(sub.queue)
    assert [(e.action, e.state) for e in events] == [
        ("raised", "active_unacknowledged"), ("acknowledged", "active_acknowledged"),
        ("cleared", "normal")]
    assert (events[1].who, events[1].note) == ("张三", "空调已报修")


async def test_an_inhibition_rule_suppresses_while_its_source_holds(
        store: Store, tmp_path: Path) -> None:
    """A rule of the site's own: door alarms of an area are held back while a fire alarm of
    the same area holds (everyone runs out through the doors); other areas' are not."""
    point = {"key": "x", "table": "coil", "address": 0}
    cfg = config(tmp_path, [modbus_device(n, port, [point], cls=c, area=a) for n, c, a, port in (
        ("panel", "fire_panel", "office", 1502), ("door1", "door", "office", 1503),
        ("door2", "door", "entrance", 1504))], areas=[{"name": "office"}, {"name": "entrance"}],
        inhibit=[{"source": {"alarm": ["fire:"]}, "target": {"device_class": ["door"]},
                  "equal": ["area"], "note": "火警疏散"}])
    m = manager(store, AlarmDef("fire:panel", Severity.CRITICAL, "办公区 火警", device="panel"),
                AlarmDef("comm:door1", Severity.MAJOR, "门禁1 通信中断", device="door1"),
                AlarmDef("comm:door2", Severity.MAJOR, "门禁2 通信中断", device="door2"))
    m.inhibitor = Inhibition(cfg, AlarmFacts(cfg))
    m.set_condition("fire:panel", True)
    m.set_condition("comm:door1", True)
    m.set_condition("comm:door2", True)
    assert m.alarms["comm:door1"].state() is AlarmState.SUPPRESSED
    assert m.alarms["comm:door1"].suppressed_by == "火警疏散 (办公区 火警)"
    assert m.alarms["comm:door2"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    m.set_condition("fire:panel", False)                  # the source goes: judged again
    assert m.alarms["comm:door1"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    m.set_condition("fire:panel", True)                   # and comes back
    assert m.alarms["comm:door1"].state() is AlarmState.SUPPRESSED
    assert m.alarms["fire:panel"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED


async def test_a_latched_alarm_stays_until_acknowledged(store: Store) -> None:
    m = manager(store, AlarmDef("auth:ups1", Severity.MAJOR, "认证失败", latched=True))
    m.set_condition("auth:ups1", True, "trap")
    assert m.alarms["auth:ups1"].state() is AlarmState.ACTIVE_UNACKNOWLEDGED
    await m.acknowledge("auth:ups1", "张三")
    assert m.alarms["auth:ups1"].state() is AlarmState.NORMAL
    m.set_condition("auth:ups1", True, "trap")          # the next one raises it again
    assert m.alarms["auth:ups1"].active


async def test_alarms_of_removed_definitions_are_retired(store: Store) -> None:
    m = manager(store, AlarmDef("comm:old", Severity.MAJOR, "旧设备通信中断"))
    m.set_condition("comm:old", True)
    m.undefine(["comm:old"])
    assert m.retire_undefined() == ["comm:old"]
    assert "comm:old" not in m.alarms and m.current() == []
    log = await store.call(lambda c: alarm_log(c, "comm:old", 10))
    assert log[0]["action"] == "retired" and "no longer configured" in log[0]["note"]
    assert await store.call(lambda c: c.execute("SELECT COUNT(*) FROM alarms").fetchone()) == (0,)


async def test_rule_messages_use_labels_direction_words_and_spoken_durations(
        store: Store) -> None:
    m = manager(store)
    RuleEngine([
        ThresholdRule(name="t", point="env.t", kind="threshold", high=27, message="机房温度"),
        ThresholdRule(name="h", point="env.h", kind="threshold", low=30),
        StaleRule(name="s", point="env.t", kind="stale", max_age=5400)], m,
        {"env.t": PointBase(key="t", label="机房温度", unit="°C"),
         "env.h": PointBase(key="h", label="机房湿度", unit="%RH")})
    assert m.defs["t.high"].message == "机房温度偏高 (限值 27)"
    assert m.defs["h.low"].message == "机房湿度偏低 (限值 30)"
    assert m.defs["s"].message == "机房温度 超过 1 小时 30 分没有有效数据"
