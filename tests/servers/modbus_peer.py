"""pymodbus SimDevice server whose values follow a JSON state file (tests rewrite it).

usage: python -m tests.servers.modbus_peer PORT STATE_JSON
State: {"hr": {"ADDR": value}, "ir": {...}, "di": {...}, "co": {...}}; applied within 0.1 s.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

from pymodbus.server import ModbusTcpServer

from monitor.demo.simulator import sim_device

TABLES = (("co", 1), ("di", 2), ("hr", 3), ("ir", 4))


async def follow(srv: ModbusTcpServer, path: str) -> None:
    last = None
    while True:
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != last:
                state = json.loads(await asyncio.to_thread(Path(path).read_text))
                last = mtime
                for key, fc in TABLES:
                    for addr, value in state.get(key, {}).items():
                        await srv.async_setValues(1, fc, int(addr), [value])
        except (OSError, ValueError):
            pass
        await asyncio.sleep(0.05)


async def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    srv = ModbusTcpServer(context=[sim_device(bits=256, registers=1024)],
                          address=("127.0.0.1", port))
    task = asyncio.create_task(follow(srv, path))
    await srv.serve_forever()
    task.cancel()


asyncio.run(main())
