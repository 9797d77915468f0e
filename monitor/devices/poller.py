"""One asyncio task per device: poll on time, time out, back off, track availability."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from drivers.base import Driver, DriverError, OperatorError, PollResult, ProtocolError
from monitor.config.model import DeviceConfig
from monitor.core.model import Quality, Reading
from monitor.core.supervisor import wait_event

log = logging.getLogger(__name__)


class PollSink(Protocol):
    def on_poll(self, device: DeviceConfig, result: PollResult, latency: float) -> None: ...
    def on_failure(self, device: DeviceConfig, reason: str, unavailable: bool,
                   operator: bool) -> None: ...
    def on_recovered(self, device: DeviceConfig) -> None: ...


class DevicePoller:
    """Polls one device forever; nothing it does can delay another device."""

    def __init__(self, device: DeviceConfig, driver: Driver, sink: PollSink,
                 clock: Callable[[], float] = time.monotonic, *, available: bool = True):
        self.device, self.driver, self.sink = device, driver, sink
        self.failures = 0
        self.available = available
        """False when the device was unavailable before (a restart): its first answer is a
        recovery."""
        self.clock = clock
        self.wake = asyncio.Event()
        self.running = True
        self.needs_operator = False

    def stop(self) -> None:
        """End the loop. A cancellation alone is not enough: a library that runs
        ``asyncio.wait_for`` inside a poll can swallow it on Python 3.11."""
        self.running = False
        self.wake.set()

    def poll_now(self) -> None:
        """Poll at once instead of waiting for the interval (a trap said something changed)."""
        self.wake.set()

    def next_delay(self) -> float:
        d = self.device
        if self.failures == 0:
            return d.interval * (1 + random.uniform(-d.jitter, d.jitter))
        if self.needs_operator:  # no quick retries while a person has to act
            return max(d.backoff_max, d.interval)
        return min(d.interval * 2 ** (self.failures - 1), max(d.backoff_max, d.interval))

    async def run(self) -> None:
        d = self.device
        await asyncio.sleep(random.uniform(0, d.interval * d.jitter))
        while self.running:
            started = self.clock()
            try:
                async with asyncio.timeout(self.driver.poll_timeout()):
                    result = await self.driver.poll()
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._failed(f"no answer within {self.driver.poll_timeout():g} s")
            except OperatorError as err:
                self._failed(str(err), operator=True)
            except ProtocolError as err:  # it answers, but nonsense: invalid, not comm loss
                self._succeeded(self._invalid(str(err)), self.clock() - started)
            except DriverError as err:
                self._failed(str(err))
            except Exception as err:  # a driver bug must not kill the poll task
                log.exception("%s: driver error", d.name)
                self._failed(f"driver error: {err!r}")
            else:
                try:
                    self._succeeded(result, self.clock() - started)
                except Exception:  # a bug downstream must not end this device's polling
                    log.exception("%s: handling the poll result failed", d.name)
            delay = self.next_delay() - (self.clock() - started)
            if delay > 0 and self.running:
                self.wake.clear()
                await wait_event(self.wake, delay)

    def _invalid(self, problem: str) -> PollResult:
        now = time.time()
        return PollResult([Reading(f"{self.device.name}.{key}", None, now, Quality.INVALID)
                           for key in self.driver.point_keys()], [problem])

    def _succeeded(self, result: PollResult, latency: float) -> None:
        if not self.available:
            log.warning("%s: recovered after %d failed polls", self.device.name, self.failures)
            self.available = True
            self.sink.on_recovered(self.device)
        self.failures = 0
        self.needs_operator = False
        self.sink.on_poll(self.device, result, latency)

    def _failed(self, reason: str, *, operator: bool = False) -> None:
        self.failures += 1
        self.needs_operator = operator
        now_unavailable = operator or self.failures >= self.device.failures_before_unavailable
        if self.available and now_unavailable:
            log.warning("%s: unavailable after %d failed polls: %s", self.device.name,
                        self.failures, reason)
            self.available = False
        self.sink.on_failure(self.device, reason, not self.available, operator)
