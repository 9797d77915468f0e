"""The core model: what polls and push sources find becomes state, alarms, history and events.

A reading flows one way: poll (or push) -> state -> its device class -> rules -> store -> bus.
The device classes (``monitor.devices``) say what a kind of box means; none is named here.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from drivers.base import PollResult
from monitor.alarms.model import AlarmDef, escape
from monitor.alarms.rules import RuleEngine
from monitor.config.model import DeviceConfig, PointBase, Rule, Severity, SiteConfig
from monitor.core.bus import DeviceEvent, Readings
from monitor.core.context import Context
from monitor.core.lineproto import line, tag_set
from monitor.core.model import DeviceState, Quality, Reading, split_point_id
from monitor.core.part import Part
from monitor.core.state import DeviceStatus
from monitor.devices.base import OFFLINE, DeviceClass, classes, device_class
from monitor.devices.words import point_words
from monitor.words.alarms import said
from monitor.words.reasons import in_chinese

log = logging.getLogger(__name__)

DEVICE_ALARM_KINDS = (("comm", Severity.MAJOR, False), ("protocol", Severity.MINOR, False),
                      ("operator", Severity.MAJOR, False), ("auth", Severity.MAJOR, True))
"""Every device's own alarms: kind, severity, latched (their words: ``monitor.words.alarms``)."""
DEVICE_ALARMS = tuple(f"{kind}:" for kind, *_ in DEVICE_ALARM_KINDS)
"""The alarms every device has."""


def named_points(cfg: SiteConfig) -> dict[str, PointBase]:
    """Each point as people call it (``DEVICE.KEY`` -> label and unit): the configured
    points, and its class's canonical ones; without a label, the device's label and the
    point's default label (or key)."""
    named = {}
    for dev in cfg.devices:
        cls = dev.device_class
        described = dev.described_points()
        for key in dict.fromkeys([*device_class(cls).points, *described]):
            point = described.get(key)
            label, unit = point_words(cls, key, cfg.site.language)
            named[f"{dev.name}.{key}"] = PointBase(
                key=key, label=(point.label if point else "")
                or f"{dev.label or dev.name} {label or key}",
                unit=(point.unit if point else "") or unit)
    return named


def site_rules(cfg: SiteConfig) -> list[Rule]:
    """The configured rules, and those the devices' classes bring (a configured rule of the
    same name replaces one)."""
    configured = {r.name for r in cfg.rules}
    brought = [rule for dev in cfg.devices for rule in device_class(dev.device_class).rules(dev)
               if rule.name not in configured]
    return [*cfg.rules, *brought]


