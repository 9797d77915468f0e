"""Poll an SNMP agent: batched GETs, GETBULK table walks, errors sorted at the boundary."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from drivers.base import ConfigurationError, Driver, PollResult, register
from drivers.snmp import upsmib
from drivers.snmp.client import SnmpClient
from drivers.snmp.engine import MibError, resolve_names
from drivers.snmp.spec import SnmpPoint, SnmpSpec
from monitor.core.model import Quality, Reading, Value

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig


@register
class SnmpDriver(Driver):
    type_name = "snmp"
    spec_model = SnmpSpec
    discovers = True
    default_interval = 5.0   # traps tell sooner; the poll confirms
    default_timeout = 2.0

    def __init__(self, device: DeviceConfig):
        super().__init__(device)
        spec: SnmpSpec = self.spec
        self.conn = spec.connection
        self.points: list[SnmpPoint] = spec.points
        self.oids: dict[str, str] | None = None  # point key -> numeric OID, once resolved
        self.client = SnmpClient(self.conn, device.timeout)
        self.seen: list[str] = [p.key for p in self.points]

    def point_keys(self) -> list[str]:
        return self.seen

    def poll_timeout(self) -> float:
        requests = len(self.points) // self.conn.max_varbinds + 2
        if self.spec.profile:
            requests += len(upsmib.SCALARS) // self.conn.max_varbinds + 3 * 4
        return self.device.timeout * (self.conn.retries + 1) * requests + self.device.timeout

    async def _prepare(self) -> dict[str, str]:
        if self.oids is None:
            names = [p.oid for p in self.points if "::" in p.oid]
            try:
                resolved = await asyncio.get_running_loop().run_in_executor(
                    None, resolve_names, names, tuple(self.conn.mib_dirs)) if names else {}
            except MibError as err:
                raise ConfigurationError(str(err)) from err
            self.oids = {p.key: resolved.get(p.oid, p.oid) for p in self.points}
        await self.client.open()
        return self.oids

    async def poll(self) -> PollResult:
        oids = await self._prepare()
        now = time.time()
        name = self.device.name
        readings: list[Reading] = []
        problems: list[str] = []
        if self.spec.profile == "ups-mib":
            varbinds = await self.client.get(list(upsmib.SCALARS))
            for table in upsmib.TABLES:
                varbinds.update(await self.client.walk(table))
            mapped = upsmib.map_ups_mib(varbinds)
            problems += mapped.problems
            readings += [Reading(f"{name}.{k}", v, now, Quality.GOOD if v is not None
                                 else Quality.INVALID) for k, v in mapped.values.items()]
        if self.points:
            values = await self.client.get(list(oids.values()))
            for p in self.points:
                value, problem = self._convert(p, values.get(oids[p.key]))
                readings.append(Reading(f"{name}.{p.key}", value, now,
                                        Quality.INVALID if problem else Quality.GOOD))
                if problem:
                    problems.append(problem)
        self.seen = [r.point[len(name) + 1:] for r in readings]
        return PollResult(readings, problems)

    @staticmethod
    def _convert(point: SnmpPoint, raw: object) -> tuple[Value, str | None]:
        if raw is None:
            return None, f"{point.key}: the agent has no {point.oid} (noSuchObject)"
        if point.map is not None:
            if isinstance(raw, int) and raw in point.map:
                return point.map[raw], None
            return None, f"{point.key}: {raw!r} is not one of {sorted(point.map)}"
        if isinstance(raw, int):
            if point.scale == 1.0 and point.offset == 0.0:
                return float(raw), None
            return raw * point.scale + point.offset, None
        if point.scale != 1.0 or point.offset != 0.0:
            return None, f"{point.key}: expected a number, got {str(raw)[:40]!r}"
        return str(raw), None
