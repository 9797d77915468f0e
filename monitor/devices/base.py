"""A device class: what one kind of box means, whatever protocol reads it. Registered by name,
as drivers are by type, so the core model, the API and the console never name a class.

A class gives its points canonical keys with labels and units, says its true/false points in
words, may derive points (stored beside the others) and events from what it reads, brings
default rules (a configured rule of the same name replaces one), names the situations its
alarms make (the console's banner: 火警, 市电中断, ...), says which of its points a tile
shows, and may bring parts of its own (the UPS brings the power topology)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.core.model import Reading
from monitor.words.labels import Language, Pair

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig, Rule
    from monitor.core.context import Context
    from monitor.core.part import Part

Record = Callable[[str, str, str], None]
"""Record an event: (device, kind, message)."""


@dataclass(frozen=True)
class PointWords:
    """A canonical point's label in zh-CN and English, and its unit."""

    label: Pair
    unit: str = ""


@dataclass(frozen=True)
class Situation:
    """What the console's banner says while alarms of this kind stand (``{n}``: how many);
    the lowest ``rank`` is shown first; an ``urgent`` one fills the banner."""

    words: Pair
    rank: int
    urgent: bool = False


class DeviceClass:
    """The base: a class of plain boxes. Subclasses set the class attributes they need and
    override the behaviour (each default does nothing)."""

    name: ClassVar[str] = ""
    label: ClassVar[Pair] = ("", "")
    points: ClassVar[Mapping[str, PointWords]] = {}
    """Canonical keys with their words, for points the configuration leaves without."""
    keys: ClassVar[frozenset[str]] = frozenset()
    """Further keys a rule may name on a device whose driver discovers its points."""
    events: ClassVar[Mapping[str, Pair]] = {}
    """The words of the events it records."""
    situations: ClassVar[Mapping[str, Situation]] = {}
    measurement: ClassVar[str] = ""
    """Its InfluxDB measurement (default: the class name)."""
    booleans: ClassVar[str] = "flag"
    """What its true/false points mean when their key does not say (``leak``, ``check``)."""
    tile: ClassVar[str | tuple[str, ...]] = "raised"
    """What an area's tile shows of a device: ``raised`` (true/false points away from rest),
    ``numbers`` (every number), or these keys."""
    needs: ClassVar[float] = 0.0
    """Seconds of battery runtime its devices need by default (power.needs)."""

    def __init__(self, ctx: Context, record: Record):
        self.ctx, self.record = ctx, record

    # -- what it says ------------------------------------------------------------------------
    @classmethod
    def rule_keys(cls) -> frozenset[str]:
        return frozenset(cls.points) | cls.keys

    @classmethod
    def display(cls, key: str, value: Any, language: Language) -> str | None:
        """A value of one of its points in words, where plain numbers and words will not do."""
        return None

    @classmethod
    def situation(cls, key: str, level: str, severity: str, purpose: str) -> str | None:
        """The situation a rule's alarm on point ``key`` makes (``level``: a threshold's, or
        ""; ``purpose``: the point's area's), if any."""
        return None

    @classmethod
    def rules(cls, device: DeviceConfig) -> list[Rule]:
        """The rules a device of this class brings."""
        return []

    def parts(self) -> list[Part]:
        """Parts it brings (loaded, subscribed and closed with the others)."""
        return []

    # -- what it does with readings --------------------------------------------------------
    def accept(self, device: str, readings: list[Reading]) -> list[str]:
        """Readings of a device of this class arrived; what is wrong with them."""
        return []

    def derived(self, key: str, value: Any) -> list[tuple[str, float]]:
        """Fields stored beside a good reading of ``key`` (e.g. a number to integrate)."""
        return []

    def comm(self, device: str, ok: bool, at: float) -> None:
        """A device of this class was lost (``ok`` False) or answers again."""

    def announced(self, device: str, event: str) -> None:
        """A push source announced an event of the device before a poll shows it."""

    def tick(self, now: float) -> None:
        """Once a second."""


OFFLINE = "offline"
COMMON_SITUATIONS = {OFFLINE: Situation(("设备离线 {n} 台", "{n} devices offline"), 40)}
"""What every device's alarms may make: its comm-loss alarm, a device offline."""

REGISTRY: dict[str, type[DeviceClass]] = {}
BUILTIN = ("monitor.devices.plain", "monitor.devices.ups.kind")


def register(cls: type[DeviceClass]) -> type[DeviceClass]:
    REGISTRY[cls.name] = cls
    return cls


def classes() -> dict[str, type[DeviceClass]]:
    """Every registered class by name, the built-in ones loaded first."""
    for module in BUILTIN:  # each registers itself on import
        importlib.import_module(module)
    return REGISTRY


def device_class(name: str) -> type[DeviceClass]:
    """The class registered as ``name`` (the plain base for one unknown: the config loader
    refuses those)."""
    return classes().get(name, DeviceClass)
