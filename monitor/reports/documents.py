"""Reports as files for management: HTML from the templates in ``monitor/reports/templates`` (one
look, ``base.html.j2``), CSV that Excel opens in Chinese (UTF-8 with a BOM), and PDF through
WeasyPrint. Used by the incident and drill reviews and by the monthly alarm review."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined

Format = Literal["html", "csv", "pdf"]
MEDIA: dict[str, str] = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
                         "pdf": "application/pdf"}

ENV = Environment(loader=PackageLoader("monitor.reports", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def html_or_pdf(template: str, fmt: Format, **context: Any) -> bytes:
    """The template rendered as HTML, or as PDF."""
    html = ENV.get_template(template).render(**context)
    return pdf(html) if fmt == "pdf" else html.encode()


REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " \
    "frame-ancestors 'none'"
"""An HTML report has its style inline (it is a file to keep and send on) and no script."""
FORMULA = ("=", "+", "-", "@", "\t", "\r")
"""How a cell starts that a spreadsheet would run as a formula."""


def csv_bytes(rows: list[list[Any]]) -> bytes:
    """CSV with a BOM; a text cell that a spreadsheet would take for a formula (an operator's
    note starting with ``=``, ``+``, ``-`` or ``@``) is kept as text with a leading ``'``."""
    out = io.StringIO()
    csv.writer(out).writerows([[_inert(cell) for cell in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode()


def _inert(cell: Any) -> Any:
    if not isinstance(cell, str) or not cell.startswith(FORMULA):
        return cell
    try:
        float(cell)
        return cell  # a number (-3.5) stays a number
    except ValueError:
        return "'" + cell


def pdf(html: str) -> bytes:
    """The HTML as PDF; nothing is fetched (a report is self-contained)."""
    import weasyprint

    def refuse(url: str, *_: Any, **__: Any) -> dict[str, Any]:
        raise ValueError(f"a report fetches nothing ({url})")
    return bytes(weasyprint.HTML(string=html, url_fetcher=refuse).write_pdf())
