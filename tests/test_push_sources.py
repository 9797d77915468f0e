"""A push source is registered by type like a driver: one made up here (a gateway that sends
JSON lines over TCP), and nowhere else, is configured as a listener with its own settings,
binds its devices by type, acknowledges a message only once it is committed, drops a resend
(also after a restart), goes stale when silent (the source's alarm and its device's
availability), and is started, reloaded and stopped with the daemon."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from drivers.base import SOURCES, Feed, PushSource
from monitor.config.model import DeviceConfig, PointBase
from monitor.config.types import Strict
from monitor.core.model import Quality, Reading
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import config
from tests.util import eventually


class GatewaySettings(Strict):
    port: int


class GatewayDevice(Strict):
    connection: dict[str, Any] = Field(default_factory=dict)
    points: list[PointBase]


class LineGateway(PushSource):
    """``{"id": ..., "device": ..., "values": {key: value}}`` per line; answers ``ok ID`` once
    committed, ``dup ID`` for a message it took before."""

    type_name, spec_model, device_model = "line_gateway", GatewaySettings, GatewayDevice
    expected_period = 1.0

    def __init__(self, name: str, spec: GatewaySettings, devices: Sequence[DeviceConfig]):
        self.server: asyncio.Server | None = None
        super().__init__(name, spec, devices)

    def follow(self, devices: Sequence[DeviceConfig]) -> None:
        self.devices = {d.name for d in devices}

    async def start(self, feed: Feed) -> None:
        self.feed = feed
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.spec.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            msg = json.loads(line)
            if "will" in msg:                             # the gateway's last will
                self.feed.alive(self.name, ok=False, reason=msg["will"])
                continue
            self.feed.alive(self.name)
            if msg["device"] not in self.devices or not await self.feed.first(self.name,
                                                                               msg["id"]):
                writer.write(f"dup {msg['id']}\n".encode())
                continue
            now = time.time()
            self.feed.readings(msg["device"], [Reading(f"{msg['device']}.{k}", v, now,
                                                       Quality.GOOD)
                                               for k, v in msg["values"].items()])
            await self.feed.committed()
            writer.write(f"ok {msg['id']}\n".encode())
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
def gateway_type() -> Iterator[None]:
    SOURCES[LineGateway.type_name] = LineGateway
    yield
    del SOURCES[LineGateway.type_name]


def site(tmp_path: Path, port: int) -> Any:
    tank = {"name": "tank", "area": "machine_room", "class": "environment",
            "type": "line_gateway", "interval": 0.3, "failures_before_unavailable": 2,
            "points": [{"key": "level", "unit": "cm", "label": "水箱水位"}]}
    return config(tmp_path, [tank], [{"name": "tank_low", "point": "tank.level",
                                      "kind": "threshold", "low": 20}],
                  listeners=[{"name": "gateway", "type": "line_gateway",
                              "settings": {"port": port}}])


class Sender:
    def __init__(self, port: int):
        self.port = port

    async def will(self, reason: str) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(json.dumps({"will": reason}).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def send(self, message: str, level: float) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(json.dumps({"id": message, "device": "tank",
                                 "values": {"level": level}}).encode() + b"\n")
        answer = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
        writer.close()
        return answer


async def history(daemon: Daemon) -> list[float]:
    return [v for (v,) in await daemon.store.read(lambda c: c.execute(
        "SELECT value FROM history WHERE point = 'tank.level' AND quality = 'good' "
        "ORDER BY ts").fetchall())]


async def test_a_made_up_push_source_works_end_to_end(
        tmp_path: Path, gateway_type: None, daemon_factory: Any) -> None:
    port = peers.free_port()
    cfg = site(tmp_path, port)
    daemon: Daemon = await daemon_factory(cfg)
    tank = Sender(port)
    assert await tank.send("m1", 35.0) == "ok m1"
    assert await history(daemon) == [35.0]              # committed before it was acknowledged
    assert await tank.send("m1", 35.0) == "dup m1"       # a resend is dropped
    assert await history(daemon) == [35.0]
    assert daemon.state.latest["tank.level"].value == 35.0
    await eventually(lambda: daemon.alarms.is_active("comm:tank"), 5)  # silent: stale
    assert daemon.state.devices["tank"].state.value == "unavailable"
    assert daemon.state.latest["tank.level"].quality is Quality.COMM_LOST
    await eventually(lambda: daemon.alarms.is_active("push:gateway"), 5)
    assert await tank.send("m2", 15.0) == "ok m2"        # heard again, and judged
    assert not daemon.alarms.is_active("comm:tank")
    assert not daemon.alarms.is_active("push:gateway")
    await eventually(lambda: daemon.alarms.is_active("tank_low.low"), 2)
    await tank.will("gateway offline: power cut")       # it says goodbye: at once
    await eventually(lambda: daemon.alarms.is_active("push:gateway"), 2)
    assert "gateway offline: power cut" in daemon.alarms.alarms["push:gateway"].message
    assert await daemon.reload(site(tmp_path, port)) == []   # stopped and started again
    assert await tank.send("m3", 25.0) == "ok m3"
    await daemon.stop()
    with pytest.raises(OSError):                          # stopped with the daemon
        await Sender(port).send("m4", 25.0)
    again = await daemon_factory(cfg)                     # ids survive a restart
    assert await tank.send("m3", 25.0) == "dup m3"
    assert await tank.send("m4", 26.0) == "ok m4"
    assert await history(again) == [35.0, 15.0, 25.0, 26.0]


def test_a_push_only_device_needs_its_listener(tmp_path: Path, gateway_type: None) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as info:
        config(tmp_path, [{"name": "tank", "area": "machine_room", "class": "environment",
                           "type": "line_gateway", "points": [{"key": "level"}]}])
    assert "devices[0].type: no listener of type 'line_gateway' hears it" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config(tmp_path, [], listeners=[{"name": "g", "type": "line_gateway",
                                         "settings": {"port": "eighty"}}])
    assert "listeners[0].settings.port: Input should be a valid integer" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config(tmp_path, [], listeners=[{"name": "g", "type": "carrier_pigeon"}])
    assert "listeners[0].type: unknown listener type 'carrier_pigeon' (known: " in \
        str(info.value)
