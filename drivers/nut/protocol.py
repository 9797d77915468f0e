"""upsd's network protocol (NUT): commands, quoted values, ERR codes, STARTTLS."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

MAX_LINE = 8192
MAX_VARS = 5000


class NutError(Exception):
    """upsd answered ``ERR CODE``."""

    def __init__(self, code: str, command: str):
        super().__init__(f"upsd refused {command.split()[0]}: ERR {code}")
        self.code = code


class NutGarbage(Exception):
    """upsd's answer does not follow the protocol."""


def unquote(text: str) -> str:
    """``"a \\"b\\""`` -> ``a "b"`` (NUT escapes backslash and double quote)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise NutGarbage(f"expected a quoted value, got {text[:60]!r}")
    out, escaped = [], False
    for ch in text[1:-1]:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class Credentials:
    username: str
    password: str


class NutClient:
    """One connection to upsd; requests are sent one at a time."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.encrypted = False

    @property
    def connected(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    async def open(self, tls: str, ca_file: str | None, creds: Credentials | None,
                   login_ups: str | None) -> None:
        """Connect; STARTTLS when ``tls`` is try or require; USERNAME/PASSWORD; LOGIN."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port,
                                                                 limit=MAX_LINE)
        if tls != "off":
            try:
                await self.command("STARTTLS")
            except NutError as err:
                if tls == "require" or err.code != "FEATURE-NOT-CONFIGURED":
                    raise
            else:
                await self._upgrade(ca_file)
        if creds is not None:
            await self.command(f"USERNAME {creds.username}")
            await self.command(f"PASSWORD {creds.password}", shown="PASSWORD")
        if login_ups is not None:
            await self.command(f"LOGIN {login_ups}")

    async def _upgrade(self, ca_file: str | None) -> None:
        ctx = ssl.create_default_context(cafile=ca_file)
        if ca_file is None:  # encrypted but unverified, as upsmon with CERTVERIFY 0
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        assert self.writer is not None
        await self.writer.start_tls(ctx, server_hostname=self.host)
        self.encrypted = True

    async def _line(self) -> str:
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as err:
            raise NutGarbage("a line longer than 8 KiB") from err
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise NutGarbage("a line that is not text") from err

    async def _send(self, line: str) -> None:
        assert self.writer is not None
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def command(self, line: str, shown: str | None = None) -> str:
        """Send one command; return its one-line answer; raise NutError on ``ERR``."""
        await self._send(line)
        answer = await self._line()
        if answer.startswith("ERR "):
            raise NutError(answer[4:].split()[0] if answer[4:].strip() else "?", shown or line)
        return answer

    async def _list(self, what: str, prefix: str) -> dict[str, str]:
        """``LIST what``: ``{name: quoted value}`` of the lines that start with ``prefix``."""
        await self._send(f"LIST {what}")
        first = await self._line()
        if first.startswith("ERR "):
            raise NutError(first[4:].strip() or "?", f"LIST {what}")
        if first != f"BEGIN LIST {what}":
            raise NutGarbage(f"expected BEGIN LIST {what}, got {first[:60]!r}")
        out: dict[str, str] = {}
        while True:
            line = await self._line()
            if line == f"END LIST {what}":
                return out
            if not line.startswith(prefix) or len(out) >= MAX_VARS:
                raise NutGarbage(f"unexpected line in LIST {what}: {line[:60]!r}")
            name, _, value = line[len(prefix):].partition(" ")
            out[name] = unquote(value)

    async def list_var(self, ups: str) -> dict[str, str]:
        """Every variable of ``ups`` (LIST VAR)."""
        return await self._list(f"VAR {ups}", f"VAR {ups} ")

    async def list_ups(self) -> dict[str, str]:
        """The UPSes upsd serves, with their descriptions (LIST UPS)."""
        return await self._list("UPS", "UPS ")

    async def get_var(self, ups: str, name: str) -> str:
        """One variable (GET VAR)."""
        answer = await self.command(f"GET VAR {ups} {name}")
        prefix = f"VAR {ups} {name} "
        if not answer.startswith(prefix):
            raise NutGarbage(f"unexpected answer to GET VAR: {answer[:60]!r}")
        return unquote(answer[len(prefix):])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
        self.reader = self.writer = None
