"""A push source made up for the tests, and registered by them alone: a gateway that sends JSON
lines over TCP (``{"id": ..., "device": ..., "values": {key: value}}``) and is answered
``ok ID`` once what it sent is committed, ``dup ID`` for a message taken before, and
``fail ID`` when the store could not commit it (the gateway sends it again later).
``registered()`` adds it to the registry for a test; ``python -m tests.gateway run SITE``
runs the daemon with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from drivers.base import SOURCES, Feed, PushSource
from monitor.cli import main
from monitor.config.model import DeviceConfig, PointBase
from monitor.config.types import Strict
from monitor.core.model import Quality, Reading
from monitor.core.store import StoreUnavailable
from tests import util
from tests.conftest import site_yaml


class GatewaySettings(Strict):
    port: int


class GatewayDevice(Strict):
    connection: dict[str, Any] = Field(default_factory=dict)
    points: list[PointBase]


class LineGateway(PushSource):
    """The gateway's listener."""

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
            try:
                writer.write(f"{await self._take(msg)} {msg['id']}\n".encode())
            except StoreUnavailable:
                writer.write(f"fail {msg['id']}\n".encode())
        writer.close()

    async def _take(self, msg: dict[str, Any]) -> str:
        if msg["device"] not in self.devices or not await self.feed.first(self.name, msg["id"]):
            return "dup"
        now = time.time()
        self.feed.readings(msg["device"], [Reading(f"{msg['device']}.{k}", v, now, Quality.GOOD)
                                           for k, v in msg["values"].items()])
        await self.feed.committed(self.name, msg["id"])
        return "ok"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def registered() -> contextlib.AbstractContextManager[None]:
    return util.registered(SOURCES, LineGateway.type_name, LineGateway)


def site(tmp_path: Path, port: int, **extra: Any) -> str:
    """A tank whose level the gateway pushes; site YAML."""
    tank = {"name": "tank", "area": "machine_room", "class": "environment",
            "type": "line_gateway", "interval": 0.3, "failures_before_unavailable": 2,
            "points": [{"key": "level", "unit": "cm", "label": "水箱水位"}]}
    return site_yaml(tmp_path, [tank], [{"name": "tank_low", "point": "tank.level",
                                         "kind": "threshold", "low": 20}],
                     listeners=[{"name": "gateway", "type": "line_gateway",
                                 "settings": {"port": port}}], **extra)


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


if __name__ == "__main__":
    with registered():
        sys.exit(main())
