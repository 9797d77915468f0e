"""Supervised background tasks: a long task that dies is restarted with backoff and reported;
one-shot work (a message's attempt, a playbook's action, a notice) runs under it too: one
that fails is logged and reported, and at stop each part finishes or cancels its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Factory = Callable[[], Coroutine[Any, Any, None]]
FaultReport = Callable[[str, str | None], None]
"""(task name, what went wrong) when a task dies; (task name, None) once it runs again."""


class Supervisor:
    def __init__(self, on_fault: FaultReport, *, backoff: float = 1.0,
                 backoff_max: float = 60.0, stable_after: float = 30.0):
        self.on_fault = on_fault
        self.backoff, self.backoff_max, self.stable_after = backoff, backoff_max, stable_after
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False
        self._stops: dict[str, Callable[[], None]] = {}
        self._ending: set[str] = set()
        self.faulty: set[str] = set()
        """Tasks reported dead and not yet seen running long enough since."""
        self.once: dict[str, set[asyncio.Task[Any]]] = {}
        """One-shot work under way, by the name of its kind."""

    def run_once(self, name: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` once as work of kind ``name``. If it raises, that is logged and
        reported (``internal:NAME``) until work of that kind next ends well."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        running = self.once.setdefault(name, set())
        running.add(task)
        task.add_done_callback(lambda t: self._done_once(name, t))
        return task

    def _done_once(self, name: str, task: asyncio.Task[Any]) -> None:
        self.once.get(name, set()).discard(task)
        if task.cancelled():
            return
        err = task.exception()
        if err is not None:
            log.error("%s failed", name, exc_info=err)
            self.faulty.add(name)
            self.on_fault(name, f"{type(err).__name__}: {err}")
        elif name in self.faulty:
            self.faulty.discard(name)
            self.on_fault(name, None)

    def busy(self, name: str) -> bool:
        """Whether one-shot work of kind ``name`` is under way."""
        return bool(self.once.get(name))

    async def finish(self, name: str, within: float | None = None) -> None:
        """Let one-shot work of kind ``name`` end (at stop); after ``within`` seconds, or at
        once with ``within=None``, what is left is cancelled."""
        running = list(self.once.get(name, ()))
        if not running:
            return
        if within is not None:
            await asyncio.wait(running, timeout=within)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def spawn(self, name: str, factory: Factory,
              stop: Callable[[], None] | None = None) -> asyncio.Task[None]:
        """Run ``factory()`` as task ``name``; restart it whenever it ends or dies, until
        ``stop``. ``stop`` also calls the task's own ``stop`` (a flag it ends on)."""
        task = asyncio.create_task(self._keep(name, factory), name=name)
        self.tasks[name] = task
        if stop is not None:
            self._stops[name] = stop
        return task

    def closing(self) -> None:
        """The process is stopping: tasks that end now are not restarted."""
        self.stopping = True

    async def _keep(self, name: str, factory: Factory) -> None:
        delay = self.backoff
        loop = asyncio.get_running_loop()
        while not self.stopping:
            started = loop.time()
            try:
                await factory()
                reason = "ended unexpectedly"
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if self.stopping or name in self._ending:
                    return
                reason = f"{type(err).__name__}: {err}"
                log.exception("task %s died", name)
            if self.stopping or name in self._ending:
                return
            if loop.time() - started > self.stable_after:
                delay = self.backoff
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log.error("task %s %s; restarting in %g s", name, reason, delay)
            self.faulty.add(name)
            self.on_fault(name, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
            loop.call_later(self.stable_after, self._maybe_recovered, name, self.restarts[name])

    def _maybe_recovered(self, name: str, restarts: int) -> None:
        """No death since the restart ``restarts``, ``stable_after`` seconds ago: healthy."""
        task = self.tasks.get(name)
        if not self.stopping and task is not None and not task.done() \
                and self.restarts.get(name) == restarts:
            log.info("task %s runs again since its restart", name)
            self.faulty.discard(name)
            self.on_fault(name, None)

    async def stop(self, name: str | None = None) -> None:
        """Stop one task (by name) or all of them, and wait for them to end."""
        if name is None:
            self.stopping = True
        names = list(self.tasks) if name is None else [name]
        self._ending.update(names)
        for n in names:
            stop = self._stops.pop(n, None)
            if stop is not None:
                stop()
        tasks = [self.tasks.pop(n) for n in names if n in self.tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ending.difference_update(names)
        if name is not None and name in self.faulty:  # gone for good (a reload removed it)
            self.faulty.discard(name)
            self.on_fault(name, None)


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` pass. (``asyncio.wait_for`` on Python 3.11
    can swallow a cancellation that races its timeout; ``asyncio.timeout`` does not.)"""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
