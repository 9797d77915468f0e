"""Reports as files for management: HTML from the templates in ``monitor/templates`` (one
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

ENV = Environment(loader=PackageLoader("monitor", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def html_or_pdf(template: str, fmt: Format, **context: Any) -> bytes:
    """The template rendered as HTML, or as PDF."""
    html = ENV.get_template(template).render(**context)
    return pdf(html) if fmt == "pdf" else html.encode()


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


def pdf(html: str) -> bytes:
    """The HTML as PDF; nothing is fetched (a report is self-contained)."""
    import weasyprint

    def refuse(url: str, *_: Any, **__: Any) -> dict[str, Any]:
        raise ValueError(f"a report fetches nothing ({url})")
    return bytes(weasyprint.HTML(string=html, url_fetcher=refuse).write_pdf())
