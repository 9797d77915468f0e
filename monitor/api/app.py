"""The REST API (FastAPI): devices, points, history, alarms, reload, metrics."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, SecretStr

from monitor import __version__
from monitor.alarms import AlarmError, alarm_log
from monitor.api.auth import TokenGuard
from monitor.daemon import Daemon, reload_from_file
from monitor.model import Reading, split_point_id
from monitor.store import history_rows, recent_events


class Operator(BaseModel):
    who: str = Field(min_length=1, max_length=100, description="who acts, e.g. 张三")
    note: str = Field(default="", max_length=1000)


class ShelveRequest(Operator):
    duration: float = Field(gt=0, le=7 * 86400, description="seconds")


def _reading(r: Reading | None) -> dict[str, Any]:
    if r is None:
        return {"value": None, "quality": None, "ts": None}
    return {"value": r.value, "quality": r.quality.value, "ts": r.ts}


def create_app(daemon: Daemon, token: SecretStr, routers: tuple[APIRouter, ...] = ()) -> FastAPI:
    """The app; ``routers`` (the demo's) are mounted under /api/v1 behind the token."""
    app = FastAPI(title="Vigil", version=__version__,
                  description="Facility monitoring and emergency response")
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(TokenGuard(token))])
    guard = [Depends(TokenGuard(token))]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        devices = daemon.state.devices.values()
        return {"status": "ok", "version": __version__, "uptime": time.time() - daemon.started,
                "devices": len(devices),
                "devices_online": sum(1 for d in devices if d.state.value == "online")}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page() -> str:
        return resources.files("monitor.web").joinpath("status.html").read_text("utf-8")

    @app.get("/metrics", dependencies=guard, response_class=Response)
    async def metrics() -> Response:
        daemon.refresh_gauges(time.time())
        return Response(daemon.metrics.render(), media_type="text/plain; version=0.0.4")

    @api.get("/site")
    async def site() -> dict[str, Any]:
        cfg = daemon.cfg
        return {"name": cfg.site.name, "label": cfg.site.label, "language": cfg.site.language,
                "areas": [a.model_dump() for a in cfg.areas]}

    @api.get("/devices")
    async def devices() -> list[dict[str, Any]]:
        out = []
        for dev in daemon.cfg.devices:
            st = daemon.state.devices.get(dev.name)
            out.append({"name": dev.name, "label": dev.label, "area": dev.area,
                        "class": dev.device_class.value, "type": dev.type,
                        "interval": dev.interval,
                        "state": st.state.value if st else "unknown",
                        "last_ok": st.last_ok if st else None,
                        "last_error": st.last_error if st else None,
                        "problems": st.problems if st else [],
                        "latency": st.latency if st else None})
        return out

    @api.get("/points")
    async def points(device: str | None = None) -> list[dict[str, Any]]:
        out = []
        for dev in daemon.cfg.devices:
            if device and dev.name != device:
                continue
            described = dev.described_points()
            found = [pid.partition(".")[2] for pid in daemon.state.latest
                     if pid.startswith(f"{dev.name}.")]
            for key in [*described, *(k for k in found if k not in described)]:
                p = described.get(key)
                pid = f"{dev.name}.{key}"
                out.append({"id": pid, "device": dev.name, "key": key,
                            "label": p.label if p else "", "unit": p.unit if p else "",
                            **_reading(daemon.state.latest.get(pid))})
        return out

    @api.get("/points/{point_id}/history")
    async def history(point_id: str, since: float | None = None, until: float | None = None,
                      limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
        dev_name, key = split_point_id(point_id)
        dev = daemon.cfg.device(dev_name)
        known = dev is not None and (point_id in daemon.state.latest
                                     or key in dev.described_points())
        if not known:
            raise HTTPException(404, f"no point {point_id!r}")
        until = time.time() if until is None else until
        since = until - 3600 if since is None else since
        rows = await daemon.store.read(lambda c: history_rows(c, point_id, since, until, limit))
        return {"point": point_id,
                "values": [{"ts": ts, "value": v, "quality": q} for ts, v, q in rows]}

    @api.get("/alarms")
    async def alarms(all: bool = False) -> list[dict[str, Any]]:
        now = time.time()
        chosen = daemon.alarms.alarms.values() if all else daemon.alarms.current()
        return [a.as_dict(now) for a in sorted(chosen, key=lambda a: -(a.raised_at or 0))]

    @api.get("/alarms/history")
    async def alarms_history(alarm: str | None = None,
                             limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return await daemon.store.read(lambda c: alarm_log(c, alarm, limit))

    @api.get("/events")
    async def events(device: str | None = None, since: float = 0.0,
                     limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """What happened at the devices (ONBATT, COMMBAD, SHUTDOWN, ...), newest first."""
        return await daemon.store.read(lambda c: recent_events(c, device, since, limit))

    def _act(fn: Any, *args: Any) -> dict[str, Any]:
        try:
            return fn(*args).as_dict()  # type: ignore[no-any-return]
        except AlarmError as err:
            raise HTTPException(404 if "no alarm" in str(err) else 409, str(err)) from err

    @api.post("/alarms/{alarm_id}/acknowledge")
    async def acknowledge(alarm_id: str, body: Operator) -> dict[str, Any]:
        return _act(daemon.alarms.acknowledge, alarm_id, body.who, body.note)

    @api.post("/alarms/{alarm_id}/shelve")
    async def shelve(alarm_id: str, body: ShelveRequest) -> dict[str, Any]:
        return _act(daemon.alarms.shelve, alarm_id, body.who, body.note, body.duration)

    @api.post("/alarms/{alarm_id}/unshelve")
    async def unshelve(alarm_id: str, body: Operator) -> dict[str, Any]:
        return _act(daemon.alarms.unshelve, alarm_id, body.who, body.note)

    @api.post("/reload")
    async def reload() -> dict[str, Any]:
        errors = await reload_from_file(daemon)
        if errors:
            raise HTTPException(422, {"message": "configuration refused; the running one is "
                                      "kept", "errors": errors})
        return {"reloaded": True, "devices": len(daemon.cfg.devices)}

    for router in routers:
        api.include_router(router)
    app.include_router(api)
    return app
