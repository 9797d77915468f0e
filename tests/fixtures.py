"""What the tests share: devices and sites as configs, a real `vigil run` process and its
API, an in-process daemon's API and a client of it, the API served on a port for the CLI,
the simulated UPS's Modbus server, and the peers' query helpers (VictoriaMetrics, InfluxDB
1.x) and a PDF's text. Test modules import from here, never from each other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr
from pymodbus.server import ModbusTcpServer

from monitor.api.app import create_app
from monitor.demo.simulator import serve_sim
from tests import peers
from tests.conftest import modbus_device, site_yaml
from tests.util import eventually

TOKEN = "test-token-2718281828"
"""The API token of a `vigil run` the tests start."""
SIM_TEMP = {"key": "temperature", "table": "holding", "address": 0, "data_type": "int16",
            "scale": 0.1}
"""A temperature at the simulated UPS server's holding register 0 (``start_sim``)."""
PEER_TEMP = {"key": "temperature", "table": "holding", "address": 40, "data_type": "int16",
             "scale": 0.1, "unit": "°C", "label": "机房温度"}
"""The machine room's temperature at the Modbus peer's holding register 40."""


def ups(name: str, port: int, unit: int = 1) -> dict[str, Any]:
    return modbus_device(name, port, [], cls="ups", profile="generic-ups", interval=0.2,
                         timeout=0.15, connection={"device_id": unit})


def pdf_text(data: bytes) -> set[str]:
    """The characters a PDF's fonts map back to Unicode (their ToUnicode tables): what it
    shows as text."""
    chars: set[str] = set()
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            text = zlib.decompress(stream)
        except zlib.error:
            continue
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
            for dst in re.findall(rb"<[0-9a-fA-F]+>\s*<([0-9a-fA-F]+)>", block):
                chars.update(bytes.fromhex(dst.decode()).decode("utf-16-be"))
    return chars


def app_of(daemon: Any, sessions: Any = None) -> Any:
    """The API (behind its guard) of a daemon run in the test's loop; its token is TOKEN."""
    return create_app(daemon.ctx, daemon.api_parts(), SecretStr(TOKEN), sessions=sessions)


def client_of(app: Any, token: str | None = TOKEN, base: str = "http://127.0.0.1"
              ) -> httpx.AsyncClient:
    """A client of ``app`` in process, sending ``token`` (None: none)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base,
                             headers={"Authorization": f"Bearer {token}"} if token else {})


def api(daemon: Any, token: str | None = TOKEN) -> httpx.AsyncClient:
    """A client of a daemon's API, in process."""
    return client_of(app_of(daemon), token)


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    port = peers.free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                    lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def vigil(*args: str) -> tuple[int, bytes, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file to delete to free it."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


class Running:
    def __init__(self, proc: subprocess.Popen[str], port: int, cfg_path: Path, log: Path):
        self.proc, self.port, self.cfg_path, self.log = proc, port, cfg_path, log
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, headers=headers, timeout=5)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})

    def wait(self, cond: Any, within: float = 10) -> Any:
        end = time.monotonic() + within
        while time.monotonic() < end:
            value = cond()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"not met within {within} s; log:\n{self.log.read_text()[-3000:]}")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.cfg_path.parent / "data" / "vigil.db")


def write_config(tmp_path: Path, devices: list[dict[str, Any]], **extra: Any) -> Path:
    port = extra.pop("api_port", None) or peers.free_port()
    text = site_yaml(tmp_path, devices, extra.pop("rules", []),
                     api={"port": port, "token": {"env": "VIGIL_API_TOKEN"}}, **extra)
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def start(cfg_path: Path, env: dict[str, str] | None = None, module: str = "monitor.cli"
          ) -> Running:
    """``vigil run`` (``module``: one that registers more parts first, then runs it)."""
    port = yaml.safe_load(cfg_path.read_text())["api"]["port"]
    log = cfg_path.parent / f"daemon-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, "run", str(cfg_path)],
                                stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "VIGIL_API_TOKEN": TOKEN, **(env or {})})
    running = Running(proc, port, cfg_path, log)
    running.wait(lambda: proc.poll() is not None or peers.http_ok(f"{running.url}/health"), 20)
    assert proc.poll() is None, log.read_text()
    return running


def signed_in(browser: Browser, url: str, name: str, password: str,
              viewport: dict[str, int] | None = None, zone: str | None = None,
              script: str | None = None) -> Page:
    """Open the console (in the browser's time zone ``zone``, running ``script`` first): it
    sends the person to /login, and the form signs them in."""
    page = browser.new_context(viewport=viewport or {"width": 1440, "height": 900},
                               locale="zh-CN", timezone_id=zone).new_page()
    if script:
        page.add_init_script(script)
    page.goto(url + "/")
    page.wait_for_url("**/login")
    page.get_by_label("姓名").fill(name)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(url + "/")
    expect(page.locator("#banner .head")).not_to_be_empty()
    return page


def snmp_device(name: str, community: str | None = None, port: int = peers.SNMP_PORT,
                **kw: Any) -> dict[str, Any]:
    conn = {"host": "127.0.0.1", "port": port, **kw.pop("connection", {})}
    if community is not None:
        conn["community"] = {"env": f"VIGIL_TEST_COMMUNITY_{community.replace('-', '_')}"}
    return {"name": name, "area": "machine_room", "class": kw.pop("cls", "ups"), "type": "snmp",
            "interval": kw.pop("interval", 2), "timeout": kw.pop("timeout", 0.5), "jitter": 0,
            "connection": conn, **kw}


async def start_sim(port: int) -> ModbusTcpServer:
    return await serve_sim(port, bits=16, registers=16)


def vm_export(vm: str, match: str) -> list[dict[str, Any]]:
    urllib.request.urlopen(f"{vm}/internal/force_flush").read()
    q = urllib.parse.urlencode({"match[]": match, "start": 0, "end": int(time.time()) + 60})
    with urllib.request.urlopen(f"{vm}/api/v1/export?{q}") as resp:
        return [json.loads(ln) for ln in resp.read().splitlines() if ln]


def influxql(url: str, q: str, db: str = "") -> Any:
    data = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ns"}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data) as resp:
        return json.loads(resp.read())


class _Server(uvicorn.Server):
    """The API on a port for the CLI; the test runner keeps its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


KILLED_MID_ACTION = """\
name: batch_stop
label: 停止批处理
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: stop_batch, kind: action, alias: 停止批处理,
     command: [/bin/sh, -c, "echo ran >> MARKER; sleep 30"], timeout: 60s, on_failure: tell_it}
  - {id: done, kind: notify, roles: [it], message: 批处理已停止, next: end}
  - {id: tell_it, kind: notify, roles: [it], message: 停止批处理的结果不明请人工核实}
  - {id: check, kind: checklist, items: [{id: checked, text: 已人工核实, role: it}],
     timeout: 1h, on_timeout: end}
"""
"""A playbook whose action the tests SIGKILL mid-run (MARKER: the file it writes)."""
