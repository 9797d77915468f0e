"""A local HTTP receiver that plays a time-series server in good and bad moods."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of messages to many people at once is not refused


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``mode``: ok (204), 500, 401, 400, slow (answers 204 after ``delay`` seconds), json
    (200 with ``reply`` as the body, as chat robots answer, errors included)."""

    port: int = 0
    mode: str = "ok"
    delay: float = 1.0
    reply: bytes = b'{"errcode":0,"errmsg":"ok"}'
    fail_first: int = 0
    """The first N requests get a 500 whatever the mode (a passing outage)."""
    requests: list[Received] = field(default_factory=list)
    accepted: list[bytes] = field(default_factory=list)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                mode = receiver.mode if len(receiver.requests) > receiver.fail_first else "500"
                if mode == "slow":
                    time.sleep(receiver.delay)
                if mode == "json":
                    receiver.accepted.append(body)
                    self._answer(200, receiver.reply)
                elif mode in ("ok", "slow"):
                    receiver.accepted.append(body)
                    self._answer(204, b"")
                elif mode == "401":
                    self._answer(401, b'{"code":"unauthorized","message":"unauthorized access"}')
                elif mode == "400":
                    self._answer(400, b'{"error":"unable to parse points"}')
                else:
                    self._answer(500, b'{"error":"internal error"}')

            def do_GET(self) -> None:
                """A health page: ``reply`` with 200 (500 in mode 500), late in mode slow."""
                receiver.requests.append(Received(self.path, dict(self.headers), b""))
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                self._answer(500 if receiver.mode == "500" else 200, receiver.reply)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[bytes]:
        return [ln for body in self.accepted for ln in body.split(b"\n") if ln]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
