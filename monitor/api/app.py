"""The REST API (FastAPI): devices, points, history, alarms, reload, metrics."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import AfterValidator, BaseModel, Field, SecretStr

from monitor import __version__
from monitor.alarms.facts import alarm_device
from monitor.alarms.health import health as health_report
from monitor.alarms.manager import AlarmError, alarm_log
from monitor.alarms.model import Alarm
from monitor.alarms.rules import point_limits
from monitor.api.ack import ack_router
from monitor.api.guard import Guard
from monitor.api.incidents import incidents_router
from monitor.api.parts import ApiParts
from monitor.api.reports import reports_router
from monitor.api.session import Sessions, SignIns, own_host, public_origin, session_router
from monitor.config.model import DeviceConfig
from monitor.config.notify import Match
from monitor.core.bus import AlarmEvent, DeviceEvent, IncidentMilestone, Readings
from monitor.core.context import Context
from monitor.core.model import Reading, split_point_id
from monitor.core.store import StoreUnavailable, history_rows
from monitor.devices import words as device_words
from monitor.devices.base import device_class
from monitor.devices.recorder import recent_events
from monitor.notify import journal
from monitor.notify.oncall import on_call
from monitor.words.labels import (
    ALARM_STATE,
    DEVICE_STATE,
    QUALITY,
    SEVERITY,
    all_labels,
    area_label,
    label,
)
from monitor.words.report import Language


def _no_control(text: str, *, allow_newline: bool = False) -> str:
    bad = [c for c in text if unicodedata.category(c) == "Cc"
           and not (allow_newline and c in "\n\t")]
    if bad:
        raise ValueError("must not contain control characters")
    return text


def _name(text: str) -> str:
    text = _no_control(text).strip()
    if not text:
        raise ValueError("must name a person")
    return text


Who = Annotated[str, Field(min_length=1, max_length=100, description="who acts, e.g. 张三"),
                AfterValidator(_name)]
Note = Annotated[str, Field(max_length=1000),
                 AfterValidator(lambda t: _no_control(t, allow_newline=True))]


class Operator(BaseModel):
    who: Who | None = Field(default=None, description="needed with the API token; a person "
                                                      "signed in with a password acts as "
                                                      "themself")
    note: Note = ""


class ShelveRequest(Operator):
    duration: float = Field(gt=0, le=86400, strict=True, allow_inf_nan=False,
                            description="seconds, at most a day (a shift or two)")
    note: Note = Field(min_length=1, description="why (a reason is required)")


class SilenceRequest(BaseModel):
    match: Match = Field(description="severity, area, device_class, alarm: lists; empty: all")
    duration: float = Field(gt=0, le=30 * 86400, strict=True, allow_inf_nan=False,
                            description="seconds")
    start: float | None = Field(default=None, strict=True, allow_inf_nan=False,
                                description="epoch seconds; default now")
    who: Who | None = None
    reason: Note


def _reading(r: Reading | None) -> dict[str, Any]:
    if r is None:
        return {"value": None, "quality": None, "ts": None}
    return {"value": r.value, "quality": r.quality.value, "ts": r.ts}


def _said(dev: DeviceConfig, key: str, reading: Reading | None,
          lang: Language) -> dict[str, Any]:
    """A reading as a person reads it: value, quality, time, unit (as configured, else a UPS
    point's default), the quality's label, and the value in words (报警/正常, 1 小时 30 分)."""
    p, cls = dev.described_points().get(key), dev.device_class
    unit = (p.unit if p else "") or device_words.point_words(cls, key, lang)[1]
    return {**_reading(reading), "unit": unit,
            "quality_label": label(QUALITY, reading.quality.value, lang) if reading else "",
            "display": device_words.display(cls, key, reading.value if reading else None, unit,
                                            lang)}


PRIVATE = frozenset({"LOGIN_FAILED", "ACK_LINK_REFUSED"})
"""Events that name people and addresses (a password typed into the name box, too)."""
PING = 15.0
"""Seconds of silence on the live stream before it says ``ping``."""
LINK = re.compile(r"/ack/[A-Za-z0-9_.-]+")
"""A signed answer link in a message's text."""
Lang = Annotated[Language | None, Query(description="labels in zh-CN or en; default: the "
                                                    "signed-in person's language, else the "
                                                    "site's")]


def create_app(ctx: Context, parts: ApiParts, token: SecretStr,
               routers: tuple[APIRouter, ...] = (), sessions: Sessions | None = None) -> Guard:
    """The app behind its guard; ``routers`` (the demo's) are mounted under /api/v1."""
    app = FastAPIOffline(title="Vigil", version=__version__,
                         description="Facility monitoring and emergency response")
    bearer = [Depends(HTTPBearer(auto_error=False))]  # documents the token; Guard checks it
    api = APIRouter(prefix="/api/v1", dependencies=bearer)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        """422 with where and what, never the input back."""
        return JSONResponse({"detail": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]}
                                        for e in err.errors()]}, status_code=422)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, err: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"not done: the database cannot commit now ({err})"},
                            status_code=503)

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict[str, Any]:
        """``ok``, or ``degraded`` with the reasons. Open, for load balancers and monitors."""
        devices = ctx.state.devices.values()
        return {**health_report(ctx.alarms), "version": __version__,
                "uptime": time.time() - parts.started, "devices": len(devices),
                "devices_online": sum(1 for d in devices if d.state.value == "online")}

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse,
                   include_in_schema=False)
    async def console() -> HTMLResponse:
        """The console's page: it holds no data (that comes from the API, signed in)."""
        page = resources.files("monitor.web").joinpath("index.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    app.mount("/web", StaticFiles(packages=[("monitor.web", "static")]), name="web")

    @app.get("/metrics", response_class=Response, dependencies=bearer)
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")

    @api.get("/site")
    async def site() -> dict[str, Any]:
        cfg = ctx.cfg
        return {"name": cfg.site.name, "label": cfg.site.label, "language": cfg.site.language,
                "areas": [a.model_dump() for a in cfg.areas],
                "people": [{"name": p.name, "label": p.label} for p in cfg.people]}

    def language(request: Request, lang: Language | None) -> Language:
        """Asked for, else the signed-in person's, else the site's."""
        person = ctx.cfg.person(request.scope.get("state", {}).get("person") or "")
        return lang or (person.language if person is not None else ctx.cfg.site.language)

    def areas(lang: Language) -> dict[str, str]:
        return {a.name: area_label(a.name, a.label, a.purpose, lang) for a in ctx.cfg.areas}

    @api.get("/labels")
    async def labels(request: Request, lang: Lang = None) -> dict[str, Any]:
        """The words for every id the API returns (severities, states, qualities, device
        classes, event kinds, incident statuses, channels, directions, boolean words, and
        the situations the banner names, worst first), in one language; and the site's time
        zone, in which every time is shown."""
        lang = language(request, lang)
        return {"language": lang, "timezone": ctx.cfg.site.timezone, **all_labels(lang),
                **device_words.tables(lang)}

    @api.get("/devices")
    async def devices(request: Request, lang: Lang = None) -> list[dict[str, Any]]:
        """Each device, with its area's, class's and state's labels (``*_label``)."""
        lang = language(request, lang)
        named = areas(lang)
        out = []
        for dev in ctx.cfg.devices:
            st = ctx.state.devices.get(dev.name)
            state = st.state.value if st else "unknown"
            out.append({"name": dev.name, "label": dev.label, "area": dev.area,
                        "area_label": named.get(dev.area, dev.area),
                        "class": dev.device_class,
                        "class_label": device_words.class_label(dev.device_class, lang),
                        "tile": device_class(dev.device_class).tile,
                        "type": dev.type,
                        "interval": dev.interval,
                        "state": state, "state_label": label(DEVICE_STATE, state, lang),
                        "last_ok": st.last_ok if st else None,
                        "last_error": st.last_error if st else None,
                        "problems": st.problems if st else [],
                        "latency": st.latency if st else None})
        return out

    @api.get("/points")
    async def points(request: Request, device: str | None = None,
                     lang: Lang = None) -> list[dict[str, Any]]:
        """Each point's latest reading; ``label`` and ``unit`` as configured, else a UPS
        point's defaults; ``display``: the value as a person reads it (报警/正常, 1 小时 30 分);
        ``limits``: its threshold rules' limits by level (``high``, ``low``, ...)."""
        lang = language(request, lang)
        limits = point_limits(ctx.cfg.rules)
        out = []
        for dev in ctx.cfg.devices:
            if device and dev.name != device:
                continue
            described = dev.described_points()
            found = [pid.partition(".")[2] for pid in ctx.state.latest
                     if pid.startswith(f"{dev.name}.")]
            for key in [*described, *(k for k in found if k not in described)]:
                p = described.get(key)
                pid = f"{dev.name}.{key}"
                out.append({"id": pid, "device": dev.name, "key": key,
                            "area": (p.area if p else None) or dev.area,
                            "label": (p.label if p else "")
                            or device_words.point_words(dev.device_class, key, lang)[0],
                            "meaning": device_words.meaning(dev.device_class, key),
                            "rest": device_words.at_rest(dev.device_class, key),
                            **_said(dev, key, ctx.state.latest.get(pid), lang),
                            "limits": limits.get(pid, {})})
        return out

    @api.get("/points/{point_id}/history")
    async def history(point_id: str, since: float | None = None, until: float | None = None,
                      limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
        dev_name, key = split_point_id(point_id)
        dev = ctx.cfg.device(dev_name)
        known = dev is not None and (point_id in ctx.state.latest
                                     or key in dev.described_points())
        if not known:
            raise HTTPException(404, f"no point {point_id!r}")
        until = time.time() if until is None else until
        since = until - 3600 if since is None else since
        rows = await ctx.store.read(lambda c: history_rows(c, point_id, since, until, limit))
        return {"point": point_id,
                "values": [{"ts": ts, "value": v, "quality": q} for ts, v, q in rows]}

    @api.get("/alarms")
    async def alarms(request: Request, all: bool = False,
                     lang: Lang = None) -> list[dict[str, Any]]:
        """Current alarms (``all``: every one), newest first, with the labels of their
        severity, state, device, area and device class."""
        lang = language(request, lang)
        chosen = ctx.alarms.alarms.values() if all else ctx.alarms.current()
        named = areas(lang)
        return [labelled(a, lang, named)
                for a in sorted(chosen, key=lambda a: -(a.raised_at or 0))]

    def labelled(alarm: Alarm, lang: Language, named: dict[str, str]) -> dict[str, Any]:
        data, dev = alarm.as_dict(), alarm_device(ctx.cfg, alarm)
        cls, where = (dev.device_class if dev else ""), ctx.facts.of(alarm)["area"]
        return {**data, "severity_label": label(SEVERITY, alarm.severity, lang),
                "state_label": label(ALARM_STATE, data["state"], lang),
                "device": dev.name if dev else "",
                "device_label": (dev.label or dev.name) if dev else "",
                "area": where, "area_label": named.get(where, where),
                "device_class": cls,
                "class_label": device_words.class_label(cls, lang) if cls else ""}

    @api.get("/stream")
    async def stream(request: Request, lang: Lang = None) -> StreamingResponse:
        """Alarm transitions, device events, incident milestones and readings as they happen
        (server-sent events ``alarm``, ``event``, ``incident``, ``readings`` with each
        value's ``display``), and a ``ping`` every 15 s when nothing else was said, so a
        connection that died silently is noticed."""
        lang = language(request, lang)

        private = not admin(request)

        def said(event: Any) -> tuple[str, Any]:
            if isinstance(event, Readings):
                return "readings", shown(event, lang)
            kind = {AlarmEvent: "alarm", DeviceEvent: "event",
                    IncidentMilestone: "incident"}[type(event)]
            return kind, asdict(event)

        async def events() -> AsyncIterator[str]:
            sub = ctx.bus.subscribe("api-stream", kinds=(AlarmEvent, DeviceEvent,
                                                         IncidentMilestone, Readings),
                                    maxsize=1000, lossy=True)
            try:
                yield ": connected\n\n"
                while True:
                    batch = await sub.drain(PING)
                    if not batch:
                        yield "event: ping\ndata: {}\n\n"
                    for event in batch:
                        if private and isinstance(event, DeviceEvent) \
                                and event.kind in PRIVATE:
                            continue
                        kind, body = said(event)
                        data = json.dumps(body, ensure_ascii=False, default=str)
                        yield f"event: {kind}\ndata: {data}\n\n"
            finally:
                sub.close()
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    def shown(event: Readings, lang: Language) -> list[dict[str, Any]]:
        """A poll's readings as the console shows them (value, quality, time, display)."""
        dev = ctx.cfg.device(event.device)
        if dev is None:
            return []
        return [{"id": r.point, **_said(dev, r.point[len(dev.name) + 1:], r, lang)}
                for r in event.readings]

    @api.get("/notifications")
    async def notifications(request: Request, alarm: str | None = None,
                            limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """Delivery attempts, newest first: alarm, person, channel, ok, reason, time, text.
        A person signed in sees the texts without their signed links (each is its
        recipient's credential); the token holder sees them whole."""
        rows = await ctx.store.read(lambda c: journal.recent(c, alarm, limit))
        person = request.scope.get("state", {}).get("person")
        return [{**r, "text": LINK.sub("/ack/…", r["text"] or "") if person else r["text"]}
                for r in rows]

    @api.post("/silences")
    async def silence(request: Request, body: SilenceRequest) -> dict[str, Any]:
        """A maintenance window: matching alarms are recorded, not sent, and announced at
        its end if still active. Committed before it answers (503 otherwise)."""
        start = time.time() if body.start is None else body.start
        made = await parts.silences.add(body.match, start, start + body.duration,
                                          actor(request, body.who), body.reason)
        return made.as_dict()

    @api.get("/silences")
    async def silences() -> list[dict[str, Any]]:
        now = time.time()
        return [s.as_dict() for s in parts.silences.windows.values() if s.end > now]

    @api.post("/silences/{silence_id}/expire")
    async def expire(request: Request, silence_id: int, body: Operator) -> dict[str, Any]:
        if silence_id not in parts.silences.windows:
            raise HTTPException(404, f"no silence {silence_id}")
        return (await parts.silences.expire(silence_id, actor(request, body.who))).as_dict()

    @api.get("/oncall")
    async def oncall(role: str, at: float | None = None) -> dict[str, Any]:
        """Who is on call for ``role`` now, or at ``at`` (epoch seconds)."""
        if role not in {r.name for r in ctx.cfg.roles}:
            raise HTTPException(404, f"no role {role!r}")
        when = datetime.fromtimestamp(time.time() if at is None else at).astimezone()
        found = on_call(ctx.cfg, role, when)
        labels = {p.name: p.label for p in ctx.cfg.people}
        return {"role": role, "at": when.timestamp(), "source": found.source,
                "people": [{"name": n, "label": labels.get(n, "")} for n in found.people]}

    @api.get("/alarms/history")
    async def alarms_history(alarm: str | None = None,
                             limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return await ctx.store.read(lambda c: alarm_log(c, alarm, limit))

    @api.get("/events")
    async def events(request: Request, device: str | None = None, since: float = 0.0,
                     limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """What happened at the devices (ONBATT, COMMBAD, SHUTDOWN, ...), newest first.
        Refused sign-ins and answer links are for administrators (and the token) only."""
        found = await ctx.store.read(lambda c: recent_events(c, device, since, limit))
        return found if admin(request) else [e for e in found if e["kind"] not in PRIVATE]

    def admin(request: Request) -> bool:
        """The API token, or a person with admin access."""
        person = ctx.cfg.person(request.scope.get("state", {}).get("person") or "")
        return person is None or person.access == "admin"

    @api.get("/session")
    async def session(request: Request) -> dict[str, Any]:
        """Who is signed in (their access, language, and the CSRF token the console sends
        with each change); for the API token: no person, admin access."""
        state = request.scope.get("state", {})
        person = ctx.cfg.person(state.get("person") or "")
        if person is None:
            return {"person": None, "label": None, "access": "admin", "language": "zh-CN",
                    "csrf": None}
        signed = state.get("session")
        return {"person": person.name, "label": person.label or person.name,
                "access": person.access, "language": person.language, "roles": person.roles,
                "csrf": signed.csrf if signed is not None else None}

    def actor(request: Request, who: str | None) -> str:
        """Who acts: the person signed in with a password, else who the token holder says."""
        name = request.scope.get("state", {}).get("person")
        person = ctx.cfg.person(name) if name else None
        if person is not None:
            return person.label or person.name
        if who is None:
            raise HTTPException(422, "say who acts (who), or sign in as a person")
        return who

    async def _act(action: Any, *args: Any) -> dict[str, Any]:
        try:
            alarm: Alarm = await action(*args)
        except AlarmError as err:
            raise HTTPException(404 if "no alarm" in str(err) else 409, str(err)) from err
        return alarm.as_dict()

    @api.post("/alarms/{alarm_id}/acknowledge")
    async def acknowledge(request: Request, alarm_id: str, body: Operator) -> dict[str, Any]:
        """Committed before it answers: 503 when the database cannot commit it."""
        return await _act(ctx.alarms.acknowledge, alarm_id, actor(request, body.who), body.note)

    @api.post("/alarms/{alarm_id}/shelve")
    async def shelve(request: Request, alarm_id: str, body: ShelveRequest) -> dict[str, Any]:
        return await _act(ctx.alarms.shelve, alarm_id, actor(request, body.who), body.note,
                          body.duration)

    @api.post("/alarms/{alarm_id}/note")
    async def note(request: Request, alarm_id: str, body: Operator) -> dict[str, Any]:
        """A note on the alarm's journal (who and when are recorded; nothing else changes)."""
        if not body.note.strip():
            raise HTTPException(422, "a note needs text")
        return await _act(ctx.alarms.note, alarm_id, actor(request, body.who), body.note)

    @api.post("/alarms/{alarm_id}/unshelve")
    async def unshelve(request: Request, alarm_id: str, body: Operator) -> dict[str, Any]:
        return await _act(ctx.alarms.unshelve, alarm_id, actor(request, body.who), body.note)

    @api.post("/reload")
    async def reload() -> dict[str, Any]:
        errors = await parts.reload()
        if errors:
            raise HTTPException(422, {"message": "configuration refused; the running one is "
                                      "kept", "errors": errors})
        return {"reloaded": True, "devices": len(ctx.cfg.devices)}

    api.include_router(incidents_router(ctx, parts.incidents, actor))
    api.include_router(reports_router(ctx))
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    app.include_router(ack_router(ctx, parts.incidents, parts.links))
    sessions = sessions or Sessions(ctx.store)
    sign_ins = SignIns(lambda said: ctx.bus.publish(DeviceEvent("vigil", "LOGIN_FAILED", said,
                                                                time.time())))
    app.include_router(session_router(ctx, sessions, sign_ins))

    def credentials(name: str) -> str | None:
        person = ctx.cfg.person(name)
        return person.password_hash() if person is not None else None

    def access(name: str) -> str | None:
        person = ctx.cfg.person(name)
        return person.access if person is not None else None
    return Guard(app, token.get_secret_value(), credentials, sessions=sessions,
                 sign_ins=sign_ins, access=access, origins=(public_origin(ctx),),
                 hosts=lambda host: own_host(ctx, host))
