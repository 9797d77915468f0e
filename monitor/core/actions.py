"""The action runner: the one place that runs a command, makes an HTTP call or publishes an
MQTT message.

Commands are argv lists whose program is in ``actions.allowed_commands``, run without a
shell; HTTP calls have a timeout. Every attempt and its result is published as a
``DeviceEvent`` (and so recorded). In dry-run mode (drills) nothing runs; the event says what
would have run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

import httpx

from monitor.config.actions import Action
from monitor.core import mqtt
from monitor.core.bus import Bus, DeviceEvent
from monitor.core.supervisor import Supervisor
from monitor.words.alarms import said

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionResult:
    action: str
    ok: bool
    detail: str
    started: float
    duration: float
    dry_run: bool


ACTIONS = "action"
"""The one-shot work of running an action."""


class ActionRunner:
    def __init__(self, bus: Bus, supervisor: Supervisor, allowed: Callable[[], Collection[str]],
                 dry_run: Callable[[], bool] = lambda: False,
                 language: Callable[[], str] = lambda: "zh-CN"):
        """``language``: the site's, for what the events say."""
        self.bus, self.supervisor, self.allowed, self.dry_run = bus, supervisor, allowed, dry_run
        self.language = language

    def start(self, action: Action, *, subject: str, kind: str, why: str,
              dry_run: bool = False) -> asyncio.Task[ActionResult]:
        """Run ``action`` in the background, under the supervisor."""
        return self.supervisor.run_once(ACTIONS, self.run(action, subject=subject, kind=kind,
                                                          why=why, dry_run=dry_run))

    async def run(self, action: Action, *, subject: str, kind: str, why: str,
                  dry_run: bool = False) -> ActionResult:
        """Run ``action`` because of ``why``; record the result as a ``kind`` event of
        ``subject`` (a device name, or what the action belongs to)."""
        started, mono = time.time(), time.monotonic()
        ok = False
        if dry_run or self.dry_run():
            detail = self._said("action.dry_run", what=self._describe(action))
            ok = True
        elif action.command and action.command[0] not in self.allowed():
            detail = self._said("action.refused", program=action.command[0])
        else:
            log.warning("action %s: running (%s)", action.name, why)
            try:
                async with asyncio.timeout(action.timeout):
                    ok, detail = await (_command(action.command) if action.command
                                        else _http(action) if action.http
                                        else _mqtt(action))
            except asyncio.CancelledError:  # vigil stops: say so, then stop
                self.bus.publish(DeviceEvent(subject, kind, f"{action.name} ({why}): " +
                                             self._said("action.cancelled"), time.time()))
                raise
            except TimeoutError:
                detail = self._said("action.timeout", seconds=f"{action.timeout:g}")
            except (OSError, httpx.HTTPError) as err:
                detail = self._said("action.failed", error=f"{type(err).__name__}: {err}")
        result = ActionResult(action.name, ok, detail, started, time.monotonic() - mono,
                              dry_run or self.dry_run())
        (log.info if ok else log.error)("action %s (%s): %s", action.name, why, detail)
        self.bus.publish(DeviceEvent(subject, kind, f"{action.name} ({why}): {detail}",
                                     time.time()))
        return result

    def _describe(self, action: Action) -> str:
        if action.command:
            return self._said("action.run", argv=" ".join(action.command))
        if action.http is not None:
            return f"{action.http.method} {action.http.url}"
        assert action.mqtt is not None
        return self._said("action.publish", url=action.mqtt.url)

    def _said(self, key: str, **values: object) -> str:
        return said(key, self.language(), **values)

    async def close(self, wait: float) -> None:
        """Give running actions ``wait`` seconds to finish, then cancel them."""
        await self.supervisor.finish(ACTIONS, within=wait)




async def _command(argv: list[str]) -> tuple[bool, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode("utf-8", "replace").strip()[-300:]
    return proc.returncode == 0, f"exit {proc.returncode}" + (f": {text}" if text else "")


async def _http(action: Action) -> tuple[bool, str]:
    assert action.http is not None
    async with httpx.AsyncClient(timeout=action.timeout) as client:
        resp = await client.request(action.http.method, action.http.url,
                                    json=action.http.body or None)
    return resp.status_code < 400, f"HTTP {resp.status_code}"


async def _mqtt(action: Action) -> tuple[bool, str]:
    spec = action.mqtt
    assert spec is not None
    broker = mqtt.parse(spec.url)
    if broker is None:
        return False, f"not an MQTT topic URL: {spec.url}"
    password = spec.password.resolve().get_secret_value() if spec.password else None
    broker = replace(broker, user=spec.user, password=password)
    return await asyncio.to_thread(mqtt.send, broker, dict(spec.payload), action.timeout)