class Core:
    """Implements the poll task's sink and the push sources' feed."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.kinds: dict[str, DeviceClass] = {name: cls(ctx, self.event)
                                              for name, cls in classes().items()}
        """Each device class's behaviour, by class name."""
        self.plain = DeviceClass(ctx, self.event)
        self.rules = RuleEngine([], ctx.alarms)
        self.tags: dict[str, str] = {}
        self.point_keys: dict[str, Callable[[], list[str]]] = {}
        self.poll_now_fns: dict[str, Callable[[], None]] = {}
        self.heard: dict[str, float] = {}

    @property
    def language(self) -> str:
        """The site's, that its alarms are said in."""
        return self.ctx.cfg.site.language

    def parts(self) -> list[Part]:
        """The parts the device classes bring."""
        return [part for kind in self.kinds.values() for part in kind.parts()]

    def _kind(self, cls: str) -> DeviceClass:
        """The behaviour of device class ``cls`` (a plain box's for one not registered)."""
        kind = self.kinds.get(cls)
        return kind if kind is not None else self.plain

    def _situation(self, rule: Rule, level: str, severity: Severity) -> str | None:
        cfg = self.ctx.cfg
        name, key = split_point_id(rule.point)
        dev = cfg.device(name)
        if dev is None:
            return None
        point = dev.described_points().get(key)
        area = (point.area if point is not None else None) or dev.area
        purpose = next((a.purpose or a.name for a in cfg.areas if a.name == area), "")
        return self._kind(dev.device_class).situation(key, level, severity.value, purpose)

    def apply(self, cfg: SiteConfig) -> None:
        """Define the alarms of ``cfg``'s devices and rules (at start and on reload)."""
        alarms = self.ctx.alarms
        alarms.undefine([a for a in alarms.defs if a.startswith(DEVICE_ALARMS)])
        alarms.undefine(self.rules.alarm_ids)
        self.rules = RuleEngine(site_rules(cfg), alarms, named_points(cfg), cfg.site.language,
                                self._situation)
        self.tags = {}
        for dev in cfg.devices:
            label = dev.label or dev.name
            for kind, severity, latched in DEVICE_ALARM_KINDS:
                alarms.define(AlarmDef(f"{kind}:{dev.name}", severity,
                                       said(kind, cfg.site.language, device=label),
                                       latched=latched, device=dev.name,
                                       advice=said(f"{kind}.advice", cfg.site.language),
                                       situation=OFFLINE if kind == "comm" else None))
            self.tags[dev.name] = tag_set({"site": cfg.site.name, "area": dev.area,
                                           "device": dev.name})
            self.ctx.state.devices[dev.name] = DeviceStatus(dev.name)
            if not dev.enabled:
                self.ctx.state.devices[dev.name].state = DeviceState.DISABLED

    # -- the poll task's sink -------------------------------------------------------------
    def on_poll(self, device: DeviceConfig, result: PollResult, latency: float) -> None:
        self._accept(device, result.readings, result.problems)
        status = self.ctx.state.devices[device.name]
        status.latency = latency
        self.ctx.metrics.poll_latency.labels(device.name).observe(latency)
        self.ctx.metrics.device_up.labels(device.name).set(1)

    def _accept(self, device: DeviceConfig, readings: list[Reading],
                problems: list[str]) -> None:
        ctx = self.ctx
        now = time.time()
        kind = self.kinds.get(device.device_class)
        if kind is not None:
            problems = problems + kind.accept(device.name, readings)
        status = ctx.state.devices[device.name]
        status.last_ok, status.failures, status.last_error = now, 0, None
        if problems != status.problems:
            if problems:
                log.warning("%s: protocol error: %s", device.name, "; ".join(problems))
            else:
                log.info("%s: answers cleanly again", device.name)
        status.problems = problems
        status.state = DeviceState.PROTOCOL_ERROR if problems else DeviceState.ONLINE
        ctx.alarms.set_condition(f"protocol:{device.name}", bool(problems),
                                 "; ".join(problems) or None, now)
        ctx.alarms.set_condition(f"operator:{device.name}", False, None, now)
        ctx.state.update(readings)
        self.rules.on_readings(readings)
        self._store(device, readings, now, status)
        ctx.bus.publish(Readings(device.name, tuple(readings)))

    def _store(self, device: DeviceConfig, readings: list[Reading], now: float,
               status: DeviceStatus) -> None:
        """History and line protocol with the same timestamps: one line per reading time."""
        cut = len(device.name) + 1
        tags = self.tags[device.name]
        kind = self._kind(device.device_class)
        measurement = kind.measurement or device.device_class
        by_ts: dict[float, list[tuple[str, object]]] = defaultdict(list)
        for r in readings:
            if r.quality is Quality.GOOD:
                key = r.point[cut:]
                by_ts[r.ts].append((key, r.value))
                by_ts[r.ts] += kind.derived(key, r.value)
        lines = [line(measurement, tags, fields, ts) for ts, fields in by_ts.items()]
        lines.append(line("device_status", tags + f",class={device.device_class}",
                          (("online", 0.0 if status.state is DeviceState.UNAVAILABLE else 1.0),
                           ("state", status.state.value)), now))
        self.write(readings, [x for x in lines if x])
        self.ctx.metrics.readings.inc(len(readings))

    def write(self, readings: list[Reading], lines: list[str]) -> None:
        """History always; line protocol to the outbox only when a sink will take it."""
        body = "\n".join(lines).encode() if self.ctx.cfg.sink is not None and lines else None
        self.ctx.store.add(readings, body, len(lines))

    def on_failure(self, device: DeviceConfig, reason: str, unavailable: bool,
                   operator: bool = False) -> None:
        ctx = self.ctx
        status = ctx.state.devices[device.name]
        if operator:
            ctx.alarms.set_condition(f"operator:{device.name}", True, reason, None,
                                     said("operator.now", self.language,
                                          device=device.label or device.name, reason=reason))
        status.failures += 1
        status.last_error = reason
        ctx.metrics.poll_failures.labels(device.name).inc()
        now = time.time()
        keys = self.point_keys[device.name]()
        if not unavailable:
            ctx.state.mark(device.name, keys, Quality.STALE, now)
            return
        if status.state is DeviceState.UNAVAILABLE:
            return
        status.state = DeviceState.UNAVAILABLE
        ctx.metrics.device_up.labels(device.name).set(0)
        readings = ctx.state.mark(device.name, keys, Quality.COMM_LOST, now)
        self._store(device, readings, now, status)
        comm = f"comm:{device.name}"
        if not ctx.alarms.is_active(comm):  # already lost before a restart: no second COMMBAD
            self.event(device.name, "COMMBAD", reason)
        ctx.alarms.set_condition(comm, True, reason, now, said(
            "comm.now", self.language, device=device.label or device.name,
            reason=reason if self.language == "en" else in_chinese(reason)))
        self._kind(device.device_class).comm(device.name, False, now)

    def on_recovered(self, device: DeviceConfig) -> None:
        self.ctx.alarms.set_condition(f"comm:{device.name}", False)
        self.event(device.name, "COMMOK", said("commok", self.language))
        self._kind(device.device_class).comm(device.name, True, time.time())

    # -- the push sources' feed -----------------------------------------------------------
    def readings(self, device: str, readings: list[Reading]) -> None:
        """A device pushed readings; one that only pushes is heard from again (its
        comm-loss alarm, also one from before a restart, clears)."""
        dev = self.ctx.cfg.device(device)
        if dev is None or not dev.enabled:
            return
        status = self.ctx.state.devices[device]
        lost = device not in self.poll_now_fns and (
            status.state is DeviceState.UNAVAILABLE or self.ctx.alarms.is_active(f"comm:{device}"))
        self._accept(dev, readings, [])
        if lost:
            self.ctx.metrics.device_up.labels(device).set(1)
            self.on_recovered(dev)

    def event(self, device: str, kind: str, message: str) -> None:
        """Something happened at a device: logged, and onto the bus (the recorder stores
        it). ``AUTH_FAILURE`` also raises that device's ``auth:`` alarm until acknowledged."""
        if kind not in ("COMMBAD", "COMMOK"):  # the poll task logs those already
            log.warning("%s: %s (%s)", device, kind, escape(message))
        if kind == "AUTH_FAILURE" and f"auth:{device}" in self.ctx.alarms.defs:
            dev = self.ctx.cfg.device(device)
            label = dev.label or device if dev else device
            self.ctx.alarms.set_condition(f"auth:{device}", True, message, None,
                                          said("auth.now", self.language, device=label,
                                               reason=message))
        self.ctx.bus.publish(DeviceEvent(device, kind, message, time.time()))

    def announce(self, device: str, event: str) -> None:
        dev = self.ctx.cfg.device(device)
        if dev is not None:
            self._kind(dev.device_class).announced(device, event)

    def poll_now(self, device: str) -> bool:
        fn = self.poll_now_fns.get(device)
        if fn is not None:
            fn()
        return fn is not None

    def alive(self, source: str, ok: bool = True, reason: str = "") -> None:
        alarm_id = f"push:{source}"
        if alarm_id not in self.ctx.alarms.defs:
            self.ctx.alarms.define(AlarmDef(alarm_id, Severity.MAJOR,
                                            said("push", self.language, source=source),
                                            advice=said("push.advice", self.language)))
        if ok:
            self.heard[source] = time.monotonic()
        else:
            self.heard.pop(source, None)
        self.ctx.alarms.set_condition(alarm_id, not ok, reason or None, None, said(
            "push.now", self.language, source=source, reason=reason) if reason else None)

    def tick(self, now: float) -> None:
        """Time-driven judgements: stale rules, the classes' (a UPS's NOCOMM)."""
        self.rules.tick(now)
        for kind in self.kinds.values():
            kind.tick(now)

    def tick_sources(self, expected: dict[str, float]) -> None:
        """Push sources not heard from within their expected period (source -> seconds)."""
        mono = time.monotonic()
        for source, period in expected.items():
            last = self.heard.get(source)
            if last is not None and mono - last > period:
                self.heard.pop(source)
                self.alive(source, False, said("push.silent", self.language,
                                               seconds=f"{period:g}"))
