"""The ``gb26875`` listener: Vigil as the monitoring centre a building's transmission devices
(用户信息传输装置) report to, over TCP and UDP.

Each frame is answered: 确认 (command 3, its serial number) once what it brought is committed,
否认 (command 6) for a frame whose checksum or data is wrong, or that comes from an address no
device is configured for (so the sender knows it was not taken). A frame sent again (same
address, serial number, time label and data) is confirmed again and counted once. Bytes that
make no frame are skipped; a connection silent for ``idle`` is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from drivers.base import Feed, PushSource, register
from drivers.gb26875.data import DataError, decode_data
from drivers.gb26875.frame import Command, Frame, FrameError, Splitter, decode
from drivers.gb26875.meaning import meaning
from drivers.gb26875.spec import Gb26875Device, Gb26875Settings
from monitor.config.model import DeviceConfig
from monitor.core.store import StoreUnavailable

log = logging.getLogger(__name__)
TYPE = "gb26875"
CLOCK_OFF = 600.0
"""Seconds a device's time label may be off before it is said to be wrong."""


@register
class Gb26875Source(PushSource):
    type_name, spec_model, device_model = TYPE, Gb26875Settings, Gb26875Device

    def __init__(self, name: str, spec: Gb26875Settings, devices: Sequence[DeviceConfig]):
        self.feed: Feed | None = None
        self.server: asyncio.Server | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.clients: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        """The open TCP connections' tasks, and where each answers."""
        self.counters: Counter[str] = Counter()
        self.unknown: set[str] = set()
        self.clock_said: dict[str, float] = {}
        """Device -> when its clock was last said to be off (monotonic)."""
        super().__init__(name, spec, devices)

    def follow(self, devices: Sequence[DeviceConfig]) -> None:
        self.by_address = {d.spec.connection.address.lower(): d for d in devices
                           if d.type == TYPE}

    def counts(self) -> dict[str, int]:
        return dict(self.counters)

    async def start(self, feed: Feed) -> None:
        self.feed = feed
        spec: Gb26875Settings = self.spec
        if spec.tcp:
            self.server = await asyncio.start_server(self._client, spec.listen, spec.port,
                                                     backlog=1024)
        if spec.udp:
            loop = asyncio.get_running_loop()
            self.udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(spec.listen, spec.port))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.clients.values():   # each ends once what it holds is answered
            writer.close()
        if self.clients:
            await asyncio.wait(list(self.clients), timeout=5)
        if self.server is not None:
            await self.server.wait_closed()
        if self.udp is not None:
            self.udp.close()

    # -- TCP ------------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.clients) >= self.spec.max_connections:
            self.counters["connections_refused"] += 1
            writer.close()
            return
        self.clients[task] = writer
        splitter = Splitter()
        try:
            while True:
                wait = self.spec.quiet if splitter.waiting else self.spec.idle
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), wait)
                except TimeoutError:
                    if not splitter.waiting:
                        break                                   # idle: closed
                    items = splitter.resync()
                else:
                    if not chunk:
                        break
                    items = splitter.feed(chunk)
                self.counters["skipped_bytes"] += splitter.skipped
                splitter.skipped = 0
                for item in items:
                    answer = await self.take(item)
                    if answer is not None:
                        writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients.pop(task, None)
            writer.close()

    # -- one frame ------------------------------------------------------------------------
    async def take(self, item: Frame | FrameError) -> bytes | None:
        """The answer to one frame (None: none, or not yet: the sender tries again)."""
        feed = self.feed
        assert feed is not None
        if isinstance(item, FrameError):
            self.counters["bad_frames"] += 1
            log.warning("%s: a bad frame: %s", self.name, item.reason)
            if item.serial is None or item.source is None or item.destination is None:
                return None
            refused = Frame(item.serial, Command.DENY, source=item.source,
                            destination=item.destination)
            return refused.reply(Command.DENY, datetime.now()).encode()
        if item.command != Command.SEND:
            self.counters["not_data"] += 1
            return None
        address = item.source.hex()
        device = self.by_address.get(address)
        if device is None:
            self.counters["unknown_source"] += 1
            if address not in self.unknown:
                self.unknown.add(address)
                log.warning("%s: frames from %s, which no device has as its address: "
                            "refused", self.name, address)
            return item.reply(Command.DENY, datetime.now()).encode()
        try:
            infos = decode_data(item.data)
        except DataError as err:
            self.counters["bad_frames"] += 1
            log.warning("%s: %s: %s", self.name, device.name, err)
            return item.reply(Command.DENY, datetime.now()).encode()
        message = f"{address}:{item.serial}:{zlib.crc32(item.sent + item.data):08x}"
        try:
            if await feed.first(self.name, message):
                heard = meaning(device.name, device.spec.points, infos, time.time(),
                                feed.language)
                feed.readings(device.name, heard.readings)
                for kind, text in heard.events + self._clock(device.name, item):
                    feed.event(device.name, kind, text)
                await feed.committed(self.name, message)
                self.counters["accepted"] += 1
            else:
                self.counters["resent"] += 1
        except StoreUnavailable as err:
            self.counters["not_committed"] += 1
            log.error("%s: %s: not committed, not confirmed: %s", self.name, device.name, err)
            return None
        feed.alive(self.name)
        return item.reply(Command.CONFIRM, datetime.now()).encode()


    def _clock(self, device: str, item: Frame) -> list[tuple[str, str]]:
        """A device whose clock is off by more than ``CLOCK_OFF`` is said so, once an hour:
        its time labels are kept in the events, never used for the readings."""
        sent = item.sent_at
        now = datetime.now()
        off = None if sent is None else abs((now - sent).total_seconds())
        if off is not None and off <= CLOCK_OFF:
            return []
        if time.monotonic() - self.clock_said.get(device, -3600.0) < 3600.0:
            return []
        self.clock_said[device] = time.monotonic()
        said = item.sent.hex() if sent is None else sent.isoformat(sep=" ")
        return [("DEVICE_CLOCK", said)]


class _Datagrams(asyncio.DatagramProtocol):
    """UDP: one frame a datagram, answered to where it came from."""

    def __init__(self, source: Gb26875Source):
        self.source = source
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            item: Frame | FrameError = decode(data)
        except FrameError as err:
            item = err
        task = asyncio.get_running_loop().create_task(self._answer(item, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, item: Frame | FrameError, addr: tuple[str | Any, int]) -> None:
        answer = await self.source.take(item)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)
