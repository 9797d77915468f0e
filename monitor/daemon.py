"""The daemon's wiring: builds the runtime context, the core model and the parts that attach
to it, starts and stops them in order, and reloads the configuration. Nothing else takes it."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.base import Driver, driver_class
from monitor.alarms.facts import AlarmFacts
from monitor.alarms.inhibit import Inhibition
from monitor.alarms.manager import AlarmManager
from monitor.alarms.model import AlarmDef
from monitor.api.parts import ApiParts
from monitor.config.model import Severity, SiteConfig
from monitor.core.actions import ActionRunner
from monitor.core.bus import Bus, StoreCommitted, Subscription
from monitor.core.context import Context
from monitor.core.metrics import Metrics
from monitor.core.part import Part
from monitor.core.sink import Sink
from monitor.core.state import SiteState
from monitor.core.store import Fault, Store, prune_history
from monitor.core.supervisor import Supervisor, wait_event
from monitor.core.timers import Timers
from monitor.devices.intake import Core
from monitor.devices.poller import DevicePoller
from monitor.devices.recorder import Recorder
from monitor.devices.sources import Sources
from monitor.devices.ups.power import topology
from monitor.notify.notifier import Notifier
from monitor.notify.silences import Silences
from monitor.playbooks.check import playbook_texts
from monitor.playbooks.runtime import Incidents
from monitor.words.alarms import said

log = logging.getLogger(__name__)

SYSTEM_ALARMS = (
    ("sink:unavailable", Severity.MAJOR, False), ("sink:rejected", Severity.MAJOR, False),
    ("outbox:filling", Severity.MAJOR, False), ("outbox:overflow", Severity.CRITICAL, True),
    ("store:write_failed", Severity.CRITICAL, False), ("store:recreated", Severity.CRITICAL, True),
    ("store:dropped", Severity.CRITICAL, True), ("bus:overflow", Severity.MAJOR, True),
)
"""The daemon's own alarms: id, severity, latched (stays until acknowledged); their words are
``monitor.words.alarms``'."""


