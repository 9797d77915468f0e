"""Message texts from Jinja2 templates (``monitor/notify/templates``): zh-CN by default and
English per person; a long form for chat, e-mail and webhooks, and a short one for SMS (at
most 70 characters, then the link)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

SHORT_MAX = 70

ENV = Environment(loader=PackageLoader("monitor.notify", "templates"), autoescape=False,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

SEVERITY = {"zh-CN": {"critical": "紧急", "major": "重要", "minor": "次要", "warning": "警告",
                      "info": "提示"},
            "en": {"critical": "CRITICAL", "major": "MAJOR", "minor": "minor",
                   "warning": "warning", "info": "info"}}


def render(name: str, language: str, form: str, **context: Any) -> tuple[str, str]:
    """(title, body) of template ``name`` in ``language`` and ``form`` (long or short)."""
    lang = language if language in SEVERITY else "zh-CN"
    text = ENV.get_template(f"{name}.{lang}.j2").render(form=form, **context).strip()
    title, _, body = text.partition("\n")
    if form == "short" and len(title) > SHORT_MAX:
        title = title[:SHORT_MAX - 1] + "…"
    return title.strip(), body.strip()
