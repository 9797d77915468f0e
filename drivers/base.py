"""What every driver is: a registry entry, a spec model, a poll, and one error tree."""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel

from monitor.core.model import Reading

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig


class DriverError(Exception):
    """Root of every driver error; library errors are translated into these."""


class CommError(DriverError):
    """A passing fault: refused, timed out, closed; retried with backoff."""


class ProtocolError(DriverError):
    """The device answered, but not with something usable."""


class OperatorError(DriverError):
    """Retrying will not help until a person acts: not retried quickly, raised as an alarm."""


class AuthError(OperatorError):
    """Credentials refused (community, user, password, key)."""


class ConfigurationError(OperatorError):
    """The device says the configuration names something it does not have."""


@dataclass
class PollResult:
    """Readings of one poll plus the protocol problems met (their points read ``invalid``)."""

    readings: list[Reading]
    problems: list[str] = field(default_factory=list)


Issue = tuple[tuple[str | int, ...], str]
"""A config problem found by a driver: path inside the device entry, message."""


class Driver(abc.ABC):
    """One instance per device; used by exactly one poll task."""

    type_name: ClassVar[str]
    spec_model: ClassVar[type[BaseModel]]
    """Validates ``{"connection": ..., "points": [...]}`` of a device entry."""
    spec_tags: ClassVar[frozenset[str]] = frozenset()
    """The tags of the spec's tagged unions (left out of the paths in config errors)."""
    default_interval: ClassVar[float] = 10.0
    default_timeout: ClassVar[float] = 3.0
    """Poll interval and timeout for devices that do not set their own."""
    discovers: ClassVar[bool] = False
    """With no points configured, the driver reports whatever the device has."""

    def __init__(self, device: DeviceConfig):
        self.device = device
        self.spec: Any = device.spec

    @classmethod
    def check_site(cls, devices: Sequence[DeviceConfig]) -> list[tuple[int, Issue]]:
        """Cross-device checks for this driver; returns (device index, issue) pairs."""
        return []

    @abc.abstractmethod
    def point_keys(self) -> list[str]:
        """Keys of the points this device provides."""

    def poll_timeout(self) -> float:
        """How long one whole poll may take before the runtime gives up on it."""
        return float(self.device.timeout)

    @abc.abstractmethod
    async def poll(self) -> PollResult:
        """Read every point once; raise a DriverError when the device cannot be read."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Feed(Protocol):
    """Where a push source hands what it hears (the daemon's core model implements it)."""

    def readings(self, device: str, readings: list[Reading]) -> None:
        """Values a device pushed (MQTT, webhooks): judged and stored like a poll's; the
        device is heard from (its availability)."""

    async def committed(self, source: str | None = None, message: str | None = None) -> None:
        """Wait until what was handed over so far is committed: acknowledge only then (an
        MQTT QoS 1 ack, a GB/T 26875 确认, a webhook's 200). With the ``source`` and
        ``message`` id that ``first`` took, its mark is written with what it brought, so a
        resend is known only once that is kept. StoreUnavailable: it was not committed."""

    async def first(self, source: str, message: str) -> bool:
        """Whether ``message`` (an id the source names) is heard for the first time; then
        hand over what it brings and ``await committed(source, message)``: the id is kept
        (two days, also across a restart) and a resend is dropped. A resend of one whose
        commit is pending waits for it, so a duplicate can be acknowledged at once
        (StoreUnavailable: that commit failed; acknowledge nothing)."""

    @property
    def language(self) -> str:
        """The site's language (``zh-CN`` or ``en``), for what a source says in events."""
        ...

    def event(self, device: str, kind: str, message: str) -> None:
        """Something happened at ``device``. Kind ``AUTH_FAILURE`` is an operator alarm."""

    def announce(self, device: str, event: str) -> None:
        """A UPS announced a NUT event (``ONBATT``, ...) before the next poll shows it."""

    def poll_now(self, device: str) -> bool:
        """Poll ``device`` at once (its state changed); False when it is not polled."""

    def alive(self, source: str, ok: bool = True, reason: str = "") -> None:
        """``source`` is heard from (a message, a heartbeat), or (ok=False) said goodbye
        (a last-will message): its availability."""


class PushSource(abc.ABC):
    """A listener beside the polled drivers (Telegraf's ServiceInput), configured under
    ``listeners`` by ``type`` with its own ``settings`` (``spec_model``): start, stop, and
    hand what arrives to a ``Feed``. It serves the devices whose ``type`` is one it
    ``binds``: its own type's devices push only (``device_model`` checks their connection and
    points); another's are polled too (traps for SNMP devices). ``expected_period``: the
    source is heard from at least this often, or it is stale (None: it speaks only when
    something happens, like SNMP traps)."""

    type_name: ClassVar[str]
    spec_model: ClassVar[type[BaseModel]]
    device_model: ClassVar[type[BaseModel] | None] = None
    binds: ClassVar[tuple[str, ...]] = ()
    """Device types besides its own whose devices it serves."""
    expected_period: float | None = None

    def __init__(self, name: str, spec: Any, devices: Sequence[DeviceConfig]):
        """``devices``: those it serves (its own type's and the ones it binds)."""
        self.name, self.spec = name, spec
        self.follow(devices)

    def follow(self, devices: Sequence[DeviceConfig]) -> None:  # noqa: B027 - optional hook
        """Serve these devices (at start)."""

    @classmethod
    def serves(cls, device: DeviceConfig) -> bool:
        return device.enabled and (device.type == cls.type_name or device.type in cls.binds)

    @abc.abstractmethod
    async def start(self, feed: Feed) -> None:
        """Start listening (bind first, so nothing sent right after start is lost)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop listening; let what already arrived pass."""

    def counts(self) -> dict[str, int]:
        """Messages by outcome (``accepted``, ``unknown_source``, ...), for /metrics."""
        return {}


class ExecutorDriver(Driver):
    """A driver whose work blocks (OpenCV frame checks, vendor SDKs): ``read`` runs in a
    bounded thread pool shared by such drivers, never on the event loop."""

    max_workers: ClassVar[int] = 4
    _pool: ClassVar[Any] = None

    @abc.abstractmethod
    def read(self) -> PollResult:
        """Read every point once, blocking; raise a DriverError when it cannot."""

    async def poll(self) -> PollResult:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        cls = ExecutorDriver
        if cls._pool is None:
            cls._pool = ThreadPoolExecutor(max_workers=cls.max_workers,
                                           thread_name_prefix="driver-pool")
        return await asyncio.get_running_loop().run_in_executor(cls._pool, self.read)


REGISTRY: dict[str, type[Driver]] = {}
"""Device types that are polled (a blocking one through ``ExecutorDriver``)."""
SOURCES: dict[str, type[PushSource]] = {}
"""Listener types; a device of one of these types pushes only."""
BUILTIN = ("drivers.modbus", "drivers.nut", "drivers.snmp", "drivers.host", "drivers.gb26875")

T = TypeVar("T", type[Driver], type[PushSource])


def register(cls: T) -> T:
    """Register a driver or a push source by its type (a decorator)."""
    if issubclass(cls, PushSource):
        SOURCES[cls.type_name] = cls
    else:
        REGISTRY[cls.type_name] = cls
    return cls


def _builtin() -> None:
    for module in BUILTIN:  # each registers itself on import
        importlib.import_module(module)


def driver_class(type_name: str) -> type[Driver] | None:
    """The driver registered as ``type_name``, loading the built-in ones first."""
    _builtin()
    return REGISTRY.get(type_name)


def source_class(type_name: str) -> type[PushSource] | None:
    """The push source registered as ``type_name``."""
    _builtin()
    return SOURCES.get(type_name)


def known_types() -> list[str]:
    """Every device type: polled, and pushing only."""
    _builtin()
    return sorted({*REGISTRY, *(t for t, s in SOURCES.items() if s.device_model is not None)})


def known_sources() -> list[str]:
    _builtin()
    return sorted(SOURCES)
