"""The GB/T 26875.3 listener in a running daemon, with a transmission device played over TCP
and UDP on 127.0.0.1: a zone's fire alarm is stored and confirmed with its serial number
only once committed, sent again it is confirmed again and counted once, a bad frame and an
unknown sender are refused (否认), and a component no point names is shown as an event."""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.gb26875.frame import Command, Frame, Splitter, decode, label_of
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import config
from tests.fixtures import fill
from tests.util import eventually, recorded

FIRE_DATA = bytes.fromhex("0201 0103 00 d9000600 0200 a3c1c7f8a3b1b2e3dfc8b2b8d7dfc0c8" +
                          "00" * 15 + "301213010814")
"""Type 2: system 3's component d9000600 in 火警, "Ａ区１层呷哺走廊" (the published data)."""
ADDRESS = bytes.fromhex("c0a801046d1d")
CENTRE = bytes.fromhex("060504030201")


def frame(serial: int, data: bytes = FIRE_DATA, source: bytes = ADDRESS,
          sent: bytes | None = None) -> bytes:
    """A frame from the transmission device, its time label now unless ``sent``."""
    return Frame(serial, Command.SEND, data, source, CENTRE,
                 sent or label_of(datetime.now())).encode()


def normal(data: bytes) -> bytes:
    """The same component, back to normal (status bit 0 only)."""
    return data[:9] + b"\x01\x00" + data[11:]


def site(tmp_path: Path, port: int, **extra: Any) -> Any:
    panel = {"name": "fire1", "area": "machine_room", "class": "fire_panel", "type": "gb26875",
             "interval": 60, "label": "一号消防主机",
             "connection": {"address": ADDRESS.hex()},
             "points": [{"key": "zone_a1", "system": 3, "component": "000600d9",
                         "label": "A区1层走廊"}, {"key": "panel", "system": 3}]}
    return config(tmp_path, [panel], [{"name": "fire_a1", "point": "fire1.zone_a1",
                                       "kind": "state", "equals": ["alarm"],
                                       "severity": "critical", "message": "A区1层火警"}],
                  **{"listeners": [{"name": "fire_link", "type": "gb26875",
                                    "settings": {"listen": "127.0.0.1", "port": port}}],
                     **extra})


class Transmitter:
    """The building's transmission device, over TCP."""

    def __init__(self, port: int):
        self.port = port
        self.splitter = Splitter()

    async def __aenter__(self) -> Transmitter:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def send(self, data: bytes) -> Frame:
        self.writer.write(data)
        await self.writer.drain()
        while True:
            got = self.splitter.feed(await asyncio.wait_for(self.reader.read(4096), 5))
            if got:
                assert isinstance(got[0], Frame), got
                return got[0]


async def events(daemon: Daemon) -> list[tuple[str, str]]:
    await recorded(daemon)
    return await daemon.store.read(lambda c: c.execute(
        "SELECT kind, detail FROM events WHERE device = 'fire1' ORDER BY seq").fetchall())


async def test_a_zones_fire_alarm_is_stored_alarmed_and_confirmed(
        tmp_path: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port))
    async with Transmitter(port) as device:
        seven = frame(7)
        answer = await device.send(seven)
        assert (answer.command, answer.serial) == (Command.CONFIRM, 7)
        assert (answer.source, answer.destination) == (CENTRE, ADDRESS)
        rows = await daemon.store.read(lambda c: c.execute(     # committed before confirmed
            "SELECT value FROM history WHERE point = 'fire1.zone_a1'").fetchall())
        assert rows == [("alarm",)]
        await eventually(lambda: daemon.alarms.is_active("fire_a1"), 5)
        assert (await device.send(seven)).command == Command.CONFIRM      # lost reply: again
        assert [k for k, _ in await events(daemon)] == ["COMPONENT"]      # counted once
        detail = (await events(daemon))[0][1]
        assert detail == "A区1层走廊: 系统 3 部件 000600d9 (Ａ区１层呷哺走廊): 火警"
        assert (await device.send(frame(8, normal(FIRE_DATA)))).serial == 8
        await eventually(lambda: not daemon.alarms.is_active("fire_a1"), 5)
    counts = daemon.sources.counts()["fire_link"]
    assert (counts["accepted"], counts["resent"]) == (2, 1)


async def test_a_bad_frame_and_an_unknown_sender_are_refused(
        tmp_path: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port))
    good = frame(9)
    bad = good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:]
    async with Transmitter(port) as device:
        assert (await device.send(b"noise" + bad)).command == Command.DENY
        stranger = await device.send(frame(10, source=bytes(6)))
        assert (stranger.command, stranger.serial) == (Command.DENY, 10)
        assert (await device.send(good)).command == Command.CONFIRM      # still served
    counts = daemon.sources.counts()["fire_link"]
    assert counts["bad_frames"] == 1 and counts["unknown_source"] == 1
    assert counts["skipped_bytes"] >= 5


