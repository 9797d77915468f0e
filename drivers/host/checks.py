"""One run of each kind of check. A check that finds its target down is an answer (up =
False, with the reason), not a driver failure; only what leaves the state unknown (no SNMP
answer, no ICMP socket) is a problem, and its readings are invalid."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import httpx
import icmplib

from drivers.base import DriverError
from drivers.host.spec import HttpCheck, IcmpCheck, InterfaceCheck, TcpCheck
from drivers.snmp.client import SnmpClient
from monitor.core.model import Value

BODY_LIMIT = 64 * 1024
IF_NAME, IF_DESCR = "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.2.2.1.2"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
OPER_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
               7: "lowerLayerDown"}


class CheckError(Exception):
    """The check could not tell whether its target is up."""


@dataclass
class Outcome:
    """``up``, the reason when not, and the other readings by key suffix."""

    up: bool
    detail: str = ""
    extra: dict[str, Value] = field(default_factory=dict)


class Icmp:
    """Unprivileged ICMP sockets where the kernel allows (``net.ipv4.ping_group_range``),
    else raw sockets (root or CAP_NET_RAW)."""

    privileged: bool | None = None

    @classmethod
    async def run(cls, host: str, check: IcmpCheck, within: float) -> Outcome:
        interval = min(0.2, within / (check.count + 1))
        wait = max(0.1, within - interval * (check.count - 1))
        modes = [cls.privileged] if cls.privileged is not None else [False, True]
        for privileged in modes:
            try:
                reply = await icmplib.async_ping(host, count=check.count, interval=interval,
                                                 timeout=wait, privileged=privileged)
            except icmplib.SocketPermissionError:
                continue
            except icmplib.NameLookupError:
                return Outcome(False, f"cannot resolve {host}")
            except icmplib.ICMPLibError as err:
                raise CheckError(f"ICMP to {host}: {err}") from err
            cls.privileged = privileged
            loss = round(reply.packet_loss * 100, 1)
            return Outcome(reply.is_alive, "" if reply.is_alive else
                           f"no echo reply to {check.count} requests",
                           {"rtt": round(reply.avg_rtt, 3) if reply.is_alive else None,
                            "loss": loss})
        raise CheckError("ICMP is not allowed to this process: run as root, give it "
                         "CAP_NET_RAW, or let its group use ping sockets "
                         "(sysctl net.ipv4.ping_group_range)")


async def tcp(host: str, check: TcpCheck, within: float) -> Outcome:
    started = time.monotonic()
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(host, check.port)
    except TimeoutError:
        return Outcome(False, f"no answer on port {check.port} within {within:g} s")
    except OSError as err:
        return Outcome(False, f"port {check.port}: "
                              f"{os.strerror(err.errno) if err.errno else err}")
    ms = round((time.monotonic() - started) * 1000, 3)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return Outcome(True, extra={"ms": ms})


async def http(host: str, check: HttpCheck, within: float) -> Outcome:
    port = f":{check.port}" if check.port else ""
    url = check.url if "://" in check.url else f"http://{_bracketed(host)}{port}{check.url}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(within), httpx.AsyncClient(
                verify=check.verify_tls, timeout=within, follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0)) as client, \
                client.stream("GET", url) as resp:
            body = b""
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) >= BODY_LIMIT:
                    break
    except TimeoutError:
        return Outcome(False, f"no answer within {within:g} s", {"status": None})
    except httpx.HTTPError as err:
        return Outcome(False, f"{type(err).__name__}: {err}"[:200], {"status": None})
    extra: dict[str, Value] = {"ms": round((time.monotonic() - started) * 1000, 3),
                               "status": resp.status_code}
    if resp.status_code not in check.expect_status:
        return Outcome(False, f"HTTP {resp.status_code}, expected "
                              f"{', '.join(map(str, check.expect_status))}", extra)
    if check.expect_body is not None and \
            check.expect_body not in body[:BODY_LIMIT].decode("utf-8", "replace"):
        return Outcome(False, f"the answer does not contain {check.expect_body!r}", extra)
    return Outcome(True, extra=extra)


class Interfaces:
    """ifOperStatus over SNMP; interface names are looked up once (ifName, then ifDescr)."""

    def __init__(self, client: SnmpClient):
        self.client = client
        self.index: dict[str, int] = {}

    async def run(self, check: InterfaceCheck) -> Outcome:
        try:
            await self.client.open()
            index = await self._index(check.interface)
            raw = (await self.client.get([f"{IF_OPER_STATUS}.{index}"])).get(
                f"{IF_OPER_STATUS}.{index}")
        except DriverError as err:
            raise CheckError(str(err)) from err
        if not isinstance(raw, int) or raw not in OPER_STATUS:
            raise CheckError(f"{self.client.where}: interface {check.interface}: "
                             f"ifOperStatus is {raw!r}, not one of 1-7")
        status = OPER_STATUS[raw]
        return Outcome(raw == 1, "" if raw == 1 else f"interface {check.interface} is "
                                                      f"{status}", {"status": status})

    async def _index(self, interface: int | str) -> int:
        if isinstance(interface, int):
            return interface
        if interface not in self.index:
            for table in (IF_NAME, IF_DESCR):
                rows = await self.client.walk(table)
                found = [int(oid.rsplit(".", 1)[1]) for oid, v in rows.items() if v == interface]
                if found:
                    self.index[interface] = found[0]
                    break
            else:
                raise CheckError(f"{self.client.where} has no interface named {interface!r} "
                                 f"(in ifName or ifDescr)")
        return self.index[interface]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
