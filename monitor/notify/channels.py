"""One message over one apprise URL: off the event loop, under a timeout, and with the reason
when it fails. URLs carry secrets: they are never logged or shown, only their scheme."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import apprise

from monitor.config.directory import INBOX
from monitor.core import mqtt
from monitor.notify import robots

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="notify")
"""Deliveries block in apprise; a hung channel holds one of these, never the loop."""
PER_URL = 4
"""At most this many sends to one URL at once: a slow channel never takes the whole pool,
so the others keep their pace."""
_lanes: dict[tuple[int, str], asyncio.Semaphore] = {}


def scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else ""


def usable(url: str) -> str | None:
    """Why we cannot send to ``url``, or None when we can."""
    if not scheme(url):
        return "not an apprise URL (scheme://...)"
    if url.startswith(INBOX):
        return None if url[len(INBOX):] else "name the inbox: inbox://NAME"
    if scheme(url) in robots.SCHEMES:
        form = "KEY" if scheme(url) == "wecombot" else "[SECRET@]TOKEN"
        return None if robots.parse(url) else (f"not a {scheme(url)}:// robot URL "
                                               f"({scheme(url)}://{form})")
    if scheme(url) in mqtt.SCHEMES:
        return None if mqtt.parse(url) else ("not an MQTT URL we can use "
                                             "(mqtt://[USER:PASS@]HOST[:PORT]/TOPIC[?qos=0|1|2])")
    logger = logging.getLogger("apprise")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its own complaint would show part of the URL
    try:
        ok = apprise.Apprise.instantiate(url) is not None
    finally:
        logger.setLevel(level)
    return None if ok else (f"apprise cannot send to this {scheme(url)}:// URL (check its form "
                            f"and options)")


@dataclass(frozen=True)
class Delivery:
    ok: bool
    detail: str
    duration: float


class _ThreadLog(logging.Handler):
    """What apprise logs (warnings and errors) in one thread: the reason a send failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


def _send(url: str, title: str, body: str) -> tuple[bool, str]:
    sender = apprise.Apprise.instantiate(url)  # the plugin itself: it runs in this thread
    if not sender:
        return False, usable(url) or "apprise cannot use this URL"
    capture = _ThreadLog()
    logger = logging.getLogger("apprise")
    logger.addHandler(capture)
    try:
        ok = bool(sender.notify(body=body, title=title))
    finally:
        logger.removeHandler(capture)
    if ok:
        return True, "sent"
    return False, "; ".join(capture.messages[-2:])[:300] or "apprise reported a failure"


async def send(url: str, title: str, body: str, within: float) -> Delivery:
    """Send, waiting at most ``within`` seconds (a hung channel is a failure, not a wait)."""
    started = time.monotonic()
    if url.startswith(INBOX):  # kept in the notifications table, shown on the console
        return Delivery(True, "in the local inbox", 0.0)
    robot = robots.parse(url)
    if robot is not None:  # our own sender: the robot's errcode decides
        ok, detail = await robots.send(robot, title, body, within)
        return Delivery(ok, detail, time.monotonic() - started)
    broker = mqtt.parse(url)
    lane = _lanes.setdefault((id(asyncio.get_running_loop()), url), asyncio.Semaphore(PER_URL))
    try:
        async with asyncio.timeout(within), lane:
            if broker is not None:  # our own sender: the broker's acknowledgement decides
                ok, detail = await asyncio.get_running_loop().run_in_executor(
                    _POOL, mqtt.publish, broker, title, body, within)
            else:
                ok, detail = await asyncio.get_running_loop().run_in_executor(
                    _POOL, _send, url, title, body)
    except TimeoutError:
        ok, detail = False, f"no answer within {within:g} s"
    return Delivery(ok, detail, time.monotonic() - started)
