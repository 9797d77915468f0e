"""The services every part attaches to: the bus, durable timers, the supervisor, the action
runner, push sources and the executor-backed driver base."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from drivers.base import (
    ExecutorDriver,
    PollResult,
)
from monitor.alarms.health import health
from monitor.config.actions import Action
from monitor.config.model import PointBase
from monitor.core.actions import ActionRunner
from monitor.core.bus import Bus, DeviceEvent
from monitor.core.model import Reading
from monitor.core.store import Store
from monitor.core.supervisor import Supervisor
from monitor.core.timers import Timers
from monitor.demo.simulator import serve_sim
from tests import peers
from tests.conftest import config, modbus_device
from tests.servers.http_receiver import Receiver
from tests.util import eventually

# -- bus ---------------------------------------------------------------------------------


async def test_a_slow_subscriber_delays_nobody_and_loses_nothing() -> None:
    bus = Bus()
    slow_seen: list[int] = []
    fast_seen: list[int] = []

    async def slow(event: DeviceEvent) -> None:
        await asyncio.sleep(0.05)
        slow_seen.append(int(event.message))
    tasks = [asyncio.create_task(bus.subscribe("slow", slow).run()),
             asyncio.create_task(bus.subscribe("fast", lambda e: fast_seen.append(
                 int(e.message))).run())]
    started = time.monotonic()
    for n in range(20):
        bus.publish(DeviceEvent("d", "X", str(n), 0.0))
    assert time.monotonic() - started < 0.05          # publishing never waits
    await eventually(lambda: len(fast_seen) == 20, 1)
    assert len(slow_seen) < 5                          # the slow one is still at it
    await eventually(lambda: slow_seen == list(range(20)), 5)
    for t in tasks:
        t.cancel()


async def test_a_failing_subscriber_is_counted_and_keeps_receiving(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    failures: list[str] = []
    bus.on_error.set(lambda sub: failures.append(sub.name))
    seen: list[str] = []

    def picky(event: DeviceEvent) -> None:
        if event.kind == "BAD":
            raise ValueError("cannot handle this")
        seen.append(event.kind)
    sub = bus.subscribe("picky", picky)
    task = asyncio.create_task(sub.run())
    for kind in ("A", "BAD", "B"):
        bus.publish(DeviceEvent("d", kind, "", 0.0))
    await eventually(lambda: seen == ["A", "B"], 2)
    assert sub.errors == 1 and failures == ["picky"]
    assert "bus subscriber picky failed on DeviceEvent" in caplog.text
    task.cancel()


async def test_a_full_queue_drops_its_oldest_and_says_so() -> None:
    bus = Bus()
    overflows: list[int] = []
    bus.on_overflow.set(lambda sub: overflows.append(sub.dropped))
    sub = bus.subscribe("tiny", kinds=(DeviceEvent,), maxsize=3)
    bus.publish("not a device event")                  # other kinds never reach it
    for n in range(5):
        bus.publish(DeviceEvent("d", "X", str(n), 0.0))
    assert [e.message for e in sub.queue] == ["2", "3", "4"]
    assert overflows == [1, 2]


# -- durable timers ----------------------------------------------------------------------


async def test_timers_are_rearmed_and_overdue_ones_fire_once_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path, 0.02)
    timers = Timers(store)
    timers.start()
    now = time.time()
    timers.arm("test", "soon", now + 0.3)
    timers.arm("test", "later", now + 60)
    timers.arm("test", "gone", now + 0.2)
    timers.cancel("test", "gone")
    await store.committed()
    timers.stop()
    store.close()
    await asyncio.sleep(0.5)                           # "soon" is due while we are down
    store = Store(tmp_path, 0.02)
    timers = Timers(store)
    fired: list[tuple[str, float]] = []
    timers.on("test", lambda name: fired.append((name, time.time())))
    await timers.load()
    started = time.time()
    timers.start()
    await eventually(lambda: len(fired) == 1, 1)
    assert fired[0][0] == "soon" and fired[0][1] - started < 0.1
    assert "timer test:soon was due" in caplog.text and "ago, while the daemon was down" \
        in caplog.text
    assert timers.pending("test") == {"later": pytest.approx(now + 60)}
    await asyncio.sleep(0.2)
    assert len(fired) == 1                             # once
    rows = await store.call(lambda c: c.execute("SELECT key FROM timers").fetchall())
    assert rows == [("test:later",)]
    timers.stop()
    store.close()


async def test_a_timer_fires_on_the_monotonic_clock(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    timers = Timers(store)
    fired: list[str] = []
    timers.on("t", fired.append)
    timers.start()
    timers.arm("t", "x", time.time() + 0.3)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)   # the wall clock jumps ahead 1 h
    await asyncio.sleep(0.1)
    assert fired == []                                 # not early
    await eventually(lambda: fired == ["x"], 1)
    timers.stop()


# -- supervisor --------------------------------------------------------------------------


async def test_a_dead_task_is_restarted_and_reported() -> None:
    faults: list[tuple[str, str | None]] = []
    sup = Supervisor(lambda name, why: faults.append((name, why)), backoff=0.05,
                     stable_after=0.3)
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)
    sup.spawn("flaky", flaky)
    await eventually(lambda: len(runs) == 3, 2)
    assert faults == [("flaky", "RuntimeError: boom")] * 2
    await eventually(lambda: faults[-1] == ("flaky", None), 2)   # runs again: recovered
    await sup.stop()
    assert sup.tasks == {}


# -- action runner -----------------------------------------------------------------------


async def runner(dry_run: bool = False, language: str = "en"
                 ) -> tuple[ActionRunner, list[DeviceEvent]]:
    bus = Bus()
    events: list[DeviceEvent] = []
    asyncio.create_task(bus.subscribe("test", events.append).run())  # noqa: RUF006
    return ActionRunner(bus, Supervisor(lambda name, reason: None),
                        lambda: [sys.executable, "/bin/sleep"], lambda: dry_run,
                        lambda: language), events


def action(**kw: Any) -> Action:
    return Action.model_validate({"name": "a1", **kw})


@pytest.mark.parametrize(("language", "refusal", "late"), [
    ("en", "refused: /bin/rm is not in actions.allowed_commands", "timed out after 0.2 s"),
    ("zh-CN", "已拒绝: /bin/rm 不在 actions.allowed_commands 中", "0.2 秒内未完成")])
async def test_commands_run_as_argv_and_every_attempt_is_recorded(
        tmp_path: Path, language: str, refusal: str, late: str) -> None:
    run, events = await runner(language=language)
    marker = tmp_path / "x; rm -rf /"
    result = await run.run(action(command=[sys.executable, "-c",
                                           "import sys; open(sys.argv[1], 'w').write('ok')",
                                           str(marker)]),
                           subject="ups1", kind="SHUTDOWN", why="test")
    # the argument was never a shell word
    assert result.ok and await asyncio.to_thread(marker.read_text) == "ok"
    refused = await run.run(action(command=["/bin/rm", "-rf", str(tmp_path)]),
                            subject="ups1", kind="SHUTDOWN", why="test")
    assert not refused.ok and await asyncio.to_thread(tmp_path.exists)
    assert refused.detail == refusal
    slow = await run.run(action(command=["/bin/sleep", "10"], timeout=0.2),
                         subject="ups1", kind="SHUTDOWN", why="test")
    assert not slow.ok and slow.detail == late and slow.duration < 2
    await eventually(lambda: len(events) == 3, 2)
    assert [e.message.split(": ")[0] for e in events] == ["a1 (test)"] * 3
    assert events[0].message == "a1 (test): exit 0" and events[0].kind == "SHUTDOWN"


async def test_http_actions_and_dry_run() -> None:
    receiver = Receiver().start()
    try:
        run, _ = await runner()
        call = action(http={"url": f"{receiver.url}/off", "body": {"host": "pc1"}})
        result = await run.run(call, subject="ups1", kind="SHUTDOWN", why="drill")
        assert result.ok and result.detail == "HTTP 204"
        assert receiver.requests[0].body == b'{"host":"pc1"}'
        dry = await run.run(call, subject="ups1", kind="SHUTDOWN", why="drill", dry_run=True)
        assert dry.ok and dry.dry_run and len(receiver.requests) == 1
        assert dry.detail == f"dry run, nothing run: would POST {receiver.url}/off"
        drill_runner, _ = await runner(dry_run=True)   # actions.dry_run: nothing runs at all
        await drill_runner.run(call, subject="ups1", kind="SHUTDOWN", why="drill")
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()


# -- blocking drivers -----------------------------------------------------


class SleepySpec(BaseModel):
    connection: dict[str, Any] = {}
    points: list[PointBase] = []


class Sleepy(ExecutorDriver):
    """Blocks its thread for 0.3 s per read, like an OpenCV frame check."""

    type_name = "sleepy"
    spec_model = SleepySpec

    def point_keys(self) -> list[str]:
        return ["temperature"]

    def read(self) -> PollResult:
        time.sleep(0.3)
        return PollResult([Reading(f"{self.device.name}.temperature", 21.0, time.time())])


async def test_blocking_reads_run_off_the_event_loop() -> None:
    devices = [type("Device", (), {"name": f"cam{i}", "spec": None})() for i in range(4)]
    drivers = [Sleepy(d) for d in devices]  # type: ignore[arg-type]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)
    tick = asyncio.create_task(ticker())
    started = time.monotonic()
    results = await asyncio.gather(*(d.poll() for d in drivers))
    took = time.monotonic() - started
    tick.cancel()
    assert [r.readings[0].value for r in results] == [21.0] * 4
    assert took < 0.6              # four 0.3 s reads side by side in the pool
    assert ticks > 15              # and the loop kept running meanwhile


# -- in the daemon -----------------------------------------------------------------------


async def test_a_task_that_dies_is_an_internal_alarm_and_degrades_health(
        tmp_path: Path, daemon_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = await daemon_factory(config(tmp_path, []))
    daemon.ctx.supervisor.backoff, daemon.ctx.supervisor.stable_after = 0.1, 0.5
    real_tick = daemon.core.tick
    deaths = 0

    def broken_tick(now: float) -> None:
        nonlocal deaths
        if deaths < 2:
            deaths += 1
            raise RuntimeError("tick broke")
        real_tick(now)
    monkeypatch.setattr(daemon.core, "tick", broken_tick)
    await eventually(lambda: daemon.alarms.is_active("internal:ticker"), 3)
    report = health(daemon.alarms)
    assert report["status"] == "degraded"
    assert any(r.startswith("internal:ticker: 内部任务 ticker 异常退出") and "tick broke" in r
               for r in report["reasons"])
    await eventually(lambda: not daemon.alarms.is_active("internal:ticker"), 5)
    assert health(daemon.alarms)["status"] == "ok" and deaths == 2
    metrics = daemon.ctx.metrics.render().decode()
    assert 'vigil_task_restarts_total{task="ticker"} 2.0' in metrics


async def test_stale_rules_fire_while_the_store_is_stuck(tmp_path: Path,
                                                         daemon_factory: Any) -> None:
    port = peers.free_port()
    server = await serve_sim(port, bits=16, registers=16)
    daemon = await daemon_factory(config(
        tmp_path, [modbus_device("env", port, [{"key": "t", "table": "holding", "address": 0}],
                                 interval=0.1, timeout=0.05)],
        [{"name": "t_stale", "point": "env.t", "kind": "stale", "max_age": 1}]))
    await eventually(lambda: "env.t" in daemon.state.latest)
    daemon.store.submit(lambda c: time.sleep(4))   # the writer is stuck for 4 s
    await server.shutdown()                         # and the device goes quiet
    started = time.monotonic()
    await eventually(lambda: daemon.alarms.is_active("t_stale"), 3)
    assert time.monotonic() - started < 3           # judged while the store is still stuck


async def test_a_stream_subscriber_hears_nothing_then_everything_that_came() -> None:
    """What the live stream reads: silence within the wait is [] (then it says ping), and
    a burst comes as one batch, in order."""
    from monitor.core.bus import Bus, DeviceEvent

    bus = Bus()
    sub = bus.subscribe("stream", kinds=(DeviceEvent,), maxsize=10, lossy=True)
    assert await sub.drain(0.05) == []
    sent = [DeviceEvent("ups1", "ONBATT", f"第 {n} 次", float(n)) for n in range(3)]
    for event in sent:
        bus.publish(event)
    assert await sub.drain(0.05) == sent
    sub.close()


async def test_a_second_handler_is_refused_not_put_in_the_firsts_place(store: Store) -> None:
    timers, bus = Timers(store), Bus()
    timers.on("shutdown", lambda name: None)
    with pytest.raises(RuntimeError, match="timers of kind 'shutdown' have a handler already"):
        timers.on("shutdown", lambda name: None)
    heard: list[str] = []
    bus.on_overflow.set(lambda sub: heard.append(sub.name))
    with pytest.raises(RuntimeError, match="the bus's overflow: a handler is set already"):
        bus.on_overflow.set(lambda sub: None)
    with pytest.raises(RuntimeError, match="the store's commits: a handler is set already"):
        store.on_commit.set(lambda: None)
        store.on_commit.set(lambda: None)
    sub = bus.subscribe("slow", maxsize=1)
    bus.publish(1)
    bus.publish(2)
    assert heard == ["slow"] and sub.dropped == 1          # the first handler still hears


async def test_one_shot_work_that_fails_is_reported_until_such_work_ends_well() -> None:
    faults: list[tuple[str, str | None]] = []
    sup = Supervisor(lambda name, why: faults.append((name, why)))

    async def attempt(ok: bool) -> None:
        await asyncio.sleep(0)
        if not ok:
            raise OSError("the channel's secret file is unreadable")
    await asyncio.gather(sup.run_once("delivery", attempt(False)), return_exceptions=True)
    assert faults == [("delivery", "OSError: the channel's secret file is unreadable")]
    await sup.run_once("delivery", attempt(True))
    assert faults[-1] == ("delivery", None) and not sup.busy("delivery")
    slow = sup.run_once("delivery", asyncio.sleep(60))
    await sup.finish("delivery", within=0.05)         # at stop: what is left is cancelled
    assert slow.cancelled() and len(faults) == 2


async def test_an_earlier_versions_timer_names_are_read_as_fields(store: Store) -> None:
    """A timer of a kind whose names are fields, stored by an earlier version as one string
    (``alarm:ID:on``), fires with its fields and is written again in fields."""
    from monitor.core.timers import fields

    await store.call(lambda c: c.executemany("INSERT INTO timers VALUES (?, ?)", [
        ("alarm:door:north.open:on", time.time() - 5), ("shelve:hot", time.time() + 60)]))
    timers, fired = Timers(store), []
    timers.on("alarm", lambda timer: fired.append(fields(timer)),
              legacy=lambda old: tuple(old.rsplit(":", 1)))
    timers.on("shelve", lambda timer: None)
    await timers.load()
    timers.start()
    await eventually(lambda: fired == [("door:north.open", "on")], 2)
    await store.committed()
    rows = await store.read(lambda c: c.execute("SELECT key FROM timers").fetchall())
    assert rows == [("shelve:hot",)]            # the fired one gone; the other kept as it was
    timers.stop()
