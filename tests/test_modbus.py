"""The Modbus driver against real servers: values, batching, and devices that misbehave."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from drivers.base import CommError, PollResult, ProtocolError
from drivers.modbus import ModbusDriver
from drivers.modbus.decode import DecodeError, decode_block
from drivers.modbus.plan import plan_blocks
from drivers.modbus.spec import ModbusConnection, ModbusPoint
from monitor.config import ConfigError
from monitor.core.model import Quality
from monitor.demo.simulator import serve_sim, sim_device
from tests import peers
from tests.conftest import config, modbus_device
from tests.servers import misbehaving


def point(key: str, table: str, address: int, **kw: Any) -> ModbusPoint:
    return ModbusPoint(key=key, table=table, address=address, **kw)  # type: ignore[arg-type]


# -- planning and decoding (pure logic) -------------------------------------------------------
def test_contiguous_points_share_one_request_within_limits() -> None:
    conn = ModbusConnection(host="h", max_gap=2)
    pts = [point(f"r{a}", "holding", a) for a in (0, 1, 2, 5, 6, 20)]
    pts += [point("f", "holding", 7, data_type="float32")]
    pts += [point(f"b{a}", "discrete_input", a) for a in range(0, 3000, 500)]
    blocks = plan_blocks(pts, conn)
    regs = [(b.address, b.count) for b in blocks if b.table == "holding"]
    assert regs == [(0, 9), (20, 1)]  # 0-2, 5-6 and the float at 7-8 share one read
    bits = [(b.address, b.count) for b in blocks if b.table == "discrete_input"]
    assert bits == [(0, 1), (500, 1), (1000, 1), (1500, 1), (2000, 1), (2500, 1)]


def test_blocks_never_exceed_protocol_limits() -> None:
    conn = ModbusConnection(host="h", max_gap=120)
    pts = [point(f"r{a}", "input", a, data_type="float64") for a in range(0, 1000, 4)]
    pts += [point(f"c{a}", "coil", a) for a in range(0, 5000)]
    blocks = plan_blocks(pts, conn)
    assert all(b.count <= 125 for b in blocks if not b.table.is_bits)
    assert all(b.count <= 2000 for b in blocks if b.table.is_bits)
    assert sum(len(b.slots) for b in blocks) == len(pts)
    assert len([b for b in blocks if b.table == "input"]) == math.ceil(1000 / 124)
    assert len([b for b in blocks if b.table == "coil"]) == 3


@pytest.mark.parametrize(("data_type", "byte_order", "word_order", "value"), [
    ("int16", "big", "big", -1234), ("uint16", "little", "big", 51234),
    ("int32", "big", "little", -123456789), ("uint32", "little", "little", 4_000_000_000),
    ("int64", "big", "big", -(2**40) - 7), ("uint64", "big", "little", 2**63 + 5),
    ("float32", "big", "big", 21.5), ("float32", "little", "little", -0.25),
    ("float64", "big", "little", 1234.5678),
])
def test_every_type_and_order_decodes(data_type: str, byte_order: str, word_order: str,
                                      value: float) -> None:
    codes = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
             "uint64": "Q", "float32": "f", "float64": "d"}
    raw = struct.pack(">" + codes[data_type], value)
    words = list(struct.unpack(f">{len(raw) // 2}H", raw))
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    p = point("v", "holding", 10, data_type=data_type, byte_order=byte_order,
              word_order=word_order)
    [block] = plan_blocks([p], ModbusConnection(host="h"))
    got = decode_block(block, words)["v"]
    assert got == pytest.approx(value) if "float" in data_type else got == value


def test_scale_offset_and_bits() -> None:
    pts = [point("t", "holding", 0, data_type="int16", scale=0.1, offset=-40),
           point("ob", "holding", 1, bit=1), point("ol", "holding", 1, bit=0)]
    [block] = plan_blocks(pts, ModbusConnection(host="h"))
    out = decode_block(block, [652, 0b10])
    assert out["t"] == pytest.approx(25.2)
    assert out["ob"] is True and out["ol"] is False


def test_nan_and_short_replies_are_errors_not_zero() -> None:
    nan_words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    pts = [point("f", "holding", 0, data_type="float32"), point("g", "holding", 2)]
    [block] = plan_blocks(pts, ModbusConnection(host="h"))
    out = decode_block(block, nan_words)
    assert isinstance(out["f"], DecodeError) and isinstance(out["g"], DecodeError)


# -- against real servers -----------------------------------------------------------------------
@pytest.fixture
async def sim_server() -> AsyncIterator[tuple[ModbusTcpServer, int]]:
    """A pymodbus server on a free port; registers 0..99 and bits 0..63 exist, others do not."""
    port = peers.free_port()
    server = await serve_sim(port, bits=64, registers=100)
    yield server, port
    await server.shutdown()


def driver_for(tmp_path: Path, port: int, points: list[dict[str, Any]],
               **kw: Any) -> ModbusDriver:
    cfg = config(tmp_path, [modbus_device("dev", port, points, **kw)])
    return ModbusDriver(cfg.devices[0])


async def poll_once(tmp_path: Path, port: int, points: list[dict[str, Any]]) -> PollResult:
    drv = driver_for(tmp_path, port, points)
    try:
        return await drv.poll()
    finally:
        await drv.close()


async def test_reads_values_from_pymodbus_server(tmp_path: Path, sim_server: Any) -> None:
    server, port = sim_server
    hi, lo = struct.unpack(">HH", struct.pack(">f", 23.75))
    await server.async_setValues(1, 3, 0, [215, hi, lo])
    await server.async_setValues(1, 4, 5, [65535])
    await server.async_setValues(1, 2, 3, [True])
    await server.async_setValues(1, 1, 4, [True])
    result = await poll_once(tmp_path, port, [
        {"key": "temperature", "table": "holding", "address": 0, "data_type": "int16",
         "scale": 0.1},
        {"key": "f", "table": "holding", "address": 1, "data_type": "float32"},
        {"key": "neg", "table": "input", "address": 5, "data_type": "int16"},
        {"key": "smoke", "table": "discrete_input", "address": 3},
        {"key": "relay", "table": "coil", "address": 4},
        {"key": "relay2", "table": "coil", "address": 5}])
    values = {r.point: r.value for r in result.readings}
    assert values == {"dev.temperature": pytest.approx(21.5), "dev.f": 23.75, "dev.neg": -1,
                      "dev.smoke": True, "dev.relay": True, "dev.relay2": False}
    assert all(r.quality is Quality.GOOD for r in result.readings)
    assert result.problems == []


async def test_exception_response_gives_invalid_readings(tmp_path: Path, sim_server: Any) -> None:
    _, port = sim_server
    result = await poll_once(tmp_path, port, [
        {"key": "ok", "table": "holding", "address": 0},
        {"key": "missing", "table": "holding", "address": 500},
        {"key": "missing2", "table": "holding", "address": 501}])
    by_point = {r.point: r for r in result.readings}
    assert by_point["dev.ok"].quality is Quality.GOOD
    assert by_point["dev.missing"].quality is Quality.INVALID
    assert by_point["dev.missing"].value is None
    assert by_point["dev.missing2"].quality is Quality.INVALID
    assert result.problems == ["holding 500+2: exception 2 (illegal data address)"]


async def test_reads_from_libmodbus_server(tmp_path: Path, peer_dir: Path) -> None:
    port = peers.free_port()
    peer = peers.libmodbus_server(peer_dir, port).start()
    try:
        result = await poll_once(tmp_path, port, [
            {"key": "r7", "table": "holding", "address": 7},
            {"key": "f", "table": "holding", "address": 200, "data_type": "float32"},
            {"key": "in3", "table": "input", "address": 3},
            {"key": "c1", "table": "coil", "address": 1},
            {"key": "d3", "table": "discrete_input", "address": 3},
            {"key": "d4", "table": "discrete_input", "address": 4}])
    finally:
        peer.stop()
    assert {r.point: r.value for r in result.readings} == {
        "dev.r7": 7, "dev.f": 21.5, "dev.in3": 1003, "dev.c1": True, "dev.d3": True,
        "dev.d4": False}


async def test_refused_connection_is_a_comm_error(tmp_path: Path) -> None:
    drv = driver_for(tmp_path, peers.free_port(), [{"key": "x", "table": "holding",
                                                    "address": 0}])
    with pytest.raises(CommError, match="cannot connect"):
        await drv.poll()
    await drv.close()


@pytest.mark.parametrize(("behaviour", "error", "text"), [
    ("close_mid_reply", CommError, "closed the connection mid-reply"),
    ("hang", CommError, "did not answer"),
    ("garbage", ProtocolError, "garbled reply from 127.0.0.1:{port}: 33 bytes that are no "
                               "Modbus frame, starting de ad be ef 20 48 54 54"),
])
async def test_broken_replies_are_told_apart(tmp_path: Path, behaviour: str,
                                             error: type[Exception], text: str) -> None:
    server, port = await misbehaving.start(behaviour)
    drv = driver_for(tmp_path, port, [{"key": "x", "table": "holding", "address": 0}],
                     timeout=0.3, interval=1)
    try:
        with pytest.raises(error) as info:
            await asyncio.wait_for(drv.poll(), drv.poll_timeout())
        assert text.format(port=port) in str(info.value)
    finally:
        await drv.close()
        server.close()


async def test_short_reply_makes_the_whole_block_invalid(tmp_path: Path) -> None:
    server, port = await misbehaving.start("short")
    try:
        result = await poll_once(tmp_path, port, [
            {"key": "a", "table": "holding", "address": 0},
            {"key": "b", "table": "holding", "address": 1}])
    finally:
        server.close()
    assert [(r.point, r.value, r.quality) for r in result.readings] == [
        ("dev.a", None, Quality.INVALID), ("dev.b", None, Quality.INVALID)]
    assert result.problems == ["holding 0+2: short reply (1 values)"]


async def test_rtu_devices_share_one_serial_line(tmp_path: Path) -> None:
    """Two units on one RS-485 line (a socat pty pair), read by RTU over one shared port."""
    peer, server_tty, client_tty = peers.serial_pair(tmp_path)
    conn = {"transport": "rtu", "serial_port": str(client_tty), "baudrate": 19200}
    cfg = config(tmp_path, [
        modbus_device(f"unit{uid}", None, [{"key": "t", "table": "holding", "address": 0,
                                             "data_type": "int16", "scale": 0.1}],
                      timeout=0.5, interval=2, connection={**conn, "device_id": uid})
        for uid in (1, 2)])
    peer.start()
    server = ModbusSerialServer(context=[sim_device(8, 16, device_id=1),
                                         sim_device(8, 16, device_id=2)],
                                framer=FramerType.RTU, port=str(server_tty), baudrate=19200)
    drivers = [ModbusDriver(d) for d in cfg.devices]
    try:
        await server.serve_forever(background=True)
        await server.async_setValues(1, 3, 0, [215])
        await server.async_setValues(2, 3, 0, [198])
        results = await asyncio.gather(*(d.poll() for d in drivers))
        assert drivers[0]._link is drivers[1]._link    # one port, one lock, polled in turn
    finally:
        for d in drivers:
            await d.close()
        await server.shutdown()
        peer.stop()
    assert [r.readings[0].value for r in results] == [pytest.approx(21.5), pytest.approx(19.8)]


async def test_ups_profile_maps_registers_and_status_bits(tmp_path: Path, sim_server: Any) -> None:
    server, port = sim_server
    await server.async_setValues(1, 4, 0, [2301, 500, 2200, 500, 37, 545, 81, 0, 2700, 253])
    cfg = config(tmp_path, [modbus_device("ups1", port, [
        {"key": "ups.load", "table": "input", "address": 4, "label": "own label"}],
        cls="ups", profile="generic-ups")])
    drv = ModbusDriver(cfg.devices[0])
    try:
        await server.async_setValues(1, 4, 20, [0b0000_0000_0000_0000])
        on_line = {r.point: r.value for r in (await drv.poll()).readings}
        await server.async_setValues(1, 4, 20, [0b0000_0000_0000_0110])  # utility fail, low
        on_battery = {r.point: r.value for r in (await drv.poll()).readings}
    finally:
        await drv.close()
    assert on_line["ups1.ups.status"] == "OL"
    assert on_battery["ups1.ups.status"] == "OB LB"
    assert on_line["ups1.input.voltage"] == pytest.approx(230.1)
    assert on_line["ups1.battery.runtime"] == 2700
    assert on_line["ups1.ups.load"] == 37
    assert drv.spec.points[-1].label == "own label"   # the device's own point wins


def test_profile_errors_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad-ups.yaml"
    bad.write_text("name: bad\nstatus: {table: input, address: 3, set: {1: ONBAT}}\n")
    for profile, text in ((str(bad), "'ONBAT' is not a NUT status flag"),
                          ("no-such-ups", "no Modbus profile 'no-such-ups' (built in: "
                                          "generic-ups")):
        with pytest.raises(ConfigError) as info:
            config(tmp_path, [modbus_device("ups1", 15020, [], cls="ups", profile=profile)])
        assert "devices[0]" in str(info.value) and text in str(info.value)
