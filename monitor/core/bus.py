"""The event bus: one typed, in-process bus that carries what other parts react to.

``publish`` never blocks and never waits for a subscriber: each subscriber has its own bounded
queue and its own task, so a slow or failing subscriber delays nobody else. A full queue drops
that subscriber's oldest event, counts it, and reports it through ``on_overflow``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from monitor.core.hook import Hook
from monitor.core.model import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something that happened at a device: ONBATT, COMMBAD, SHUTDOWN, a trap, ..."""

    device: str
    kind: str
    message: str
    ts: float


@dataclass(frozen=True, slots=True)
class IncidentNotice:
    """A playbook step tells roles (whoever is on call for each) something, or asks people
    in a roll call whether they are safe (the notifier delivers it)."""

    incident: str
    playbook: str
    step: str
    roles: tuple[str, ...]
    text: str
    drill: bool
    ts: float
    people: tuple[str, ...] = ()
    """These people (``roles`` is then empty): a roll call's, or those a message did not
    reach the first time."""
    rollcall: bool = False
    """Each person is asked whether they are safe (their link answers that)."""
    cause: str = ""
    """What started the incident (an alarm and where): every message says it."""
    key: str = ""
    """Its row in ``notices``, stored with the change that made it and deleted once it was
    delivered: a restart in between sends it (again)."""
    step_id: str = ""
    """The step that sends it (``step`` is its alias), for the timeline's delivery lines."""

    @staticmethod
    def from_json(data: str) -> IncidentNotice:
        """One stored in ``notices`` (as JSON of its fields)."""
        fields = json.loads(data)
        return IncidentNotice(**{**fields, "roles": tuple(fields["roles"]),
                                 "people": tuple(fields["people"])})


@dataclass(frozen=True, slots=True)
class IncidentMilestone:
    """A moment of an incident management reviews: started, acknowledged, approved, escalated,
    a deadline met or missed, resolved, closed (the recorder writes it for Grafana)."""

    incident: str
    playbook: str
    label: str
    scope: str
    drill: bool
    kind: str
    step: str
    actor: str
    text: str
    ts: float


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """An alarm transition: raised, cleared, acknowledged, shelved, retired, ..."""

    alarm: str
    action: str
    state: str
    severity: str
    message: str
    active: bool
    acked: bool
    ts: float
    who: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Readings:
    """The readings of one poll (or one push) of one device, after state and rules saw them."""

    device: str
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class StoreCommitted:
    """The store committed a batch (the sink forwards the outbox then)."""


Handler = Callable[[Any], Awaitable[None] | None]


class Subscription:
    """One subscriber's queue. Iterate it, or give a handler and run ``run()`` as a task."""

    def __init__(self, bus: Bus, name: str, kinds: tuple[type, ...] | None, maxsize: int,
                 handler: Handler | None, lossy: bool):
        self.bus, self.name, self.kinds, self.maxsize = bus, name, kinds, maxsize
        self.handler, self.lossy = handler, lossy
        self.queue: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.delivered = self.dropped = self.errors = 0

    def offer(self, event: Any) -> None:
        if self.kinds is not None and not isinstance(event, self.kinds):
            return
        if len(self.queue) >= self.maxsize:
            self.queue.popleft()
            self.dropped += 1
            if not self.lossy:
                self.bus.overflowed(self)
        self.queue.append(event)
        self.wake.set()

    async def __aiter__(self) -> AsyncIterator[Any]:
        queue = self.queue
        while True:
            while queue:
                yield queue.popleft()
            self.wake.clear()
            await self.wake.wait()

    async def drain(self, within: float) -> list[Any]:
        """Every event that has come, waiting up to ``within`` seconds for one ([] then)."""
        if not self.queue:
            self.wake.clear()
            try:
                async with asyncio.timeout(within):
                    await self.wake.wait()
            except TimeoutError:
                return []
        out = list(self.queue)
        self.queue.clear()
        return out

    async def run(self) -> None:
        """Hand every event to the handler; one that raises is logged, counted, and the next
        event is handed on as usual."""
        assert self.handler is not None
        handler, is_async = self.handler, inspect.iscoroutinefunction(self.handler)
        async for event in self:
            try:
                result = handler(event)
                if is_async:
                    await result  # type: ignore[misc]
                self.delivered += 1
            except Exception:
                self.errors += 1
                self.bus.failed(self)
                if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                    log.exception("bus subscriber %s failed on %s (%d failures so far)",
                                  self.name, type(event).__name__, self.errors)

    def close(self) -> None:
        self.bus.unsubscribe(self)


class Bus:
    """Publish/subscribe by event type, in the event loop's thread."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self.published = 0
        self.on_overflow: Hook[[Subscription]] = Hook("the bus's overflow")
        self.on_error: Hook[[Subscription]] = Hook("the bus's subscriber errors")

    def subscribe(self, name: str, handler: Handler | None = None, *,
                  kinds: tuple[type, ...] | None = None, maxsize: int = 10_000,
                  lossy: bool = False) -> Subscription:
        """A new queue for ``name`` receiving events of ``kinds`` (all when None). With a
        handler, the owner runs ``sub.run()`` as a (supervised) task. ``lossy``: a viewer (a
        browser) whose dropped events are no fault of the daemon's."""
        sub = Subscription(self, name, kinds, maxsize, handler, lossy)
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)

    def publish(self, event: Any) -> None:
        self.published += 1
        for sub in self.subscriptions:
            sub.offer(event)

    def overflowed(self, sub: Subscription) -> None:
        if sub.dropped in (1, 100) or sub.dropped % 10_000 == 0:
            log.error("bus subscriber %s cannot keep up: %d events dropped so far", sub.name,
                      sub.dropped)
        self.on_overflow(sub)

    def failed(self, sub: Subscription) -> None:
        self.on_error(sub)
