"""Power topology: what each UPS feeds, suppression while on battery, runtime against what the
loads need, one situation for a whole-site mains loss, and shutdown actions on stored timers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import httpx

from monitor.alarms import Alarm, AlarmDef
from monitor.config.model import DeviceClass, Severity
from monitor.config.power import MAINS, Shutdown
from monitor.ups import Status

if TYPE_CHECKING:
    from monitor.daemon import Daemon

log = logging.getLogger(__name__)


class PowerWatch:
    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.status: dict[str, Status] = {}
        self.fired: set[str] = set()
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.due: dict[str, float] = {}
        daemon.alarms.listeners.append(self._alarm_changed)
        daemon.alarms.define(AlarmDef("power:site", Severity.CRITICAL, "全站市电中断"))
        self.refresh()

    def refresh(self) -> None:
        """Follow the daemon's configuration (at start and after a reload)."""
        site = self.daemon.cfg
        self.cfg = site.power
        self.upses = [d.name for d in site.devices if d.device_class is DeviceClass.UPS]
        self.feeder: dict[str, str] = {}
        for feed in self.cfg.feeds:
            for dev in site.devices:
                if dev.name in feed.devices or dev.area in feed.areas:
                    self.feeder.setdefault(dev.name, feed.ups)
        for dev in site.devices:
            if dev.device_class is DeviceClass.UPS:
                label = dev.label or dev.name
                self.daemon.alarms.define(AlarmDef(f"power:{dev.name}", Severity.CRITICAL,
                                                   f"{label} 电池供电"))
                self.daemon.alarms.define(AlarmDef(f"power:runtime:{dev.name}", Severity.MAJOR,
                                                   f"{label} 后备时间不足"))

    # -- timers that survive a restart ---------------------------------------------------
    async def load(self) -> None:
        rows = await self.daemon.store.read(lambda c: c.execute(
            "SELECT key, due FROM timers WHERE key LIKE 'shutdown:%'").fetchall())
        for key, due in rows:
            self.due[key.removeprefix("shutdown:")] = due

    def _arm(self, action: Shutdown, due: float) -> None:
        self.due[action.name] = due
        key = f"shutdown:{action.name}"
        self.daemon.store.submit(lambda c: c.execute(
            "INSERT OR REPLACE INTO timers VALUES (?, ?)", (key, due)))
        self._schedule(action, due)

    def _schedule(self, action: Shutdown, due: float) -> None:
        old = self.timers.pop(action.name, None)
        if old:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.timers[action.name] = loop.call_later(max(0.0, due - time.time()), self._due,
                                                   action)

    def _disarm(self, action: Shutdown) -> None:
        handle = self.timers.pop(action.name, None)
        if handle:
            handle.cancel()
        if self.due.pop(action.name, None) is not None:
            key = f"shutdown:{action.name}"
            self.daemon.store.submit(lambda c: c.execute("DELETE FROM timers WHERE key = ?",
                                                         (key,)))

    def _due(self, action: Shutdown) -> None:
        status = self.status.get(action.ups)
        if status is not None and status.on_battery:
            self._fire(action, f"{action.when.on_battery_for:g} s on battery")

    # -- what the UPSes say --------------------------------------------------------------
    def on_status(self, ups: str, status: Status) -> None:
        before = self.status.get(ups)
        self.status[ups] = status
        now = time.time()
        self.daemon.alarms.set_condition(f"power:{ups}", status.on_battery, status.flags and
                                         " ".join(sorted(status.flags)), now)
        was_battery = before.on_battery if before else False
        for action in self._actions(ups):
            if status.on_battery and action.when.on_battery_for is not None:
                due = self.due.get(action.name)
                if due is None:
                    self._arm(action, now + action.when.on_battery_for)
                elif before is None:  # first status after a restart: the stored timer holds
                    self._schedule(action, due)
            if status.on_battery and action.when.low_battery and "LB" in status.flags:
                self._fire(action, "low battery")
            if not status.on_battery and (was_battery or before is None):
                self._disarm(action)
                if action.name in self.fired:
                    log.info("power: mains back at %s; %s may run again on the next outage",
                             ups, action.name)
                self.fired.discard(action.name)
        self._suppress()

    def on_runtime(self, ups: str, runtime: float) -> None:
        classes = {d.name: d.device_class.value for d in self.daemon.cfg.devices}
        needed = max((self.cfg.needs.get(classes[dev], 0.0)
                      for dev, feeder in self.feeder.items() if feeder == ups), default=0.0)
        short = needed > 0 and runtime < needed
        self.daemon.alarms.set_condition(
            f"power:runtime:{ups}", short, runtime, None,
            f"{ups} 剩余后备时间 {runtime / 60:.0f} 分钟, 所供设备需要 {needed / 60:.0f} 分钟")
        status = self.status.get(ups)
        for action in self._actions(ups):
            limit = action.when.runtime_below
            if limit is not None and status is not None and status.on_battery and runtime < limit:
                self._fire(action, f"runtime {runtime:.0f} s below {limit:g} s")

    def _actions(self, ups: str) -> list[Shutdown]:
        return [a for a in self.cfg.shutdown if a.ups == ups]

    # -- suppression and the whole-site situation ----------------------------------------
    def _suppress(self) -> None:
        alarms = self.daemon.alarms
        on_battery = [u for u in self.upses if self.status.get(u) and self.status[u].on_battery]
        for dev, ups in self.feeder.items():
            if ups == MAINS:  # no UPS behind it: dark whenever a UPS says mains failed
                reason = f"市电中断 ({', '.join(on_battery)} 电池供电)" if on_battery else None
            else:
                reason = f"{ups} 电池供电" if ups in on_battery else None
            alarms.suppress(f"comm:{dev}", reason)
        site_down = len(self.upses) > 1 and all(
            self.status.get(u) is not None and self.status[u].on_battery for u in self.upses)
        alarms.set_condition("power:site", site_down, len(self.upses))
        for ups in self.upses:
            alarms.suppress(f"power:{ups}", "全站市电中断" if site_down else None)

    def _alarm_changed(self, alarm: Alarm, action: str) -> None:
        if action == "raised" and (alarm.id.startswith("comm:") or alarm.id.startswith("power:")):
            self._suppress()

    # -- running an action ---------------------------------------------------------------
    def _fire(self, action: Shutdown, why: str) -> None:
        if action.name in self.fired:
            return
        self.fired.add(action.name)
        self._disarm(action)
        log.warning("power: running shutdown action %s (%s)", action.name, why)
        asyncio.get_running_loop().create_task(self._run(action, why))

    async def _run(self, action: Shutdown, why: str) -> None:
        try:
            async with asyncio.timeout(action.timeout):
                result = await (self._command(action) if action.command else self._http(action))
        except TimeoutError:
            result = f"timed out after {action.timeout:g} s"
        except (OSError, httpx.HTTPError) as err:
            result = f"failed: {type(err).__name__}: {err}"
        log.warning("power: shutdown action %s: %s", action.name, result)
        dev = self.daemon.cfg.device(action.ups)
        if dev is not None:
            self.daemon.record_event(dev, "SHUTDOWN", f"{action.name} ({why}): {result}")

    @staticmethod
    async def _command(action: Shutdown) -> str:
        assert action.command is not None
        proc = await asyncio.create_subprocess_exec(
            *action.command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            proc.kill()
            raise
        text = out.decode("utf-8", "replace").strip()[-300:]
        return f"exit {proc.returncode}" + (f": {text}" if text else "")

    @staticmethod
    async def _http(action: Shutdown) -> str:
        assert action.http is not None
        async with httpx.AsyncClient(timeout=action.timeout) as client:
            resp = await client.request(action.http.method, action.http.url,
                                        json=action.http.body or None)
        return f"HTTP {resp.status_code}"

