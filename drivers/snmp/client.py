"""SNMP requests to one agent: GET in batches, walks, errors sorted at the boundary. Used by
the SNMP driver and by the host driver's interface checks."""

from __future__ import annotations

from typing import Any

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

from drivers.base import AuthError, CommError, ProtocolError
from drivers.snmp.engine import auth_data, engine
from drivers.snmp.spec import SnmpConnection

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


class SnmpClient:
    """One agent, as ``conn`` names it; ``timeout`` per request (``conn.retries`` more)."""

    def __init__(self, conn: SnmpConnection, timeout: float):
        self.conn, self.timeout = conn, timeout
        self.target: UdpTransportTarget | None = None
        self.where = f"{conn.host}:{conn.port}"

    async def open(self) -> None:
        if self.target is None:
            self.target = await UdpTransportTarget.create(
                (self.conn.host, self.conn.port), timeout=self.timeout,
                retries=self.conn.retries)

    def check(self, indication: Any, status: Any, where: str) -> None:
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

    async def get(self, oids: list[str]) -> dict[str, object]:
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
                self.check(ind, status, "GET")
                out.update({str(o): plain(v) for o, v in binds})
                break
        return out

    async def walk(self, root: str) -> dict[str, object]:
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
            self.check(ind, status, f"walk {root}")
            out.update({str(o): plain(v) for o, v in binds})
            if len(out) > MAX_WALK_ROWS:
                raise ProtocolError(f"{self.where}: walk of {root} passed {MAX_WALK_ROWS} rows")
        return out

