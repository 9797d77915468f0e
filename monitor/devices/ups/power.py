"""Power topology: what each UPS feeds, suppression while on battery, runtime against what the
loads need, one situation for a whole-site mains loss, and shutdown actions on durable timers.

It attaches through the runtime context: UPS status and readings come from the bus, the
suppression is inhibition rules (``power_rules``), the waits are durable timers and the
actions go through the action runner.
"""

from __future__ import annotations

import logging
import sqlite3

from monitor.alarms.model import AlarmDef
from monitor.config.model import Severity, SiteConfig
from monitor.config.notify import Inhibit
from monitor.config.power import Shutdown, power_rules
from monitor.core.bus import Readings
from monitor.core.context import Context
from monitor.core.part import Part
from monitor.core.store import flags, set_flags
from monitor.devices.base import device_class
from monitor.devices.ups.status import UPS, UpsStatusChanged
from monitor.words.alarms import said

log = logging.getLogger(__name__)


RAN = "shutdown_ran:"
"""The store's flag of a shutdown action that ran in this outage."""


class PowerWatch(Part):
    name = "power"

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.flags: dict[str, frozenset[str]] = {}
        self.fired: set[str] = set()
        self.waiting: set[str] = set()
        """Shutdown timers that came due before the UPS's first status after a restart."""
        lang = ctx.cfg.site.language
        ctx.alarms.define(AlarmDef("power:site", Severity.CRITICAL, said("power:site", lang),
                                   advice=said("power:site.advice", lang), situation="power"))
        ctx.timers.on("shutdown", self._due)
        self.subscription = ctx.bus.subscribe(
            "power", self.on_event, kinds=(UpsStatusChanged, Readings))
        self.use(ctx.cfg)

    async def load(self) -> None:
        """The shutdown actions that already ran in this outage (before a restart)."""
        ran = await self.ctx.store.read(lambda c: flags(c, RAN))
        self.fired.update(key.removeprefix(RAN) for key in ran)

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: the shutdown actions that ran in this outage again (into a database
        made anew), so none runs twice in one outage."""
        set_flags({RAN + name: "1" for name in self.fired})(conn)

    def _ran(self, name: str, ran: bool) -> None:
        """Keep whether ``name`` ran in this outage across a restart."""
        self.ctx.store.submit(set_flags({RAN + name: "1" if ran else None}))

    def use(self, cfg: SiteConfig) -> None:
        """Follow the running configuration (at start and after a reload)."""
        site = cfg
        self.cfg = site.power
        self.upses = [d.name for d in site.devices if d.device_class == UPS]
        self.classes = {d.name: d.device_class for d in site.devices}
        self.labels = {d.name: d.label or d.name for d in site.devices}
        self.feeder = self.ctx.facts.feeder
        self.ctx.alarms.undefine([a for a in self.ctx.alarms.defs
                                  if a.startswith("power:") and a != "power:site"])
        lang = site.site.language
        for ups in self.upses:
            label = self.labels[ups]
            self.ctx.alarms.define(AlarmDef(
                f"power:{ups}", Severity.CRITICAL, said("power", lang, ups=label),
                advice=said("power.advice", lang), device=ups, feed=ups, situation="power"))
            self.ctx.alarms.define(AlarmDef(
                f"power:runtime:{ups}", Severity.MAJOR, said("power:runtime", lang, ups=label),
                advice=said("power:runtime.advice", lang), device=ups, feed=ups))
        for name in set(self.ctx.timers.pending("shutdown")) - {a.name for a in self.cfg.shutdown}:
            self.ctx.timers.cancel("shutdown", name)  # its action is gone from the config

    def on_event(self, event: UpsStatusChanged | Readings) -> None:
        if isinstance(event, UpsStatusChanged):
            self.on_status(event)
        elif event.device in self.upses:
            self._readings(event)

    # -- what the UPSes say --------------------------------------------------------------
    def on_status(self, event: UpsStatusChanged) -> None:
        ups, on_battery = event.device, event.on_battery
        before = self.flags.get(ups)
        self.flags[ups] = event.flags
        timers = self.ctx.timers
        self.ctx.alarms.set_condition(f"power:{ups}", on_battery,
                                      " ".join(sorted(event.flags)) or None, event.ts)
        was_battery = before is not None and "OB" in before
        for action in self._actions(ups):
            when = action.when
            if on_battery and when.on_battery_for is not None:
                if action.name in self.waiting:  # came due while we could not know
                    self.waiting.discard(action.name)
                    self._fire(action, f"{when.on_battery_for:g} s on battery")
                elif timers.get("shutdown", action.name) is None and action.name not in self.fired:
                    timers.arm("shutdown", action.name, event.ts + when.on_battery_for)
            if on_battery and when.low_battery and "LB" in event.flags:
                self._fire(action, "low battery")
            if not on_battery and (was_battery or before is None):
                timers.cancel("shutdown", action.name)
                self.waiting.discard(action.name)
                if action.name in self.fired:
                    log.info("power: mains back at %s; %s may run again on the next outage",
                             ups, action.name)
                    self.fired.discard(action.name)
                    self._ran(action.name, False)
        self._site()

    def _due(self, name: str) -> None:
        action = next((a for a in self.cfg.shutdown if a.name == name), None)
        if action is None:
            return
        flags = self.flags.get(action.ups)
        if flags is None:  # no status since the restart yet: decide on the first one
            self.waiting.add(name)
        elif "OB" in flags:
            self._fire(action, f"{action.when.on_battery_for:g} s on battery")

    def _readings(self, event: Readings) -> None:
        point = f"{event.device}.battery.runtime"
        runtime = next((r.value for r in event.readings if r.point == point
                        and r.quality.value == "good"), None)
        if isinstance(runtime, int | float) and not isinstance(runtime, bool):
            self.on_runtime(event.device, float(runtime))

    def on_runtime(self, ups: str, runtime: float) -> None:
        needed = max((self._needs(self.classes.get(dev, ""))
                      for dev, feeder in self.feeder.items() if feeder == ups), default=0.0)
        short = needed > 0 and runtime < needed
        self.ctx.alarms.set_condition(
            f"power:runtime:{ups}", short, runtime, None,
            said("power:runtime.now", self.ctx.cfg.site.language, ups=self.labels.get(ups, ups),
                 runtime=f"{runtime / 60:.0f}", needed=f"{needed / 60:.0f}"))
        flags = self.flags.get(ups)
        for action in self._actions(ups):
            limit = action.when.runtime_below
            if limit is not None and flags is not None and "OB" in flags and runtime < limit:
                self._fire(action, f"runtime {runtime:.0f} s below {limit:g} s")

    def _needs(self, cls: str) -> float:
        """Seconds of runtime a device of class ``cls`` needs: as configured, else its
        class's."""
        return self.cfg.needs.get(cls, device_class(cls).needs)

    def _actions(self, ups: str) -> list[Shutdown]:
        return [a for a in self.cfg.shutdown if a.ups == ups]

    # -- the whole-site situation ------------------------------------------------------
    def _site_down(self) -> bool:
        on_battery = [u for u in self.upses if "OB" in self.flags.get(u, ())]
        return len(self.upses) > 1 and len(on_battery) == len(self.upses)

    def _site(self) -> None:
        """The whole-site situation after a UPS changed (it holds back the UPSes' own
        alarms by the power topology's inhibition rules)."""
        self.ctx.alarms.set_condition("power:site", self._site_down(), len(self.upses))

    # -- running an action ---------------------------------------------------------------
    def _fire(self, action: Shutdown, why: str) -> None:
        if action.name in self.fired:
            return
        self.fired.add(action.name)
        self._ran(action.name, True)
        self.ctx.timers.cancel("shutdown", action.name)
        log.warning("power: running shutdown action %s (%s)", action.name, why)
        self.ctx.actions.start(action, subject=action.ups, kind="SHUTDOWN", why=why)


def topology(cfg: SiteConfig) -> list[Inhibit]:
    """The power topology's inhibition rules for ``cfg``'s UPSes (none if switched off)."""
    upses = [d.name for d in cfg.devices if d.device_class == UPS]
    return power_rules(upses) if cfg.power.suppress else []
