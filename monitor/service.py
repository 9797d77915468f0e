"""Run the daemon with its API until SIGTERM; SIGHUP reloads the config file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn
from fastapi import APIRouter
from pydantic import SecretStr

from monitor.api.app import create_app
from monitor.api.auth import api_token
from monitor.api.session import Sessions
from monitor.config.model import SiteConfig
from monitor.core.store import check_data_dir
from monitor.daemon import Daemon

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def reload(daemon: Daemon) -> None:
    """SIGHUP: reload; nothing it raises goes unseen."""
    try:
        await daemon.reload_from_file()
    except Exception:
        log.exception("reload failed")


def site_time(zone: str) -> None:
    """Run in the site's time zone: times shown, logged and reported are the site's."""
    os.environ["TZ"] = zone
    time.tzset()


async def serve(cfg: SiteConfig, config_path: Path | None, *,
                routers: tuple[APIRouter, ...] = (),
                on_ready: Callable[[Daemon, str, Sessions], Awaitable[None]] | None = None
                ) -> None:
    """Start everything, wait for a stop signal, stop in order (nothing queued is lost)."""
    check_data_dir(cfg.data_dir)
    site_time(cfg.site.timezone)
    token = api_token(cfg.api, cfg.data_dir).get_secret_value() if cfg.api.enabled else ""
    daemon = Daemon(cfg, config_path)
    await daemon.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload(daemon)))
    server = None
    sessions = Sessions(daemon.ctx.store)
    if cfg.api.enabled:
        app = create_app(daemon.ctx, daemon.api_parts(), SecretStr(token), routers, sessions)
        try:
            sock = socket.create_server((cfg.api.listen, cfg.api.port), reuse_port=False)
        except OSError as err:
            await daemon.stop()
            raise SystemExit(f"vigil: cannot serve the API on {cfg.api.listen}:{cfg.api.port}: "
                             f"{err.strerror}") from err
        proxies = cfg.api.trusted_proxies  # forwarded headers from anyone else are ignored
        server = _Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                        lifespan="off", timeout_graceful_shutdown=2,
                                        proxy_headers=bool(proxies),
                                        forwarded_allow_ips=list(proxies)))
        api_task = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        log.info("API on http://%s:%d", cfg.api.listen, cfg.api.port)
    if on_ready is not None:
        await on_ready(daemon, token, sessions)
    await stop.wait()
    log.info("stopping")
    if server is not None:
        server.should_exit = True
        done, _ = await asyncio.wait([api_task], timeout=3)
        if not done:
            log.warning("API connections still open after 3 s; closing them")
            server.force_exit = True
    await daemon.stop()
