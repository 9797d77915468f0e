"""The incident API: list and read incidents with their timelines, start one (or a drill),
and act on one: acknowledge, confirm a checklist item, approve or refuse, resolve, note."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from monitor.context import Context
from monitor.playbooks.engine import Ack, Confirm, Decide, Incident, Input, Note, Resolve
from monitor.playbooks.runtime import IncidentConflict, IncidentError, Incidents

Actor = Callable[[Request, "str | None"], str]


class Who(BaseModel):
    who: str | None = Field(default=None, min_length=1, max_length=100)


class StartRequest(Who):
    playbook: str = Field(min_length=1, max_length=64)
    scope: str = Field(default="site", min_length=1, max_length=64)
    drill: bool = False
    unsafe_allowed: bool = Field(default=False, description="a drill runs unsafe actions too")
    why: str = Field(default="手动启动", max_length=200)


class ConfirmRequest(Who):
    item: str = Field(min_length=1, max_length=64)


class DecideRequest(Who):
    step: str = Field(min_length=1, max_length=64)
    approve: bool
    note: str = Field(default="", max_length=1000)


class LinkRequest(Who):
    other: str = Field(min_length=1, max_length=128, description="the incident it is linked to")


class NoteRequest(Who):
    text: str = Field(min_length=1, max_length=2000)


def incidents_router(ctx: Context, incidents: Callable[[], Incidents], actor: Actor
                     ) -> APIRouter:
    router = APIRouter()

    def view(inc: Incident) -> dict[str, Any]:
        pb = incidents().versions.get(inc.version)
        return {**inc.__dict__, "label": pb.label if pb else inc.playbook}

    @router.get("/incidents")
    async def listing(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Incidents and drills, newest first."""
        rows = await ctx.store.read(lambda c: c.execute(
            "SELECT data FROM incidents ORDER BY started DESC LIMIT ?", (limit,)).fetchall())
        return [view(Incident(**json.loads(d))) for (d,) in rows]

    @router.get("/incidents/{incident_id}")
    async def one(incident_id: str) -> dict[str, Any]:
        """The incident and its timeline (time, kind, step, who, text)."""
        def read(c: Any) -> tuple[Any, list[Any]]:
            row = c.execute("SELECT data FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            lines = c.execute("SELECT ts, kind, step, actor, text FROM timeline WHERE incident "
                              "= ? ORDER BY seq", (incident_id,)).fetchall()
            return row, lines
        row, lines = await ctx.store.read(read)
        if row is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        keys = ("ts", "kind", "step", "actor", "text")
        return {**view(Incident(**json.loads(row[0]))),
                "timeline": [dict(zip(keys, line, strict=True)) for line in lines]}

    @router.post("/incidents")
    async def start(request: Request, body: StartRequest) -> dict[str, Any]:
        """Start a playbook by hand (or as a drill); committed before it answers."""
        who = actor(request, body.who)
        try:
            inc = incidents().start(body.playbook, body.scope, f"{body.why} ({who})",
                                    drill=body.drill, unsafe_allowed=body.unsafe_allowed,
                                    who=who)
        except IncidentError as err:
            raise HTTPException(404, str(err)) from err
        await ctx.store.call(lambda c: None)
        return view(inc)

    async def act(incident_id: str, inp: Input) -> dict[str, Any]:
        try:
            return view(await incidents().act(incident_id, inp))
        except IncidentError as err:
            raise HTTPException(404, str(err)) from err

    @router.post("/incidents/{incident_id}/acknowledge")
    async def acknowledge(request: Request, incident_id: str, body: Who) -> dict[str, Any]:
        return await act(incident_id, Ack(actor(request, body.who)))

    @router.post("/incidents/{incident_id}/confirm")
    async def confirm(request: Request, incident_id: str, body: ConfirmRequest
                      ) -> dict[str, Any]:
        return await act(incident_id, Confirm(body.item, actor(request, body.who)))

    @router.post("/incidents/{incident_id}/decide")
    async def decide(request: Request, incident_id: str, body: DecideRequest
                     ) -> dict[str, Any]:
        return await act(incident_id, Decide(body.step, actor(request, body.who), body.approve,
                                             body.note))

    @router.post("/incidents/{incident_id}/resolve")
    async def resolve(request: Request, incident_id: str, body: Who) -> dict[str, Any]:
        return await act(incident_id, Resolve(actor(request, body.who)))

    @router.post("/incidents/{incident_id}/link")
    async def link(request: Request, incident_id: str, body: LinkRequest) -> dict[str, Any]:
        """Link two running incidents (one caused the other); both timelines say so."""
        try:
            inc = await incidents().link(incident_id, body.other, actor(request, body.who))
        except IncidentConflict as err:
            raise HTTPException(409, str(err)) from err
        except IncidentError as err:
            raise HTTPException(404, str(err)) from err
        return view(inc)

    @router.post("/incidents/{incident_id}/note")
    async def note(request: Request, incident_id: str, body: NoteRequest) -> dict[str, Any]:
        return await act(incident_id, Note(actor(request, body.who), body.text))

    return router
