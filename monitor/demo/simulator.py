"""A Modbus TCP server that behaves like the demo site's sensors, UPS, fire panel and doors,
and the business system's login page."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from monitor.demo.business import BusinessSystem

# Register map (unit 1), mirrored by site.yaml.
HR_MR_TEMP, HR_MR_HUM, HR_OFFICE_TEMP, HR_OFFICE_HUM = 0, 1, 10, 11
# The UPS speaks the generic-ups profile (drivers/modbus/profiles): input registers.
IR_UPS_IN, IR_UPS_IN_HZ, IR_UPS_OUT, IR_UPS_OUT_HZ, IR_UPS_LOAD = 0, 1, 2, 3, 4
IR_UPS_BATT_V, IR_UPS_CHARGE, IR_UPS_RUNTIME, IR_UPS_TEMP, IR_UPS_STATUS = 5, 6, 7, 9, 20
DI_ZONE_ALARM, DI_ZONE_FAULT = 0, 8   # zones 1..4
DI_DOOR_ENTRANCE, DI_DOOR_MACHINE_ROOM = 20, 21

SCENARIOS = {
    "normal": "一切正常",
    "machine_room_hot": "机房空调故障, 温度持续上升",
    "power_loss": "市电中断, UPS 转电池供电",
    "fire": "机房烟感报警 (2 号防区)",
    "door_forced": "机房门被强行打开且未关闭",
    "humidity_low": "办公区湿度过低",
    "system_outage": "催收业务系统服务器故障, 登录页无法访问",
}


@dataclass
class SiteModel:
    """The physical state of the simulated site; drifts a little every second."""

    scenario: str = "normal"
    mr_temp: float = 22.0
    mr_hum: float = 45.0
    office_temp: float = 24.0
    office_hum: float = 50.0
    ups_charge: float = 100.0
    ups_load: float = 32.0
    zones: list[bool] = field(default_factory=lambda: [False] * 4)

    def step(self, dt: float) -> None:
        s = self.scenario
        target_mr = 36.0 if s == "machine_room_hot" else 22.0
        self.mr_temp += (target_mr - self.mr_temp) * 0.08 * dt + random.gauss(0, 0.05)
        self.mr_hum += (45.0 - self.mr_hum) * 0.05 * dt + random.gauss(0, 0.1)
        self.office_temp += (24.0 - self.office_temp) * 0.05 * dt + random.gauss(0, 0.05)
        target_hum = 22.0 if s == "humidity_low" else 50.0
        self.office_hum += (target_hum - self.office_hum) * 0.1 * dt + random.gauss(0, 0.1)
        if s == "power_loss":
            self.ups_charge = max(0.0, self.ups_charge - 0.8 * dt)
        else:
            self.ups_charge = min(100.0, self.ups_charge + 0.5 * dt)
        self.ups_load = 32.0 + random.gauss(0, 0.5)
        self.zones = [False, s == "fire", False, False]

    def registers(self) -> dict[int, int]:
        """Holding registers: the temperature and humidity sensors."""
        return {HR_MR_TEMP: _i16(self.mr_temp * 10), HR_MR_HUM: _i16(self.mr_hum * 10),
                HR_OFFICE_TEMP: _i16(self.office_temp * 10),
                HR_OFFICE_HUM: _i16(self.office_hum * 10)}

    def ups_registers(self) -> dict[int, int]:
        """Input registers: the UPS, in the generic-ups layout."""
        on_battery = self.scenario == "power_loss"
        runtime = int(self.ups_charge / 100 * 5400)
        status = (0b010 if on_battery else 0) | (0b100 if on_battery and self.ups_charge < 20
                                                 else 0)
        return {
            IR_UPS_IN: 0 if on_battery else _i16((229 + random.gauss(0, 1)) * 10),
            IR_UPS_IN_HZ: 0 if on_battery else 500, IR_UPS_OUT: _i16(2200 + random.gauss(0, 3)),
            IR_UPS_OUT_HZ: 500, IR_UPS_LOAD: int(self.ups_load),
            IR_UPS_BATT_V: _i16(540 - (100 - self.ups_charge) * 0.6),
            IR_UPS_CHARGE: int(self.ups_charge), IR_UPS_RUNTIME: runtime >> 16,
            IR_UPS_RUNTIME + 1: runtime & 0xFFFF, IR_UPS_TEMP: _i16(275 + random.gauss(0, 2)),
            IR_UPS_STATUS: status,
        }

    def inputs(self) -> dict[int, bool]:
        out = {DI_ZONE_ALARM + i: z for i, z in enumerate(self.zones)}
        out.update({DI_ZONE_FAULT + i: False for i in range(4)})
        out[DI_DOOR_ENTRANCE] = False
        out[DI_DOOR_MACHINE_ROOM] = self.scenario == "door_forced"
        return out


def sim_device(bits: int, registers: int, device_id: int = 1) -> SimDevice:
    """A pymodbus SimDevice with separate coil, input, holding and input-register tables."""
    return SimDevice(id=device_id, simdata=(
        [SimData(0, count=bits, values=False, datatype=DataType.BITS)],
        [SimData(0, count=bits, values=False, datatype=DataType.BITS)],
        [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],
        [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)]))


async def serve_sim(port: int, bits: int, registers: int) -> ModbusTcpServer:
    """Start a Modbus TCP server on 127.0.0.1 holding one sim_device."""
    server = ModbusTcpServer(context=[sim_device(bits, registers)], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    return server


def _i16(value: float) -> int:
    return round(value) & 0xFFFF


class Simulator:
    """Serves SiteModel over Modbus TCP on 127.0.0.1."""

    def __init__(self, port: int, scenario: str = "normal"):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.model = SiteModel(scenario=scenario)
        self.port = port
        self.server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.business = BusinessSystem(lambda: self.model.scenario == "system_outage")

    def set_scenario(self, name: str) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        self.model.scenario = name

    async def _push(self) -> None:
        assert self.server is not None
        for addr, value in self.model.registers().items():
            await self.server.async_setValues(1, 3, addr, [value])
        for addr, value in self.model.ups_registers().items():
            await self.server.async_setValues(1, 4, addr, [value])
        for addr, bit in self.model.inputs().items():
            await self.server.async_setValues(1, 2, addr, [bit])

    async def _drift(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.model.step(1.0)
            await self._push()

    async def start(self) -> None:
        await self.business.start()
        self.server = await serve_sim(self.port, bits=64, registers=32)
        self.model.step(0.0)
        await self._push()
        self._task = asyncio.create_task(self._drift(), name="simulator")

    async def stop(self) -> None:
        await self.business.stop()
        if self._task:
            self._task.cancel()
        if self.server is not None:
            await self.server.shutdown()
