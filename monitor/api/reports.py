"""The report API: the monthly alarm-system review (ISA-18.2) as JSON, HTML, CSV or PDF."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from monitor.alarms.manager import period_rows
from monitor.alarms.review import alarm_infos, month_period, review_alarms
from monitor.core.context import Context
from monitor.reports.alarm_review import alarm_report
from monitor.reports.documents import MEDIA, REPORT_CSP, Format
from monitor.words.report import Language


def reports_router(ctx: Context) -> APIRouter:
    router = APIRouter()

    @router.get("/reports/alarms")
    async def alarms(
            month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                               description="YYYY-MM in the site's time zone; "
                                                           "default: the previous month")] = None,
            operators: Annotated[int, Query(ge=1, le=100, description="operators sharing the "
                                                                      "alarms")] = 1,
            fmt: Annotated[Literal["json"] | Format, Query(alias="format")] = "json",
            lang: Annotated[Language | None, Query(description="default: the site's "
                                                               "language")] = None) -> Any:
        """The alarm-system review of a month as ISA-18.2 measures it: rates per operator,
        floods, the most frequent, chattering, fleeting and stale alarms, shelving and the
        priority split, each with its target (docs/alarm-review.md)."""
        cfg = ctx.cfg
        try:
            period = month_period(month, cfg.site.timezone, time.time())
        except ValueError as err:
            raise HTTPException(422, str(err)) from err
        rows = await ctx.store.read(lambda c: period_rows(c, period))
        infos = alarm_infos(cfg, ctx.alarms.defs, ctx.alarms.alarms)
        review = await asyncio.to_thread(review_alarms, rows, period, infos, operators)
        if fmt == "json":
            return review.as_dict()
        body = await asyncio.to_thread(alarm_report, review, fmt, lang or cfg.site.language,
                                       cfg.site.label or cfg.site.name)
        how = "attachment" if fmt == "csv" else "inline"
        return Response(body, media_type=MEDIA[fmt], headers={
            "Content-Disposition": f'{how}; filename="alarm-review-{period.month}.{fmt}"',
            "Content-Security-Policy": REPORT_CSP})

    return router