class Daemon:
    def __init__(self, cfg: SiteConfig, config_path: Path | None = None):
        self.config_path = config_path
        store = Store(cfg.data_dir, cfg.store.flush_interval, cfg.store.outbox.max_bytes,
                      cfg.store.outbox.max_age, cfg.store.max_pending)
        bus = Bus()
        timers = Timers(store)
        supervisor = Supervisor(self._task_fault)
        self.ctx = ctx = Context(
            cfg=cfg, bus=bus, state=SiteState(), store=store, timers=timers,
            actions=ActionRunner(bus, supervisor, lambda: self.ctx.cfg.actions.allowed_commands,
                                 lambda: self.ctx.cfg.actions.dry_run,
                                 lambda: self.ctx.cfg.site.language),
            alarms=AlarmManager(store, bus, timers), metrics=Metrics(),
            supervisor=supervisor, facts=AlarmFacts(cfg))
        self.core = Core(ctx)
        self.recorder = Recorder(ctx, self.core.write, lambda device: self.core.tags.get(device,
                                                                                        ""))
        self.inhibition = ctx.alarms.inhibitor = Inhibition(cfg, ctx.facts, topology)
        self.notifier = Notifier(ctx)
        self.incidents = Incidents(ctx, self._playbooks(cfg))
        self.sources = Sources(ctx, self.core)
        self.parts: tuple[Part, ...] = (self.recorder, *self.core.parts(), self.sources,
                                        self.notifier, self.incidents)
        """Loaded, subscribed and written again in this order; closed in the reverse."""
        self.sink: Sink | None = None
        self.pollers: dict[str, DevicePoller] = {}
        self._drivers: dict[str, Driver] = {}
        self._reload_lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.started = time.time()
        self._dropped_reported = 0
        self._dropped_logged = 0.0

    @property
    def _lang(self) -> str:
        """The site's language, that the daemon's own alarms are said in."""
        return self.ctx.cfg.site.language

    # the services, for the daemon's own wiring (service, demo) and the tests
    @property
    def cfg(self) -> SiteConfig:
        return self.ctx.cfg

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def alarms(self) -> AlarmManager:
        return self.ctx.alarms

    @property
    def state(self) -> SiteState:
        return self.ctx.state

    @property
    def silences(self) -> Silences:
        return self.notifier.silences

    def api_parts(self) -> ApiParts:
        """What the API is handed."""
        return ApiParts(self.started, self.notifier.silences, self.incidents,
                        self.notifier.links, self.reload_from_file)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        store = ctx.store
        def in_loop(fn: Callable[..., None]) -> Callable[..., None]:
            """The store calls from its writer thread; the loop runs it."""
            def call(*args: Any) -> None:
                loop.call_soon_threadsafe(fn, *args)
            return call
        store.on_fault.set(in_loop(self._store_fault))
        store.on_recreated.set(in_loop(self._write_again))
        store.on_commit.set(in_loop(lambda: ctx.bus.publish(StoreCommitted())))
        ctx.bus.on_overflow.set(self._bus_overflow)
        ctx.bus.on_error.set(lambda sub: ctx.metrics.bus_errors.labels(sub.name).inc())
        lang = ctx.cfg.site.language
        for alarm_id, severity, latched in SYSTEM_ALARMS:
            ctx.alarms.define(AlarmDef(alarm_id, severity, said(alarm_id, lang), latched=latched,
                                       advice=said(f"{alarm_id}.advice", lang)))
        await ctx.timers.load()
        await ctx.alarms.load()
        for part in self.parts:
            await part.load()
        for kind, message in list(store.faults.items()):
            self._store_fault(kind, message)
        self._apply(ctx.cfg)
        ctx.alarms.retire_undefined()
        ctx.timers.start()
        for part in self.parts:
            if part.subscription is not None:
                self._run_subscription(part.subscription)
        if ctx.cfg.sink is not None:
            self._start_sink()
        ctx.supervisor.spawn("ticker", self._ticker)
        ctx.supervisor.spawn("pruner", self._pruner)
        await self.sources.start(ctx.cfg)
        log.info("vigil started: site %s, %d devices, %d rules", ctx.cfg.site.name,
                 len(ctx.cfg.devices), len(ctx.cfg.rules))

    def _run_subscription(self, sub: Subscription) -> None:
        self.ctx.supervisor.spawn(f"bus:{sub.name}", sub.run)

    def _start_sink(self) -> None:
        assert self.ctx.cfg.sink is not None
        self.sink = Sink(self.ctx.cfg.sink, self.ctx.store, self._sink_problem, self.ctx.bus)
        self._run_subscription(self.sink.subscription)
        self.ctx.supervisor.spawn("sink", self.sink.run, self.sink.stop)

    async def _stop_sink(self) -> None:
        if self.sink is None:
            return
        await self.ctx.supervisor.stop("sink")
        await self.ctx.supervisor.stop(f"bus:{self.sink.subscription.name}")
        self.sink.subscription.close()
        await self.sink.close()
        self.sink = None

    def _apply(self, cfg: SiteConfig) -> None:
        """Start polling the devices of ``cfg`` and judge them by its rules."""
        self.ctx.cfg = cfg
        self.ctx.facts.use(cfg)
        self.core.apply(cfg)
        for dev in cfg.devices:
            if not dev.enabled:
                continue
            cls = driver_class(dev.type)
            if cls is None:  # it pushes: a listener hears it
                keys = [p.key for p in getattr(dev.spec, "points", [])]
                self.core.point_keys[dev.name] = lambda keys=keys: keys  # type: ignore[misc]
                continue
            driver = cls(dev)
            # judged from what is seen now: a comm alarm from before a restart clears (with a
            # COMMOK) at the first answer
            poller = DevicePoller(dev, driver, self.core,
                                  available=not self.ctx.alarms.is_active(f"comm:{dev.name}"))
            self._drivers[dev.name], self.pollers[dev.name] = driver, poller
            self.core.point_keys[dev.name] = driver.point_keys
            self.core.poll_now_fns[dev.name] = poller.poll_now
            self.ctx.supervisor.spawn(f"device:{dev.name}", poller.run, poller.stop)

    async def _stop_devices(self) -> None:
        for name in list(self.pollers):
            await self.ctx.supervisor.stop(f"device:{name}")
        for driver in self._drivers.values():
            await driver.close()
        self._drivers.clear()
        self.pollers.clear()
        self.core.point_keys.clear()
        self.core.poll_now_fns.clear()
        self.ctx.state.devices.clear()

    async def reload(self, cfg: SiteConfig) -> list[str]:
        """Switch to ``cfg`` (already validated); history, alarms and outbox carry over.
        Reloads run one at a time. Returns why it was refused (nothing changed), if so."""
        async with self._reload_lock:
            old = self.ctx.cfg
            refused = [f"{key} cannot change while running (restart vigil to apply it)"
                       for key, a, b in (("data_dir", old.data_dir, cfg.data_dir),
                                         ("api.listen", old.api.listen, cfg.api.listen),
                                         ("api.port", old.api.port, cfg.api.port),
                                         ("api.enabled", old.api.enabled, cfg.api.enabled),
                                         ("api.token", old.api.token, cfg.api.token))
                       if a != b]
            if refused:
                log.error("reload refused, keeping the running configuration: %s",
                          "; ".join(refused))
                return refused
            await self._stop_devices()
            if cfg.sink != old.sink:
                await self._stop_sink()
            await self.sources.stop()
            self._apply(cfg)
            for part in self.parts:
                part.use(cfg)
            self.inhibition.use(cfg)
            self.ctx.alarms.retire_undefined()
            self.ctx.alarms.refresh_suppression()
            if cfg.sink != old.sink and cfg.sink is not None:
                self._start_sink()
            try:
                await self.sources.start(cfg)
            except OSError as err:  # e.g. the trap port is taken
                log.error("reload: a listener could not start: %s", err)
                return [f"a listener could not start: {err}"]
            log.info("configuration reloaded: %d devices, %d rules", len(cfg.devices),
                     len(cfg.rules))
            return []

    def _playbooks(self, cfg: SiteConfig) -> dict[str, str]:
        """The playbooks of ``cfg`` (a relative directory is the config file's); ConfigError
        when any is not valid."""
        if cfg.playbooks is None:
            return {}
        base = self.config_path.parent if self.config_path is not None else Path.cwd()
        return playbook_texts(base / cfg.playbooks, {r.name for r in cfg.roles})

    async def reload_from_file(self) -> list[str]:
        """Re-read the config file; on any error keep the running config, return errors."""
        from monitor.config import ConfigError, load_config

        if self.config_path is None:
            return ["this daemon was not started from a config file"]
        try:
            cfg = await asyncio.get_running_loop().run_in_executor(None, load_config,
                                                                   self.config_path)
            playbooks = self._playbooks(cfg)
        except ConfigError as err:
            log.error("reload refused, keeping the running configuration and playbooks:\n%s",
                      err)
            return [str(i) for i in err.issues]
        errors = await self.reload(cfg)
        if not errors:
            # running incidents keep the version they began on
            self.incidents.use_playbooks(playbooks)
        return errors

    async def stop(self) -> None:
        """Stop polling and listening, let the bus and the sink finish, commit everything
        queued, and say how much could not be committed."""
        ctx = self.ctx
        ctx.supervisor.closing()
        self.stopping.set()
        await self._stop_devices()
        await self.sources.stop()
        if self.sink is not None:
            self.sink.stop()
        ctx.timers.stop()
        await ctx.actions.close(wait=10.0)
        for part in reversed(self.parts):
            await part.close()
        await self._drain_bus(2.0)
        await ctx.supervisor.stop()
        if self.sink is not None:
            await self.sink.close()
        uncommitted = await asyncio.get_running_loop().run_in_executor(None, ctx.store.close)
        if uncommitted:
            log.error("vigil stopped; %d queued items could NOT be committed (see the store "
                      "errors above)", uncommitted)
        else:
            log.info("vigil stopped; everything queued is committed")

    async def _drain_bus(self, within: float) -> None:
        end = time.monotonic() + within
        while any(s.queue for s in self.ctx.bus.subscriptions) and time.monotonic() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    # -- faults --------------------------------------------------------------------------
    def _task_fault(self, name: str, reason: str | None) -> None:
        alarms = self.ctx.alarms
        alarm_id = f"internal:{name}"
        if alarm_id not in alarms.defs:
            alarms.define(AlarmDef(alarm_id, Severity.MAJOR,
                                   said("internal", self._lang, task=name),
                                   advice=said("internal.advice", self._lang)))
        if reason is not None:
            self.ctx.metrics.task_restarts.labels(name).inc()
        alarms.set_condition(alarm_id, reason is not None, reason, None,
                             said("internal.now", self._lang, task=name, reason=reason)
                             if reason else None)

    def _store_fault(self, kind: str, fault: Fault | None) -> None:
        self.ctx.alarms.set_condition(f"store:{kind}", fault is not None, None, None,
                                      said(fault.key, self._lang, **fault.values)
                                      if fault else None)

    def _write_again(self) -> None:
        """The database was made anew: write the alarms, timers and what every part holds
        again."""
        self.ctx.store.submit(self.ctx.alarms.persist_all)
        self.ctx.store.submit(self.ctx.timers.persist_all)
        for part in self.parts:
            self.ctx.store.submit(part.persist_all)

    def _bus_overflow(self, sub: Subscription) -> None:
        self.ctx.metrics.bus_dropped.labels(sub.name).inc()
        self.ctx.alarms.set_condition("bus:overflow", True, sub.dropped, None,
                                      said("bus:overflow.now", self._lang, part=sub.name,
                                           n=sub.dropped))

    def _sink_problem(self, kind: str, message: str | None) -> None:
        self.ctx.alarms.set_condition(f"sink:{kind}", message is not None, message, None,
                                      said(f"sink:{kind}.now", self._lang, reason=message)
                                      if message else None)

    # -- housekeeping, on two tasks: slow pruning never holds up the judgements ------------
    async def _ticker(self) -> None:
        """Once a second: stale rules, NOCOMM, silent push sources, outbox bounds, gauges."""
        while not self.stopping.is_set():
            now = time.time()
            self.core.tick(now)
            self.sources.tick(now)
            self._watch_outbox(now)
            self.refresh_gauges(now)
            await wait_event(self.stopping, 1.0)

    async def _pruner(self) -> None:
        """Every five minutes: history older than the retention, in small steps, and what the
        parts keep no longer."""
        while not self.stopping.is_set():
            for part in self.parts:
                part.prune(time.time())
            prune = functools.partial(
                prune_history, before=time.time() - self.ctx.cfg.store.retention_days * 86400)
            for _ in range(10_000):  # small steps, so the writer never stalls behind a prune
                if self.stopping.is_set() or await self.ctx.store.call(prune) == 0:
                    break
                await asyncio.sleep(0.05)
            await wait_event(self.stopping, 300.0)

    def _watch_outbox(self, now: float) -> None:
        """Alarm as the outbox fills, and when its bounds made it drop data."""
        bounds = self.ctx.cfg.store.outbox
        store, alarms = self.ctx.store, self.ctx.alarms
        filling = store.outbox_bytes > bounds.max_bytes * bounds.warn_ratio
        alarms.set_condition("outbox:filling", filling, store.outbox_bytes, now,
                             said("outbox:filling.now", self._lang,
                                  size=f"{store.outbox_bytes / 2**20:.1f}",
                                  bound=f"{bounds.max_bytes / 2**20:.0f}"))
        dropped = store.dropped_lines - self._dropped_reported
        if dropped <= 0:
            return
        self._dropped_reported = store.dropped_lines
        self.ctx.metrics.outbox_dropped.inc(dropped)
        if now - self._dropped_logged > 60:
            self._dropped_logged = now
            log.error("outbox over its bounds: %d oldest lines dropped so far",
                      store.dropped_lines)
        alarms.set_condition("outbox:overflow", True, store.dropped_lines, now,
                             said("outbox:overflow.now", self._lang, lines=store.dropped_lines))

    def refresh_gauges(self, now: float) -> None:
        m, ctx = self.ctx.metrics, self.ctx
        m.outbox_bytes.set(ctx.store.outbox_bytes)
        m.outbox_lines.set(ctx.store.outbox_lines)
        readings, operations = ctx.store.queued()
        m.store_queued.labels("readings").set(readings)
        m.store_queued.labels("operations").set(operations)
        oldest = self.sink.status.oldest_pending if self.sink else None
        m.sink_lag.set(now - oldest if oldest else 0)
        m.sink_written.set(self.sink.status.written_lines if self.sink else 0)
        m.timers_pending.set(len(ctx.timers.due))
        m.bus_published.set(ctx.bus.published)
        for source, counts in self.sources.counts().items():
            for outcome, n in counts.items():
                m.push_messages.labels(source, outcome).set(n)
        tally = Tally(a.severity for a in ctx.alarms.alarms.values() if a.active)
        for sev in Severity:
            m.alarms_active.labels(sev.value).set(tally.get(sev.value, 0))
