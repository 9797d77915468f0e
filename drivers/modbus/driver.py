"""Poll one Modbus device: batched reads, decoded values, errors translated at the boundary."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.base import CommError, Driver, Issue, PollResult, ProtocolError, register
from drivers.modbus.decode import DecodeError, decode_block
from drivers.modbus.device import ModbusSpec
from drivers.modbus.plan import Block, plan_blocks
from drivers.modbus.profile import STATUS_KEY, WORD_KEY
from drivers.modbus.spec import ModbusConnection, Table
from monitor.core.model import Quality, Reading

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # we log availability ourselves

EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "device failure", 5: "acknowledge", 6: "device busy",
                   10: "gateway path unavailable", 11: "gateway target failed to respond"}


class _Link:
    """A connection: shared by every device on one serial bus; one per device over TCP, so a
    hung unit behind a gateway delays no device with a connection of its own."""

    def __init__(self, conn: ModbusConnection, timeout: float):
        common: dict[str, Any] = {"timeout": timeout, "retries": 0, "reconnect_delay": 0,
                                  "trace_packet": self._trace}
        if conn.transport == "tcp":
            assert conn.host is not None
            self.client: Any = AsyncModbusTcpClient(conn.host, port=conn.port, **common)
        else:
            self.client = AsyncModbusSerialClient(
                str(conn.serial_port), baudrate=conn.baudrate, parity=conn.parity,
                bytesize=conn.bytesize, stopbits=conn.stopbits, **common)
        self.lock = asyncio.Lock()
        self.users = 0
        self.received = bytearray()

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """Keep what arrived since the last request, to tell garbage from silence."""
        if sending:
            self.received.clear()
        elif len(self.received) < 64:
            self.received += data[:64]
        return data


_LINKS: dict[str, _Link] = {}


@register
class ModbusDriver(Driver):
    type_name = "modbus"
    spec_model = ModbusSpec

    def __init__(self, device: DeviceConfig):
        super().__init__(device)
        spec: ModbusSpec = self.spec
        self.conn = spec.connection
        self.blocks: list[Block] = plan_blocks(spec.points, self.conn)
        self._link: _Link | None = None

    @classmethod
    def check_site(cls, devices: Sequence[DeviceConfig]) -> list[tuple[int, Issue]]:
        """No two points may read the same address of the same unit behind one endpoint."""
        issues: list[tuple[int, Issue]] = []
        seen: dict[tuple[str, int, Table, int], list[tuple[str, int | None]]] = {}
        for index, dev in enumerate(devices):
            spec: ModbusSpec = dev.spec
            conn = spec.connection
            for p_index, p in enumerate(spec.points):
                here = f"{dev.name}.{p.key}"
                for addr in range(p.address, p.address + p.registers):
                    users = seen.setdefault((conn.endpoint, conn.device_id, p.table, addr), [])
                    clash = next((who for who, bit in users
                                  if bit is None or p.bit is None or bit == p.bit), None)
                    users.append((here, p.bit))
                    if clash is not None:
                        what = f"bit {p.bit} of " if p.bit is not None else ""
                        issues.append((index, (("points", p_index, "address"),
                                               f"{what}{p.table} register {addr} of unit "
                                               f"{conn.device_id} at {conn.endpoint} is already "
                                               f"read by {clash}")))
                        break
        return issues

    def point_keys(self) -> list[str]:
        keys = [p.key for p in self.spec.points]
        return [*keys, STATUS_KEY] if self.spec.status is not None else keys

    @property
    def _link_key(self) -> str:
        if self.conn.transport == "rtu":
            return f"rtu:{self.conn.endpoint}"
        return f"tcp:{self.conn.endpoint}:{self.device.name}"

    def poll_timeout(self) -> float:
        """Each request has the device's timeout (pymodbus enforces it); on a shared bus,
        others may go first; one timeout more lets pymodbus report before the runtime."""
        users = self._link.users if self._link else 1
        return self.device.timeout * (len(self.blocks) * max(1, users) + 1)

    def _acquire_link(self) -> _Link:
        if self._link is None:
            key = self._link_key
            link = _LINKS.get(key)
            if link is None:
                link = _LINKS[key] = _Link(self.conn, self.device.timeout)
            link.users += 1
            self._link = link
        return self._link

    async def _read(self, client: Any, block: Block) -> Any:
        uid = self.conn.device_id
        if block.table is Table.HOLDING:
            return await client.read_holding_registers(block.address, count=block.count,
                                                       device_id=uid)
        if block.table is Table.INPUT:
            return await client.read_input_registers(block.address, count=block.count,
                                                     device_id=uid)
        if block.table is Table.COIL:
            return await client.read_coils(block.address, count=block.count, device_id=uid)
        return await client.read_discrete_inputs(block.address, count=block.count, device_id=uid)

    async def poll(self) -> PollResult:
        link = self._acquire_link()
        async with link.lock:
            client = link.client
            if not client.connected:
                try:
                    ok = await client.connect()
                except (OSError, ModbusException) as err:
                    raise CommError(f"cannot connect to {self.conn.endpoint}: {err}") from err
                if not ok:
                    raise CommError(f"cannot connect to {self.conn.endpoint}")
            result = PollResult(readings=[])
            for block in self.blocks:
                try:
                    reply = await self._read(client, block)
                except ConnectionException as err:
                    client.close()
                    raise CommError(f"connection to {self.conn.endpoint} lost: {err}") from err
                except ModbusIOException as err:
                    garbage, closed = bytes(link.received), not client.connected
                    client.close()
                    if garbage and not closed:
                        raise ProtocolError(f"garbled reply from {self.conn.endpoint}: "
                                            f"{len(garbage)} bytes that are no Modbus frame, "
                                            f"starting {garbage[:16].hex(' ')}") from err
                    what = "closed the connection mid-reply" if closed else "did not answer"
                    raise CommError(f"{self.conn.endpoint} {what}") from err
                except ModbusException as err:
                    client.close()
                    raise ProtocolError(f"{self.conn.endpoint}: {err}") from err
                self._collect(block, reply, result)
            if self.spec.status is not None:
                result.readings.append(self._status(result.readings))
            return result

    def _status(self, readings: list[Reading]) -> Reading:
        """``ups.status`` from the profile's status word (invalid when the word is)."""
        word = next(r for r in readings if r.point.endswith("." + WORD_KEY))
        if word.quality is not Quality.GOOD or not isinstance(word.value, int):
            return Reading(f"{self.device.name}.{STATUS_KEY}", None, word.ts, Quality.INVALID)
        return Reading(f"{self.device.name}.{STATUS_KEY}", self.spec.status.flags(word.value),
                       word.ts)

    def _collect(self, block: Block, reply: Any, result: PollResult) -> None:
        now = time.time()
        device = self.device.name
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            reason = f"exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})"
            result.problems.append(f"{block.table} {block.address}+{block.count}: {reason}")
            result.readings.extend(Reading(f"{device}.{s.key}", None, now, Quality.INVALID)
                                   for s in block.slots)
            return
        data = reply.bits if block.table.is_bits else reply.registers
        if len(data) < block.count:  # a device that answers less than asked is not trusted
            result.problems.append(f"{block.table} {block.address}+{block.count}: "
                                   f"short reply ({len(data)} values)")
            result.readings.extend(Reading(f"{device}.{s.key}", None, now, Quality.INVALID)
                                   for s in block.slots)
            return
        for key, value in decode_block(block, data).items():
            if isinstance(value, DecodeError):
                result.readings.append(Reading(f"{device}.{key}", None, now, Quality.INVALID))
                result.problems.append(f"{key}: {value}")
            else:
                result.readings.append(Reading(f"{device}.{key}", value, now))  # type: ignore[arg-type]

    async def close(self) -> None:
        if self._link is None:
            return
        self._link.users -= 1
        if self._link.users <= 0:
            self._link.client.close()
            _LINKS.pop(self._link_key, None)
        self._link = None
