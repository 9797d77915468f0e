"""SNMP traps into the daemon: events at once, an immediate poll of the device that sent it."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from drivers.snmp import upsmib
from drivers.snmp.traps import Trap, TrapReceiver
from monitor.config.model import DeviceClass, DeviceConfig

if TYPE_CHECKING:
    from monitor.daemon import Daemon

log = logging.getLogger(__name__)


def snmp_hosts(devices: list[DeviceConfig]) -> dict[str, list[DeviceConfig]]:
    """The SNMP devices by the IPv4 address their agent sends from (names resolved once)."""
    out: dict[str, list[DeviceConfig]] = {}
    for dev in devices:
        if dev.type == "snmp" and dev.enabled:
            host = dev.spec.connection.host
            try:
                address = socket.gethostbyname(host)
            except OSError:
                log.warning("%s: cannot resolve %s; its traps will be dropped", dev.name, host)
                continue
            out.setdefault(address, []).append(dev)
    return out


class TrapWatch:
    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        assert daemon.cfg.traps is not None
        self.receiver = TrapReceiver(daemon.cfg.traps, set(), self.on_trap)
        self.refresh()

    def refresh(self) -> None:
        """Follow the daemon's devices (after a reload)."""
        assert self.daemon.cfg.traps is not None
        self.hosts = snmp_hosts(self.daemon.cfg.devices)
        self.receiver.allowed = set(self.hosts) | set(self.daemon.cfg.traps.accept_from)

    def start(self) -> None:
        self.receiver.start()

    def on_trap(self, trap: Trap) -> None:
        daemon = self.daemon
        for dev in self.hosts.get(trap.source, []):
            if trap.oid == upsmib.AUTHENTICATION_FAILURE:
                daemon.alarms.set_condition(
                    f"operator:{dev.name}", True, trap.oid, trap.received,
                    f"{dev.label or dev.name} 需要人工处理: the agent reports a request with a "
                    f"wrong community or credentials (authenticationFailure trap)")
                continue
            if dev.device_class is DeviceClass.UPS:
                for event in upsmib.trap_events(trap.oid, trap.varbinds):
                    daemon.ups.announced(dev.name, event)
            daemon.poll_now(dev.name)

    async def close(self) -> None:
        await self.receiver.close()
