"""SNMP traps as a push source: UPS-MIB traps become events at once, and the device that sent
one is polled right away."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from drivers.base import Feed, PushSource, register
from drivers.snmp import upsmib
from drivers.snmp.traps import Trap, TrapReceiver
from monitor.config.model import TRAPS, DeviceConfig, TrapConfig

log = logging.getLogger(__name__)


def snmp_hosts(devices: Sequence[DeviceConfig]) -> dict[str, list[DeviceConfig]]:
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


@register
class TrapSource(PushSource):
    """The SNMP trap and inform receiver: it hears the ``snmp`` devices' agents."""

    type_name, spec_model, binds = TRAPS, TrapConfig, ("snmp",)

    def __init__(self, name: str, spec: TrapConfig, devices: Sequence[DeviceConfig]):
        self.receiver = TrapReceiver(spec, set(), self.on_trap)
        self.feed: Feed | None = None
        super().__init__(name, spec, devices)

    def counts(self) -> dict[str, int]:
        c = self.receiver.counters
        return {"accepted": c.accepted, "unknown_source": c.unknown_source}

    def follow(self, devices: Sequence[DeviceConfig]) -> None:
        """Accept traps from these devices' agents (and ``accept_from``)."""
        self.hosts = snmp_hosts(devices)
        self.receiver.allowed = set(self.hosts) | set(self.spec.accept_from)

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
