"""TCP servers on 127.0.0.1 that misbehave the way broken field devices do."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and reads, never answers."""
    while await reader.read(1024):
        pass


async def _close_mid_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers the first 5 bytes of a valid-looking reply, then closes."""
    req = await reader.read(260)
    if len(req) >= 7:
        writer.write(req[:4] + struct.pack(">H", 200)[:1])
        await writer.drain()
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request with bytes that are not Modbus."""
    while await reader.read(260):
        writer.write(b"\xde\xad\xbe\xef HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()


async def _registers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     delay: float = 0.0, missing: int = 0) -> None:
    """Answers register reads (every register holds 7), ``delay`` s late and ``missing``
    registers short."""
    while True:
        head = await reader.read(12)
        if len(head) < 12:
            return
        tid, _, _, uid, fc, _, count = struct.unpack(">HHHBBHH", head)
        await asyncio.sleep(delay)
        n = max(count - missing, 0)
        body = struct.pack(">BBB", uid, fc, 2 * n) + struct.pack(f">{n}H", *[7] * n)
        writer.write(struct.pack(">HHH", tid, 0, len(body)) + body)
        await writer.drain()


async def _slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers register reads correctly, but 1.5 s late."""
    await _registers(reader, writer, delay=1.5)


async def _short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers register reads with one register fewer than asked for."""
    await _registers(reader, writer, missing=1)


BEHAVIOURS: dict[str, Handler] = {"short": _short, "hang": _hang, "garbage": _garbage,
                                  "close_mid_reply": _close_mid_reply, "slow": _slow}


async def start(behaviour: str) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(BEHAVIOURS[behaviour], "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
