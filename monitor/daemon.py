"""The daemon: wires drivers, state, rules, alarms, store, sink and API into one process."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter as Tally
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.base import Driver, PollResult, driver_class
from monitor.alarms import Alarm, AlarmDef, AlarmManager
from monitor.config.model import DeviceClass, DeviceConfig, Severity, SiteConfig
from monitor.lineproto import line, tag_set
from monitor.metrics import Metrics
from monitor.model import DeviceState, Quality, Reading
from monitor.power import PowerWatch
from monitor.rules import RuleEngine
from monitor.runtime import DevicePoller
from monitor.sink import Sink
from monitor.state import DeviceStatus, SiteState
from monitor.store import Store, prune_history
from monitor.ups import UpsWatcher, parse_status

if TYPE_CHECKING:
    from monitor.trapwatch import TrapWatch

log = logging.getLogger(__name__)

MEASUREMENT = {"fire_panel": "fire_zone"}
"""Measurement per device class where it differs from the class name (DESIGN.md schema)."""


class Daemon:
    def __init__(self, cfg: SiteConfig, config_path: Path | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.store = Store(cfg.data_dir, cfg.store.flush_interval,
                           cfg.store.outbox.max_bytes, cfg.store.outbox.max_age)
        self.state = SiteState()
        self.alarms = AlarmManager(self.store)
        self.metrics = Metrics()
        self.rules = RuleEngine([], self.alarms)
        self.sink: Sink | None = None
        self.ups = UpsWatcher(self._device_event)
        self.traps: TrapWatch | None = None
        self.power = PowerWatch(self)
        self.ups.on_status = self.power.on_status
        self.pollers: dict[str, DevicePoller] = {}
        self._drivers: dict[str, Driver] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._device_tasks: dict[str, asyncio.Task[None]] = {}
        self._tags: dict[str, str] = {}
        self.stopping = asyncio.Event()
        self.started = time.time()
        self._dropped_reported = 0
        self._dropped_logged = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.alarms.load()
        for alarm_id, desc in (("sink:unavailable", "时序库不可达, 数据暂存本地"),
                               ("sink:rejected", "时序库拒绝写入"),
                               ("outbox:filling", "本地待发数据接近上限"),
                               ("outbox:overflow", "本地待发数据超限, 最旧数据已丢弃")):
            sev = Severity.CRITICAL if alarm_id == "outbox:overflow" else Severity.MAJOR
            self.alarms.define(AlarmDef(alarm_id, sev, desc))
        self.alarms.listeners.append(self._alarm_changed)
        await self.power.load()
        self._apply(self.cfg)
        if self.cfg.sink is not None:
            self._start_sink()
        self._tasks += [asyncio.create_task(self._housekeeping(), name="housekeeping")]
        if self.cfg.traps is not None:
            from monitor.trapwatch import TrapWatch

            self.traps = TrapWatch(self)
            self.traps.start()
        log.info("vigil started: site %s, %d devices, %d rules", self.cfg.site.name,
                 len(self.cfg.devices), len(self.cfg.rules))

    def _start_sink(self) -> None:
        assert self.cfg.sink is not None
        self.sink = Sink(self.cfg.sink, self.store, self._sink_problem)
        self._tasks.append(asyncio.create_task(self.sink.run(), name="sink"))

    def _apply(self, cfg: SiteConfig) -> None:
        """Start polling the devices of ``cfg`` and judge them by its rules."""
        self.cfg = cfg
        self.rules = RuleEngine(cfg.rules, self.alarms)
        for dev in cfg.devices:
            self.state.devices[dev.name] = DeviceStatus(dev.name)
            self.alarms.define(AlarmDef(f"comm:{dev.name}", Severity.MAJOR,
                                        f"{dev.label or dev.name} 通信中断", None))
            self.alarms.define(AlarmDef(f"protocol:{dev.name}", Severity.MINOR,
                                        f"{dev.label or dev.name} 应答异常", None))
            self.alarms.define(AlarmDef(f"operator:{dev.name}", Severity.MAJOR,
                                        f"{dev.label or dev.name} 需要人工处理", None))
            self._tags[dev.name] = tag_set({"site": cfg.site.name, "area": dev.area,
                                            "device": dev.name})
            if not dev.enabled:
                self.state.devices[dev.name].state = DeviceState.DISABLED
                continue
            cls = driver_class(dev.type)
            assert cls is not None  # the config loader checked it
            driver = cls(dev)
            poller = DevicePoller(dev, driver, self)
            self._drivers[dev.name], self.pollers[dev.name] = driver, poller
            self._device_tasks[dev.name] = asyncio.create_task(poller.run(), name=dev.name)

    async def _stop_devices(self) -> None:
        tasks = list(self._device_tasks.values())
        for poller in self.pollers.values():
            poller.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for driver in self._drivers.values():
            await driver.close()
        self._device_tasks.clear()
        self._drivers.clear()
        self.pollers.clear()
        self.state.devices.clear()

    async def reload(self, cfg: SiteConfig) -> None:
        """Switch to ``cfg`` (already validated); history, alarms and outbox carry over."""
        await self._stop_devices()
        sink_changed = cfg.sink != self.cfg.sink
        self._apply(cfg)
        self.power.refresh()
        if self.traps is not None:
            self.traps.refresh()
        if sink_changed:
            if self.sink is not None:
                self.sink.stop()
                for t in [t for t in self._tasks if t.get_name() == "sink"]:
                    t.cancel()
                    self._tasks.remove(t)
                await self.sink.close()
                self.sink = None
            if cfg.sink is not None:
                self._start_sink()
        log.info("configuration reloaded: %d devices, %d rules", len(cfg.devices), len(cfg.rules))

    async def stop(self) -> None:
        """Stop polling, let the sink finish its batch, commit everything queued."""
        await self._stop_devices()
        self.stopping.set()
        if self.traps is not None:
            await self.traps.close()
        if self.sink is not None:
            self.sink.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sink is not None:
            await self.sink.close()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        log.info("vigil stopped; everything queued is committed")

    # -- poll results -------------------------------------------------------------------
    def on_poll(self, device: DeviceConfig, result: PollResult, latency: float) -> None:
        readings = result.readings
        now = time.time()
        if device.device_class is DeviceClass.UPS:
            result.problems += self.ups.on_readings(device.name, readings)
            fresh = next((r for r in readings if r.point == f"{device.name}.battery.runtime"
                          and r.quality is Quality.GOOD), None)
            if fresh is not None and isinstance(fresh.value, int | float):
                self.power.on_runtime(device.name, float(fresh.value))
        status = self.state.devices[device.name]
        status.latency, status.last_ok, status.failures = latency, now, 0
        status.last_error = None
        if result.problems != status.problems:
            if result.problems:
                log.warning("%s: protocol error: %s", device.name, "; ".join(result.problems))
            else:
                log.info("%s: answers cleanly again", device.name)
        status.problems = result.problems
        status.state = DeviceState.PROTOCOL_ERROR if result.problems else DeviceState.ONLINE
        self.alarms.set_condition(f"protocol:{device.name}", bool(result.problems),
                                  "; ".join(result.problems) or None, now)
        self.alarms.set_condition(f"operator:{device.name}", False, None, now)
        self.state.update(readings)
        self.rules.on_readings(readings)
        self._store(device, readings, now, status)
        self.metrics.poll_latency.labels(device.name).observe(latency)
        self.metrics.device_up.labels(device.name).set(1)

    def _store(self, device: DeviceConfig, readings: list[Reading], now: float,
               status: DeviceStatus) -> None:
        cut = len(device.name) + 1
        tags = self._tags[device.name]
        measurement = MEASUREMENT.get(device.device_class.value, device.device_class.value)
        fields = [(r.point[cut:], r.value) for r in readings if r.quality is Quality.GOOD]
        if device.device_class is DeviceClass.UPS:
            flags = next((v for k, v in fields if k == "ups.status"), None)
            if isinstance(flags, str):  # numeric, so dashboards can integrate time on battery
                fields.append(("on_battery", 1.0 if parse_status(flags).on_battery else 0.0))
        lines = [line(measurement, tags, fields, now),
                 line("device_status", tags + f",class={device.device_class.value}",
                      (("online", 0.0 if status.state is DeviceState.UNAVAILABLE else 1.0),
                       ("state", status.state.value)), now)]
        self._write(readings, [x for x in lines if x])
        self.metrics.readings.inc(len(readings))

    def _write(self, readings: list[Reading], lines: list[str]) -> None:
        """History always; line protocol to the outbox only when a sink will take it."""
        body = "\n".join(lines).encode() if self.cfg.sink is not None and lines else None
        self.store.add(readings, body, len(lines))

    def on_failure(self, device: DeviceConfig, reason: str, unavailable: bool,
                   operator: bool = False) -> None:
        status = self.state.devices[device.name]
        if operator:
            self.alarms.set_condition(f"operator:{device.name}", True, reason, None,
                                      f"{device.label or device.name} 需要人工处理: {reason}")
        status.failures += 1
        status.last_error = reason
        self.metrics.poll_failures.labels(device.name).inc()
        now = time.time()
        keys = self._drivers[device.name].point_keys()
        if not unavailable:
            self.state.mark(device.name, keys, Quality.STALE, now)
            return
        if status.state is DeviceState.UNAVAILABLE:
            return
        status.state = DeviceState.UNAVAILABLE
        self.metrics.device_up.labels(device.name).set(0)
        readings = self.state.mark(device.name, keys, Quality.COMM_LOST, now)
        self._store(device, readings, now, status)
        self.alarms.set_condition(f"comm:{device.name}", True, reason, now,
                                  f"{device.label or device.name} 通信中断: {reason}")
        self.record_event(device, "COMMBAD", reason)
        if device.device_class is DeviceClass.UPS:
            self.ups.on_comm(device.name, False, now)

    def on_recovered(self, device: DeviceConfig) -> None:
        self.alarms.set_condition(f"comm:{device.name}", False)
        self.record_event(device, "COMMOK", "通信恢复")
        self.ups.on_comm(device.name, True, time.time())

    def _device_event(self, device: str, kind: str, message: str) -> None:
        dev = self.cfg.device(device)
        if dev is not None:
            self.record_event(dev, kind, message)

    def record_event(self, device: DeviceConfig, kind: str, message: str) -> None:
        """Record something that happened at a device: log, events table, ``event`` points."""
        now = time.time()
        if kind not in ("COMMBAD", "COMMOK"):  # the poll task logs those already
            log.warning("%s: %s (%s)", device.name, kind, message)
        text = line("event", self._tags[device.name] + f",kind={kind}",
                    (("message", message),), now)
        assert text is not None
        self._write([], [text])
        self.store.submit(lambda c: c.execute(
            "INSERT INTO events (ts, device, kind, detail) VALUES (?, ?, ?, ?)",
            (now, device.name, kind, message)))

    def _alarm_changed(self, alarm: Alarm, action: str) -> None:
        """Every alarm change also goes to the time-series store (``alarm`` measurement)."""
        tags = tag_set({"site": self.cfg.site.name, "alarm": alarm.id,
                        "severity": alarm.severity})
        text = line("alarm", tags, (("active", 1.0 if alarm.active else 0.0),
                                    ("acked", 1.0 if alarm.acked else 0.0),
                                    ("state", alarm.state().value), ("action", action),
                                    ("message", alarm.message)), time.time())
        assert text is not None
        self._write([], [text])

    def poll_now(self, device: str) -> bool:
        poller = self.pollers.get(device)
        if poller is not None:
            poller.poll_now()
        return poller is not None

    # -- sink and outbox ----------------------------------------------------------------
    def _sink_problem(self, kind: str, message: str | None) -> None:
        self.alarms.set_condition(f"sink:{kind}", message is not None, message, None,
                                  f"时序库{'不可达' if kind == 'unavailable' else '拒绝写入'}: "
                                  f"{message}" if message else None)

    async def _housekeeping(self) -> None:
        """Once a second: stale rules, outbox bounds; every few minutes: history pruning."""
        last_prune = 0.0
        while not self.stopping.is_set():
            now = time.time()
            self.rules.tick(now)
            self.ups.tick(now, self.cfg.power.nocomm_after)
            self._watch_outbox(now)
            if now - last_prune > 300:
                last_prune = now
                prune = functools.partial(
                    prune_history, before=now - self.cfg.store.retention_days * 86400)
                for _ in range(10_000):  # small steps, so polling never stalls behind a prune
                    if await self.store.call(prune) == 0:
                        break
                    await asyncio.sleep(0.05)
            self.refresh_gauges(now)
            await asyncio.sleep(1.0)

    def _watch_outbox(self, now: float) -> None:
        """Alarm as the outbox fills, and when its bounds made it drop data."""
        bounds = self.cfg.store.outbox
        store = self.store
        filling = store.outbox_bytes > bounds.max_bytes * bounds.warn_ratio
        self.alarms.set_condition("outbox:filling", filling, store.outbox_bytes, now,
                                  f"本地待发数据 {store.outbox_bytes / 2**20:.1f} MiB, "
                                  f"上限 {bounds.max_bytes / 2**20:.0f} MiB")
        dropped = store.dropped_lines - self._dropped_reported
        if dropped <= 0:
            return
        self._dropped_reported = store.dropped_lines
        self.metrics.outbox_dropped.inc(dropped)
        if now - self._dropped_logged > 60:
            self._dropped_logged = now
            log.error("outbox over its bounds: %d oldest lines dropped so far",
                      store.dropped_lines)
        self.alarms.set_condition("outbox:overflow", True, store.dropped_lines, now,
                                  f"本地待发数据超限, 已丢弃最旧的 {store.dropped_lines} 行")

    def refresh_gauges(self, now: float) -> None:
        m = self.metrics
        m.outbox_bytes.set(self.store.outbox_bytes)
        m.outbox_lines.set(self.store.outbox_lines)
        oldest = self.sink.status.oldest_pending if self.sink else None
        m.sink_lag.set(now - oldest if oldest else 0)
        m.sink_written.set(self.sink.status.written_lines if self.sink else 0)
        if self.traps is not None:
            counters = self.traps.receiver.counters
            m.traps.labels("accepted").set(counters.accepted)
            m.traps.labels("unknown_source").set(counters.unknown_source)
        tally = Tally(a.severity for a in self.alarms.alarms.values() if a.active)
        for sev in Severity:
            m.alarms_active.labels(sev.value).set(tally.get(sev.value, 0))


async def reload_from_file(daemon: Daemon) -> list[str]:
    """Re-read the daemon's config file; on any error keep the running config, return errors."""
    from monitor.config import ConfigError, load_config

    if daemon.config_path is None:
        return ["this daemon was not started from a config file"]
    try:
        cfg = await asyncio.get_running_loop().run_in_executor(None, load_config,
                                                               daemon.config_path)
    except ConfigError as err:
        log.error("reload refused, keeping the running configuration:\n%s", err)
        return [str(i) for i in err.issues]
    if cfg.data_dir != daemon.cfg.data_dir:
        return [f"{daemon.config_path}: data_dir cannot change while running"]
    await daemon.reload(cfg)
    return []
