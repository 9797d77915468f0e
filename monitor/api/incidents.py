"""The incident API: list and read incidents with their timelines, start one (or a drill),
act on one (acknowledge, confirm a checklist item, approve or refuse, resolve, note, link),
and export the review of one, or of a playbook's drills side by side (HTML, CSV, PDF)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from monitor.core.context import Context
from monitor.notify import journal
from monitor.playbooks import records
from monitor.playbooks.check import load_playbook_text
from monitor.playbooks.engine import (
    Ack,
    Confirm,
    Decide,
    Incident,
    Input,
    Note,
    Resolve,
    Safe,
    open_items,
    pending_approval,
)
from monitor.playbooks.model import ApprovalStep, Playbook, RollCallStep
from monitor.playbooks.rehearse import Step as ScriptStep
from monitor.playbooks.review import Review, Row, review
from monitor.playbooks.runtime import (
    IncidentConflict,
    IncidentError,
    IncidentInvalid,
    Incidents,
)
from monitor.reports.documents import MEDIA, REPORT_CSP, Format
from monitor.reports.incident import DELIVERED_SEP, Names, drill_report, incident_report
from monitor.words.report import Language

Actor = Callable[[Request, "str | None"], str]
FormatQuery = Annotated[Format, Query(alias="format")]


class Who(BaseModel):
    who: str | None = Field(default=None, min_length=1, max_length=100)


class StartRequest(Who):
    playbook: str = Field(min_length=1, max_length=64)
    scope: str = Field(default="site", min_length=1, max_length=64)
    drill: bool = False
    unsafe_allowed: bool = Field(default=False, description="a drill runs unsafe actions too")
    why: str = Field(default="手动启动", max_length=200)
    script: list[ScriptStep] = Field(
        default_factory=list, max_length=500,
        description="a drill's scripted inputs, as in a rehearsal scenario: {at, raise|clear|"
                    "ack|confirm|approve|reject|resolve|safe, who}")


class ConfirmRequest(Who):
    item: str = Field(min_length=1, max_length=64)


class DecideRequest(Who):
    step: str = Field(min_length=1, max_length=64)
    approve: bool
    note: str = Field(default="", max_length=1000)


class SafeRequest(Who):
    person: str | None = Field(default=None, min_length=1, max_length=64,
                               description="the person who is safe (a name in the directory); "
                                           "default: the person signed in")


class LinkRequest(Who):
    other: str = Field(min_length=1, max_length=128, description="the incident it is linked to")


class NoteRequest(Who):
    text: str = Field(min_length=1, max_length=2000)


def incidents_router(ctx: Context, incidents: Incidents, actor: Actor
                     ) -> APIRouter:
    router = APIRouter()

    def view(inc: Incident) -> dict[str, Any]:
        pb = incidents.versions.get(inc.version)
        if pb is None:
            return {**inc.__dict__, "label": inc.playbook}
        step = pb.step(inc.step) if inc.step and inc.status != "closed" else None
        return {**inc.__dict__, "label": pb.label,
                "step_label": (step.alias or step.id) if step else "",
                "step_labels": {s.id: s.alias or s.id for s in pb.steps},
                "todo": todo(inc, pb) if inc.status != "closed" else {}}

    def todo(inc: Incident, pb: Playbook) -> dict[str, Any]:
        """What the incident waits for from people: checklist items of the steps reached
        and not yet confirmed, the approval asked for (``role``: its label, ``role_id``: the
        role a person holds), the roll call's count."""
        roles = {r.name: r.label or r.name for r in ctx.cfg.roles}
        items = [{"item": i.id, "text": i.text, "role": roles.get(i.role, i.role),
                  "role_id": i.role} for i in open_items(inc, pb)]
        step = pending_approval(inc, pb)
        approval = {"step": step.id, "text": step.text, "role": roles.get(step.role, step.role),
                    "role_id": step.role} if step is not None else None
        current = pb.step(inc.step) if inc.step else None
        roll = inc.rollcall.get(inc.step or "", {})
        rollcall = {"asked": len(roll), "safe": sum(t is not None for t in roll.values())
                    } if isinstance(current, RollCallStep) else None
        return {"items": items, "approval": approval, "rollcall": rollcall}

    @router.get("/incidents")
    async def listing(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Incidents and drills, newest first."""
        return [view(inc) for inc in await ctx.store.read(lambda c: records.newest(c, limit))]

    @router.get("/incidents/{incident_id}")
    async def one(incident_id: str) -> dict[str, Any]:
        """The incident and its timeline (time, kind, step, who, text), each message's
        delivery to each person included (delivered or undelivered)."""
        def read(c: Any) -> tuple[Incident | None, list[Any]]:
            return records.incident(c, incident_id), lines_of(c, incident_id)
        inc, lines = await ctx.store.read(read)
        if inc is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        keys = ("ts", "kind", "step", "actor", "text")
        return {**view(inc),
                "timeline": [dict(zip(keys, line, strict=True)) for line in lines]}

    async def reviewed(incident_id: str | None = None, drills_of: str | None = None,
                       limit: int = 10) -> list[Review]:
        """One incident, or the last drills of a playbook, oldest first, reviewed as of now
        on the playbook version each ran."""
        def read(c: Any) -> list[tuple[Incident, str | None, list[Any]]]:
            found = records.with_versions(c, incident_id, drills_of, limit)
            return [(inc, text, lines_of(c, inc.id)) for inc, text in found]
        out = []
        for inc, text, lines in await ctx.store.read(read):
            pb = incidents.versions.get(inc.version)
            if pb is None and text is not None:
                pb = load_playbook_text(text, inc.playbook)
            if pb is not None:
                out.append(review(inc, [Row(*line) for line in lines], pb, time.time()))
        return sorted(out, key=lambda r: r.incident.started)

    def lines_of(c: sqlite3.Connection, incident_id: str) -> list[tuple[Any, ...]]:
        """The timeline, with every delivery attempt of the incident's messages (who, by
        person label; its step; the channel, why it failed, and the message's first line) in
        time order."""
        lines = records.timeline(c, incident_id)
        sent = [(ts, "delivered" if ok else "undelivered", step, label(person),
                 (channel if ok else f"{channel}: {detail}")
                 + (DELIVERED_SEP + title if title else ""))
                for ts, person, channel, ok, detail, step, title in journal.attempts_of(
                    c, incident_id)]
        return sorted(lines + sent, key=lambda line: line[0])

    def label(name: str) -> str:
        person = ctx.cfg.person(name)
        return (person.label or person.name) if person else name

    def report(content: bytes, fmt: Format, name: str) -> Response:
        """``name`` (an incident's id may hold a scope given through the API) is cut to
        characters that are safe in the header."""
        how = "attachment" if fmt == "csv" else "inline"
        plain = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return Response(content, media_type=MEDIA[fmt],
                        headers={"Content-Disposition": f'{how}; filename="{plain}.{fmt}"',
                                 "Content-Security-Policy": REPORT_CSP})

    @router.get("/incidents/{incident_id}/export", response_class=Response)
    async def export(incident_id: str, fmt: FormatQuery = "html",
                     lang: Language = "zh-CN") -> Response:
        """The incident's review for management: times to acknowledge, act and resolve,
        targets passed or missed, steps, roles, and the timeline."""
        found = await reviewed(incident_id)
        if not found:
            raise HTTPException(404, f"no incident {incident_id!r}")
        content = await asyncio.to_thread(incident_report, found[0], fmt, lang,
                                          Names.of(ctx.cfg))
        return report(content, fmt, found[0].incident.id)

    @router.get("/drills/report", response_class=Response)
    async def drills(playbook: str = Query(pattern=r"^[A-Za-z0-9_-]+$", max_length=64),
                     fmt: FormatQuery = "html", lang: Language = "zh-CN",
                     limit: int = Query(10, ge=1, le=50)) -> Response:
        """The last ``limit`` drills of a playbook side by side, each against the one
        before."""
        runs = await reviewed(drills_of=playbook, limit=limit)
        if not runs:
            raise HTTPException(404, f"no drills of playbook {playbook!r}")
        content = await asyncio.to_thread(drill_report, runs, fmt, lang, Names.of(ctx.cfg))
        return report(content, fmt, f"drills-{playbook}")

    @router.post("/incidents")
    async def start(request: Request, body: StartRequest) -> dict[str, Any]:
        """Start a playbook by hand (or as a drill); committed before it answers."""
        who = actor(request, body.who)
        pb = incidents.playbooks.get(body.playbook)
        if pb is not None and body.scope != "site" and (
                pb.scope == "site" or body.scope not in {a.name for a in ctx.cfg.areas}):
            raise HTTPException(422, f"scope {body.scope!r}: " + (
                "this procedure is for the whole site (site)" if pb.scope == "site"
                else "not an area of the site"))
        person = ctx.cfg.person(request.scope.get("state", {}).get("person") or "")
        if body.unsafe_allowed and person is not None and person.access != "admin":
            raise HTTPException(403, "a drill that runs unsafe actions needs an administrator")
        running = set(incidents.running)
        try:
            inc = incidents.start(body.playbook, body.scope, f"{body.why} ({who})",
                                    drill=body.drill, unsafe_allowed=body.unsafe_allowed,
                                    who=who, script=body.script)
        except IncidentConflict as err:
            raise HTTPException(409, str(err)) from err
        except IncidentInvalid as err:
            raise HTTPException(422, str(err)) from err
        except IncidentError as err:
            raise HTTPException(404, str(err)) from err
        await ctx.store.committed()
        return {**view(inc), "joined": inc.id in running}

    async def act(incident_id: str, inp: Input) -> dict[str, Any]:
        try:
            return view(await incidents.act(incident_id, inp))
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
        name = request.scope.get("state", {}).get("person")
        person = ctx.cfg.person(name) if name else None
        inc = incidents.running.get(incident_id)
        pb = incidents.versions.get(inc.version) if inc is not None else None
        step = next((s for s in pb.steps if s.id == body.step), None) if pb else None
        if person is not None and isinstance(step, ApprovalStep) \
                and step.role not in person.roles:
            role = next((r.label or r.name for r in ctx.cfg.roles if r.name == step.role),
                        step.role)
            raise HTTPException(403, f"only a person holding the role {role} may decide this")
        return await act(incident_id, Decide(body.step, actor(request, body.who), body.approve,
                                             body.note))

    @router.post("/incidents/{incident_id}/resolve")
    async def resolve(request: Request, incident_id: str, body: Who) -> dict[str, Any]:
        return await act(incident_id, Resolve(actor(request, body.who)))

    @router.post("/incidents/{incident_id}/safe")
    async def safe(request: Request, incident_id: str, body: SafeRequest) -> dict[str, Any]:
        """A roll call: ``person`` (default: the person signed in) is safe."""
        who = actor(request, body.who)
        me = request.scope.get("state", {}).get("person")
        mine = ctx.cfg.person(me) if me else None
        if mine is not None and body.person not in (None, me) and mine.access != "admin":
            raise HTTPException(403, "a person reports only themself safe (an administrator "
                                     "or the API token may report others)")
        name = body.person or me
        if name is None:
            raise HTTPException(422, "say which person is safe (person), or sign in as them")
        if ctx.cfg.person(name) is None:
            raise HTTPException(404, f"no person {name!r} in the directory")
        return await act(incident_id, Safe(name, who))

    @router.post("/incidents/{incident_id}/link")
    async def link(request: Request, incident_id: str, body: LinkRequest) -> dict[str, Any]:
        """Link two running incidents (one caused the other); both timelines say so."""
        try:
            inc = await incidents.link(incident_id, body.other, actor(request, body.who))
        except IncidentConflict as err:
            raise HTTPException(409, str(err)) from err
        except IncidentError as err:
            raise HTTPException(404, str(err)) from err
        return view(inc)

    @router.post("/incidents/{incident_id}/note")
    async def note(request: Request, incident_id: str, body: NoteRequest) -> dict[str, Any]:
        return await act(incident_id, Note(actor(request, body.who), body.text))

    return router
