"""The SNMP trap and inform receiver (v1, v2c, v3 USM): hands each notification on at once."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.api import v2c

from drivers.snmp.client import plain
from drivers.snmp.engine import AUTH, PRIV
from monitor.config.model import TrapConfig

log = logging.getLogger(__name__)
TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass(frozen=True)
class Trap:
    source: str
    oid: str
    varbinds: dict[str, object]
    received: float


@dataclass
class TrapCounters:
    accepted: int = 0
    unknown_source: int = 0


class TrapReceiver:
    """Listens on UDP; traps from sources not in ``allowed`` are counted and dropped."""

    def __init__(self, cfg: TrapConfig, allowed: set[str], on_trap: Callable[[Trap], None]):
        self.cfg, self.allowed, self.on_trap = cfg, allowed, on_trap
        self.counters = TrapCounters()
        self.engine = engine.SnmpEngine()
        self.sock: socket.socket | None = None
        self.transport: Any = None

    def start(self) -> None:
        """Bind first (traps sent right after start are not lost), then serve."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._buffer(self.sock)
        self.sock.bind((self.cfg.listen, self.cfg.port))
        self.sock.setblocking(False)
        self.transport = udp.UdpAsyncioTransport().open_server_mode(sock=self.sock)
        config.add_transport(self.engine, udp.DOMAIN_NAME, self.transport)
        for n, community in enumerate(self.cfg.communities):
            config.add_v1_system(self.engine, f"trap-{n}",
                                 community.resolve().get_secret_value())
        for user in self.cfg.users:
            kwargs: dict[str, Any] = {}
            if user.auth_protocol and user.auth_key:
                kwargs.update(authProtocol=AUTH[user.auth_protocol],
                              authKey=user.auth_key.resolve().get_secret_value())
            if user.priv_protocol and user.priv_key:
                kwargs.update(privProtocol=PRIV[user.priv_protocol],
                              privKey=user.priv_key.resolve().get_secret_value())
            config.add_v3_user(self.engine, user.user, **kwargs)  # informs: our engine id
            if user.engine_id:  # traps: the sender's engine id
                config.add_v3_user(self.engine, user.user, securityEngineId=v2c.OctetString(
                    hexValue=user.engine_id.removeprefix("0x")), **kwargs)
        ntfrcv.NotificationReceiver(self.engine, self._received)
        log.info("SNMP trap receiver on udp %s:%d", self.cfg.listen, self.cfg.port)

    def _buffer(self, sock: socket.socket) -> None:
        """A receive buffer that holds a flood while it is worked off, so no trap is dropped
        by the kernel: beyond net.core.rmem_max where the process may (CAP_NET_ADMIN)."""
        size = self.cfg.receive_buffer
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports 2x
        if got < size:
            log.warning("SNMP trap receive buffer is %d KiB, not the %d KiB asked for: raise "
                        "net.core.rmem_max, or a trap flood may drop traps", got // 1024,
                        size // 1024)

    def _received(self, snmp_engine: Any, state: Any, _engine_id: Any, _context: Any,
                  varbinds: Any, _ctx: Any) -> None:
        now = time.time()
        _, address = snmp_engine.message_dispatcher.get_transport_info(state)
        source = str(address[0])
        if source not in self.allowed:
            self.counters.unknown_source += 1
            if self.counters.unknown_source in (1, 10, 100, 1000) or \
                    self.counters.unknown_source % 10000 == 0:
                log.warning("SNMP traps from unknown sources dropped: %d so far (last from %s)",
                            self.counters.unknown_source, source)
            return
        values = {str(oid): plain(value) for oid, value in varbinds}
        trap_oid = values.get(TRAP_OID)
        self.counters.accepted += 1
        self.on_trap(Trap(source, str(trap_oid or ""), values, now))

    async def close(self) -> None:
        """Stop listening, let datagrams already queued pass, then release the engine."""
        if self.sock is None:
            return
        self.transport.close_transport()
        await asyncio.sleep(0.05)
        self.engine.transport_dispatcher.close_dispatcher()
        self.sock.close()
        self.sock = None