async def test_udp_and_a_component_no_point_names(tmp_path: Path,
                                                  daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port))
    other = FIRE_DATA[:5] + bytes.fromhex("01020304") + FIRE_DATA[9:]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(frame(11, other), ("127.0.0.1", port))
        answer = decode(await asyncio.to_thread(udp.recv, 2048))
    assert (answer.command, answer.serial) == (Command.CONFIRM, 11)
    assert await events(daemon) == [
        ("COMPONENT", "系统 3 部件 04030201 (Ａ区１层呷哺走廊) [未配置]: 火警")]
    assert not daemon.alarms.is_active("fire_a1")


@pytest.mark.parametrize("cut", [10, 30, 60])
async def test_a_frame_cut_anywhere_is_whole_once_the_rest_comes(
        tmp_path: Path, daemon_factory: Any, cut: int) -> None:
    port = peers.free_port()
    await daemon_factory(site(tmp_path, port))
    whole = frame(12)
    async with Transmitter(port) as device:
        device.writer.write(whole[:cut])
        await device.writer.drain()
        await asyncio.sleep(0.1)                          # the rest comes a little later
        assert (await device.send(whole[cut:])).serial == 12


async def test_on_a_full_disk_nothing_is_confirmed_and_the_resend_is_taken_once(
        disk: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(disk, port, data_dir=str(disk / "data")))
    filler = fill(disk)
    thirteen = frame(13)
    async with Transmitter(port) as device:
        with pytest.raises(TimeoutError):              # not committed: no 确认, it resends
            await asyncio.wait_for(device.send(thirteen), 1.5)
    filler.unlink()
    await eventually(lambda: not daemon.alarms.is_active("store:write_failed"), 15)
    async with Transmitter(port) as device:
        assert (await device.send(thirteen)).command == Command.CONFIRM
    assert [k for k, _ in await events(daemon)] == ["COMPONENT"]


async def test_a_silent_connection_is_closed(tmp_path: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port, listeners=[{
        "name": "fire_link", "type": "gb26875",
        "settings": {"listen": "127.0.0.1", "port": port, "idle": 0.3}}]))
    async with Transmitter(port) as device:
        device.writer.write(b"@@\x01")                  # a slow sender that never finishes
        await device.writer.drain()
        assert await asyncio.wait_for(device.reader.read(100), 5) == b""   # closed on it
    assert daemon.sources.counts()["fire_link"].get("accepted", 0) == 0


async def test_a_thousand_connections_at_once_are_each_confirmed(
        tmp_path: Path, daemon_factory: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4000:
        pytest.skip(f"needs 4000 open files, the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4000), hard))
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port))

    async def one(serial: int) -> tuple[int, int]:
        async with Transmitter(port) as device:
            answer = await device.send(frame(serial, normal(FIRE_DATA)))
            return answer.command, answer.serial
    answers = await asyncio.gather(*(one(n) for n in range(1000)))
    assert answers == [(Command.CONFIRM, n) for n in range(1000)]
    assert daemon.sources.counts()["fire_link"]["accepted"] == 1000


async def test_a_device_clock_years_off_is_said_once_and_not_trusted(
        tmp_path: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port))
    old = bytes.fromhex("180d11160a14")                   # 2020-10-22 17:13:24
    async with Transmitter(port) as device:
        await device.send(frame(20, sent=old))
        await device.send(frame(21, normal(FIRE_DATA), sent=old))
    kinds = [k for k, _ in await events(daemon)]
    assert kinds.count("DEVICE_CLOCK") == 1
    assert ("DEVICE_CLOCK", "2020-10-22 17:13:24") in await events(daemon)
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT MIN(ts) FROM history WHERE point = 'fire1.zone_a1'").fetchone())
    assert rows[0] > time.time() - 60                      # stored at its arrival


async def test_an_unknown_type_and_a_length_past_the_frame(tmp_path: Path,
                                                           daemon_factory: Any) -> None:
    port = peers.free_port()
    daemon: Daemon = await daemon_factory(site(tmp_path, port, listeners=[{
        "name": "fire_link", "type": "gb26875",
        "settings": {"listen": "127.0.0.1", "port": port, "quiet": 0.3}}]))
    async with Transmitter(port) as device:
        answer = await device.send(frame(30, bytes.fromhex("8001aabbcc")))   # a vendor's type
        assert answer.command == Command.CONFIRM                              # taken, and kept
        long = bytearray(frame(31))
        long[24:26] = (900).to_bytes(2, "little")            # says 900 bytes, sends 74
        device.writer.write(bytes(long))
        assert (await device.send(frame(32))).serial == 32   # given up once quiet: served
    assert ("UNKNOWN_DATA", "类型 128: 8001aabbcc") in await events(daemon)


def test_a_component_address_yaml_reads_as_a_number_is_refused(tmp_path: Path) -> None:
    from monitor.config import ConfigError, load_config_text
    from tests.conftest import site_yaml

    text = site_yaml(tmp_path, [{
        "name": "fire1", "area": "machine_room", "class": "fire_panel", "type": "gb26875",
        "connection": {"address": ADDRESS.hex()},
        "points": [{"key": "z", "system": 3, "component": 24584}]}],   # YAML's 00060010
        listeners=[{"name": "l", "type": "gb26875", "settings": {"port": 18026}}])
    with pytest.raises(ConfigError, match="8 hex digits in quotes"):
        load_config_text(text, "site.yaml")
