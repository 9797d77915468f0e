"""A local SMTP server (aiosmtpd) that keeps what it receives, for e-mail notifications."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests import peers


class SmtpReceiver:
    def __init__(self) -> None:
        self.port = peers.free_port()
        self.messages: list[EmailMessage] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content,  # type: ignore[arg-type]
                                                policy=policy.default))
        return "250 OK"

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def url(self, to: str) -> str:
        """The apprise URL that sends plain SMTP here."""
        return (f"mailto://127.0.0.1:{self.port}?from=vigil@example.com&to={to}"
                f"&mode=insecure")

    def text(self, n: int) -> str:
        """Subject and body of message ``n``."""
        msg = self.messages[n]
        body = msg.get_body(preferencelist=("plain", "html"))
        return f"{msg['subject']}\n{body.get_content() if body else ''}"
