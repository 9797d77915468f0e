"""The demo's business system (催收业务系统): a login page on loopback that the host checks
ask. It answers 200 with the page, or 503 while the scenario says the server has failed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

PAGE = "<html><head><meta charset='utf-8'><title>催收业务系统</title></head>" \
       "<body>催收业务系统 登录</body></html>"


class BusinessSystem:
    def __init__(self, failed: Callable[[], bool]):
        self.failed = failed
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                while (await reader.readline()).strip():  # the request line and headers
                    pass
            status, body = ("503 Service Unavailable", "服务器故障") if self.failed() \
                else ("200 OK", PAGE)
            data = body.encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                         f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                         + data)
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
