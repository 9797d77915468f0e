"""Poll an SNMP agent: batched GETs, GETBULK table walks, errors sorted at the boundary."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    bulk_walk_cmd,
    get_cmd,
    walk_cmd,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import IpAddress

from drivers.base import (
    AuthError,
    CommError,
    ConfigurationError,
    Driver,
    PollResult,
    ProtocolError,
    register,
)
from drivers.snmp import upsmib
from drivers.snmp.engine import MibError, auth_data, engine, resolve_names
from drivers.snmp.spec import SnmpPoint, SnmpSpec
from monitor.model import Quality, Reading, Value

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig

MAX_WALK_ROWS = 10_000
_AUTH_ERRORS = (errind.WrongDigest, errind.UnknownUserName, errind.UnknownSecurityName,
                errind.DecryptionError, errind.UnsupportedSecurityLevel,
                errind.AuthenticationFailure)
_MISSING = ("NoSuchObject", "NoSuchInstance", "EndOfMibView")


def plain(value: Any) -> object:
    """A pysnmp value as int, str, or None for noSuchObject/noSuchInstance/endOfMibView."""
    if type(value).__name__ in _MISSING:
        return None
    if isinstance(value, IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    if isinstance(value, univ.OctetString):
        raw = value.asOctets()
        try:
            return raw.decode("utf-8").rstrip("\x00")
        except UnicodeDecodeError:
            return "0x" + raw.hex()
    return str(value)


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
        self.target: UdpTransportTarget | None = None
        self.where = f"{self.conn.host}:{self.conn.port}"
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
        if self.target is None:
            self.target = await UdpTransportTarget.create(
                (self.conn.host, self.conn.port), timeout=self.device.timeout,
                retries=self.conn.retries)
        return self.oids

    def _check(self, indication: Any, status: Any, where: str) -> None:
        if indication:
            if isinstance(indication, _AUTH_ERRORS):
                raise AuthError(f"{self.where} refused the SNMPv3 credentials of user "
                                f"{self.conn.user!r}: {indication}")
            if isinstance(indication, errind.RequestTimedOut):
                hint = ("" if self.conn.version == "3" else
                        " (the agent is down or unreachable, or ignores this community)")
                raise CommError(f"no answer from {self.where}{hint}")
            raise CommError(f"{self.where}: {indication}")
        if status:
            text = status.prettyPrint()
            if text == "authorizationError":
                raise AuthError(f"{self.where}: {where}: access not authorized")
            raise ProtocolError(f"{self.where}: {where}: agent error {text}")

    async def _get(self, oids: list[str]) -> dict[str, object]:
        """Values by OID; a v1 agent's noSuchName drops that OID and asks again."""
        out: dict[str, object] = {}
        todo = list(dict.fromkeys(oids))
        ctx = ContextData(contextName=self.conn.context)
        while todo:
            chunk, todo = todo[:self.conn.max_varbinds], todo[self.conn.max_varbinds:]
            while chunk:
                ind, status, index, binds = await get_cmd(
                    engine(), auth_data(self.conn), self.target, ctx,
                    *(ObjectType(ObjectIdentity(o)) for o in chunk), lookupMib=False)
                if status and status.prettyPrint() == "noSuchName" and int(index) > 0:
                    out[chunk.pop(int(index) - 1)] = None
                    continue
                self._check(ind, status, "GET")
                out.update({str(o): plain(v) for o, v in binds})
                break
        return out

    async def _walk(self, root: str) -> dict[str, object]:
        ctx = ContextData(contextName=self.conn.context)
        auth = auth_data(self.conn)
        if self.conn.version == "1":
            rows = walk_cmd(engine(), auth, self.target, ctx, ObjectType(ObjectIdentity(root)),
                            lexicographicMode=False, lookupMib=False)
        else:
            rows = bulk_walk_cmd(engine(), auth, self.target, ctx, 0, self.conn.max_repetitions,
                                 ObjectType(ObjectIdentity(root)), lexicographicMode=False,
                                 lookupMib=False)
        out: dict[str, object] = {}
        async for ind, status, _, binds in rows:
            self._check(ind, status, f"walk {root}")
            out.update({str(o): plain(v) for o, v in binds})
            if len(out) > MAX_WALK_ROWS:
                raise ProtocolError(f"{self.where}: walk of {root} passed {MAX_WALK_ROWS} rows")
        return out

    async def poll(self) -> PollResult:
        oids = await self._prepare()
        now = time.time()
        name = self.device.name
        readings: list[Reading] = []
        problems: list[str] = []
        if self.spec.profile == "ups-mib":
            varbinds = await self._get(list(upsmib.SCALARS))
            for table in upsmib.TABLES:
                varbinds.update(await self._walk(table))
            mapped = upsmib.map_ups_mib(varbinds)
            problems += mapped.problems
            readings += [Reading(f"{name}.{k}", v, now, Quality.GOOD if v is not None
                                 else Quality.INVALID) for k, v in mapped.values.items()]
        if self.points:
            values = await self._get(list(oids.values()))
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
