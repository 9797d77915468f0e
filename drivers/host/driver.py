"""Poll a host: each check that is due runs, all at once, each within its own timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from drivers.base import Driver, Issue, PollResult, register
from drivers.host import checks
from drivers.host.spec import (
    CHECK_KINDS,
    EXTRA,
    Check,
    HostSpec,
    HttpCheck,
    IcmpCheck,
    InterfaceCheck,
    TcpCheck,
)
from drivers.snmp.client import SnmpClient
from monitor.core.model import Quality, Reading

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig



@register
class HostDriver(Driver):
    type_name = "host"
    spec_model = HostSpec
    spec_tags = CHECK_KINDS
    default_interval = 10.0
    default_timeout = 3.0

    def __init__(self, device: DeviceConfig):
        super().__init__(device)
        spec: HostSpec = self.spec
        self.host = spec.connection.host
        self.checks: list[Check] = spec.points
        self.next_at: dict[str, float] = {}
        snmp = spec.connection.snmp
        self.interfaces = checks.Interfaces(SnmpClient(snmp, device.timeout)) \
            if snmp is not None else None

    @classmethod
    def check_site(cls, devices: Sequence[DeviceConfig]) -> list[tuple[int, Issue]]:
        issues: list[tuple[int, Issue]] = []
        for i, dev in enumerate(devices):
            for j, c in enumerate(dev.spec.points):
                if c.interval is not None and c.interval < dev.interval:
                    issues.append((i, (("points", j, "interval"),
                                       f"{c.interval:g} s is shorter than the device's interval "
                                       f"({dev.interval:g} s), which checks run on")))
                if (c.timeout or dev.timeout) >= (c.interval or dev.interval):
                    issues.append((i, (("points", j, "timeout"),
                                       "a check's timeout must be shorter than its interval")))
        return issues

    def point_keys(self) -> list[str]:
        return [k for c in self.checks for k in (c.key, *(f"{c.key}.{x}"
                                                          for x in EXTRA[c.check]))]

    def poll_timeout(self) -> float:
        return max(self._timeout(c) for c in self.checks) + 1.0

    def _timeout(self, check: Check) -> float:
        return float(check.timeout or self.device.timeout)

    async def poll(self) -> PollResult:
        now = time.monotonic()
        due = [c for c in self.checks if self.next_at.get(c.key, 0.0) <= now]
        for c in due:  # a little early is on time: the poller's jitter must not skip a turn
            self.next_at[c.key] = now + (c.interval or self.device.interval) * 0.9
        outcomes = await asyncio.gather(*(self._run(c) for c in due))
        stamp = time.time()
        name = self.device.name
        readings: list[Reading] = []
        problems: list[str] = []
        for c, outcome in zip(due, outcomes, strict=True):
            keys = (c.key, *(f"{c.key}.{x}" for x in EXTRA[c.check]))
            if isinstance(outcome, str):
                problems.append(f"{c.key}: {outcome}")
                readings += [Reading(f"{name}.{k}", None, stamp, Quality.INVALID) for k in keys]
                continue
            values = {c.key: outcome.up, f"{c.key}.detail": outcome.detail,
                      **{f"{c.key}.{k}": v for k, v in outcome.extra.items()}}
            readings += [Reading(f"{name}.{k}", values.get(k), stamp) for k in keys]
        return PollResult(readings, problems)

    async def _run(self, check: Check) -> checks.Outcome | str:
        """The check's outcome, or why it could not tell."""
        timeout = self._timeout(check)
        try:
            async with asyncio.timeout(timeout + 0.5):
                if isinstance(check, IcmpCheck):
                    return await checks.Icmp.run(self.host, check, timeout)
                if isinstance(check, TcpCheck):
                    return await checks.tcp(self.host, check, timeout)
                if isinstance(check, HttpCheck):
                    return await checks.http(self.host, check, timeout)
                assert isinstance(check, InterfaceCheck) and self.interfaces is not None
                return await self.interfaces.run(check)
        except checks.CheckError as err:
            return str(err)
        except TimeoutError:
            return f"no answer from {self.host} within {timeout:g} s"
