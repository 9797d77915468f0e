"""Poll a UPS through upsd: LIST VAR, values as NUT names them, ERR codes sorted."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from typing import TYPE_CHECKING

from drivers.base import (
    AuthError,
    CommError,
    ConfigurationError,
    Driver,
    PollResult,
    ProtocolError,
    register,
)
from drivers.nut.protocol import Credentials, NutClient, NutError, NutGarbage
from drivers.nut.spec import NutSpec
from monitor.core.model import Reading, Value

if TYPE_CHECKING:
    from monitor.config.model import DeviceConfig

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_AUTH = {"ACCESS-DENIED", "PASSWORD-REQUIRED", "USERNAME-REQUIRED", "INVALID-PASSWORD",
         "INVALID-USERNAME", "FEATURE-NOT-CONFIGURED", "FEATURE-NOT-SUPPORTED"}
_STALE = {"DATA-STALE", "DRIVER-NOT-CONNECTED"}
_HIDDEN = ("driver.", "server.")


def nut_value(text: str) -> Value:
    """NUT sends every value as text: numbers become floats, the rest stays text."""
    return float(text) if _NUMBER.match(text) else text


@register
class NutDriver(Driver):
    type_name = "nut"
    spec_model = NutSpec
    discovers = True
    default_interval = 0.5   # LIST VAR is cheap: see a power loss within half a second
    default_timeout = 0.4

    def __init__(self, device: DeviceConfig):
        super().__init__(device)
        spec: NutSpec = self.spec
        self.conn = spec.connection
        self.vars = {p.key: p.var or p.key for p in spec.points}
        self.seen: list[str] = list(self.vars)
        self.client: NutClient | None = None

    def point_keys(self) -> list[str]:
        return self.seen

    async def _connect(self) -> NutClient:
        c = self.conn
        client = NutClient(c.host, c.port)
        creds = None
        if c.username is not None and c.password is not None:
            creds = Credentials(c.username, c.password.resolve().get_secret_value())
        try:
            await client.open(c.tls, c.ca_file, creds, c.ups if c.login else None)
        except BaseException:
            await client.close()
            raise
        return client

    async def poll(self) -> PollResult:
        where = f"upsd {self.conn.host}:{self.conn.port}"
        try:
            if self.client is None or not self.client.connected:
                self.client = await self._connect()
            values = await self.client.list_var(self.conn.ups)
        except NutError as err:
            if err.code == "UNKNOWN-UPS":
                served = await self._served()
                await self.close()
                raise ConfigurationError(f"{where} has no UPS named {self.conn.ups!r} "
                                         f"(ERR UNKNOWN-UPS); it serves: {served}") from err
            await self.close()
            if err.code in _STALE:
                raise CommError(f"{where}: {self.conn.ups}: ERR {err.code}") from err
            if err.code in _AUTH:
                raise AuthError(f"{where}: {err}") from err
            raise ProtocolError(f"{where}: {err}") from err
        except NutGarbage as err:
            await self.close()
            raise ProtocolError(f"{where}: {err}") from err
        except ssl.SSLCertVerificationError as err:
            await self.close()
            raise AuthError(f"{where}: its certificate is not trusted "
                            f"({err.verify_message})") from err
        except (OSError, EOFError, asyncio.IncompleteReadError, ssl.SSLError) as err:
            await self.close()
            raise CommError(f"{where}: {type(err).__name__}: {err}") from err
        now = time.time()
        name = self.device.name
        if self.vars:
            readings = [Reading(f"{name}.{key}", nut_value(values[var]), now)
                        for key, var in self.vars.items() if var in values]
            missing = [var for var in self.vars.values() if var not in values]
            problems = [f"upsd does not report {', '.join(missing)}"] if missing else []
        else:
            readings = [Reading(f"{name}.{var}", nut_value(text), now)
                        for var, text in values.items() if not var.startswith(_HIDDEN)]
            problems = []
            self.seen = [r.point[len(name) + 1:] for r in readings]
        return PollResult(readings, problems)

    async def _served(self) -> str:
        """What upsd does serve, to name in an UNKNOWN-UPS error."""
        try:
            assert self.client is not None
            return ", ".join(sorted(await self.client.list_ups())) or "no UPS"
        except (NutError, NutGarbage, OSError, AssertionError):
            return "(LIST UPS failed)"

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
