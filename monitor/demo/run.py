"""``vigil demo``: the simulator plus the daemon on the embedded store with the API and the
console, into which a one-time link signs the operator on call."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import yaml
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from monitor.api.session import Sessions
from monitor.config import load_config_text
from monitor.daemon import Daemon
from monitor.demo import data_dir as default_data_dir
from monitor.demo.simulator import SCENARIOS, Simulator
from monitor.service import serve, site_time

log = logging.getLogger(__name__)


PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
OPERATOR = "zhang_san"
"""Who the demo's one-time link signs in (IT, on call)."""


class ScenarioRequest(BaseModel):
    name: str


def demo_config_text(data_dir: Path, api_port: int, modbus_port: int,
                     business_port: int = 18081) -> str:
    """The packaged demo site, pointed at this run's data directory and ports."""
    data = yaml.safe_load(resources.files("monitor.demo").joinpath("site.yaml")
                          .read_text("utf-8"))
    data["data_dir"] = str(data_dir)
    if PLAYBOOKS.is_dir():  # the procedures of playbooks/ beside the package (a checkout)
        data["playbooks"] = str(PLAYBOOKS)
    data["api"]["port"] = api_port
    for dev in data["devices"]:
        if dev["type"] == "modbus":
            dev["connection"]["port"] = modbus_port
        for check in dev["points"] if dev["type"] == "host" else ():
            if check["check"] == "tcp":
                check["port"] = modbus_port
            elif check["check"] == "http":
                check["port"] = business_port
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def scenario_router(sim: Simulator) -> APIRouter:
    router = APIRouter(prefix="/demo", tags=["demo"])

    @router.get("/scenarios")
    async def scenarios() -> dict[str, object]:
        return {"current": sim.model.scenario, "scenarios": SCENARIOS}

    @router.post("/scenario")
    async def set_scenario(body: ScenarioRequest) -> dict[str, str]:
        try:
            sim.set_scenario(body.name)
        except ValueError as err:
            raise HTTPException(422, str(err)) from err
        log.warning("demo scenario: %s (%s)", body.name, SCENARIOS[body.name])
        return {"scenario": body.name}

    return router


async def run_demo(scenario: str | None, data_dir: Path | None, api_port: int,
                   modbus_port: int) -> None:
    data_dir = data_dir or default_data_dir()
    site_time(yaml.safe_load(resources.files("monitor.demo").joinpath("site.yaml").read_text(
        "utf-8"))["site"].get("timezone", "Asia/Shanghai"))  # from the first line logged
    sim = Simulator(modbus_port, scenario or "normal")

    async def ready(daemon: Daemon, token: str, sessions: Sessions) -> None:
        print(f"Vigil demo running. Console, signed in as the operator on call ({OPERATOR}; "
              f"the link works once, within 10 minutes): "
              f"http://127.0.0.1:{api_port}/login/once/{sessions.one_time(OPERATOR)}\n"
              f"API token (for curl and the CLI): {token}\n"
              f"API docs: http://127.0.0.1:{api_port}/docs   "
              f"scenarios: {', '.join(SCENARIOS)}\n"
              f"switch: curl -H 'Authorization: Bearer {token}' -H 'Content-Type: "
              f"application/json' -d '{{\"name\": \"power_loss\"}}' "
              f"http://127.0.0.1:{api_port}/api/v1/demo/scenario", flush=True)

    await sim.start()
    try:
        cfg = load_config_text(demo_config_text(data_dir, api_port, modbus_port,
                                                sim.business.port), "<demo site>")
        await serve(cfg, None, routers=(scenario_router(sim),), on_ready=ready)
    finally:
        await sim.stop()
