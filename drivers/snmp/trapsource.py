"""SNMP traps as a push source: UPS-MIB traps become events at once, and the device that sent
one is polled right away."""

from __future__ import annotations

import logging
import socket

from drivers.base import Feed, PushSource
from drivers.snmp import upsmib
from drivers.snmp.traps import Trap, TrapCounters, TrapReceiver
from monitor.config.model import DeviceConfig, TrapConfig

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


class TrapSource(PushSource):
    name = "snmp_traps"

    def __init__(self, cfg: TrapConfig, devices: list[DeviceConfig]):
        self.cfg = cfg
        self.receiver = TrapReceiver(cfg, set(), self.on_trap)
        self.feed: Feed | None = None
        self.follow(devices)

    @property
    def counters(self) -> TrapCounters:
        return self.receiver.counters

    def follow(self, devices: list[DeviceConfig]) -> None:
        """Accept traps from these devices' agents (and ``accept_from``)."""
        self.hosts = snmp_hosts(devices)
        self.receiver.allowed = set(self.hosts) | set(self.cfg.accept_from)

    async def start(self, feed: Feed) -> None:
        self.feed = feed
        self.receiver.start()

    def on_trap(self, trap: Trap) -> None:
        feed = self.feed
        assert feed is not None
        for dev in self.hosts.get(trap.source, []):
            if trap.oid == upsmib.AUTHENTICATION_FAILURE:
                feed.event(dev.name, "AUTH_FAILURE",
                           "the agent reports a request with a wrong community or "
                           "credentials (authenticationFailure trap)")
                continue
            if dev.device_class == "ups":
                for event in upsmib.trap_events(trap.oid, trap.varbinds):
                    feed.announce(dev.name, event)
            feed.poll_now(dev.name)

    async def stop(self) -> None:
        await self.receiver.close()
