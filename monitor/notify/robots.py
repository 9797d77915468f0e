"""Our own senders for the WeCom, DingTalk and Feishu group robots.

apprise's plugins for these count an HTTP 200 as delivered even when the robot's own errcode
says "sign not match" or "send too fast", DingTalk's signature goes out encoded twice, and
Feishu signing is missing. So the familiar apprise URLs are handled here:

- ``wecombot://KEY``
- ``dingtalk://TOKEN`` or ``dingtalk://SECRET@TOKEN`` (加签: ms timestamp, HMAC-SHA256 with
  the secret as key, in the query)
- ``feishu://TOKEN`` or ``feishu://SECRET@TOKEN`` (s timestamp; the key is
  ``timestamp + "\\n" + secret`` and the message empty; in the body)

``?base=http://host:port`` sends to another address (a proxy, or a test receiver). A delivery
counts only when the robot's errcode/code is 0.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

SCHEMES = {"wecombot": "https://qyapi.weixin.qq.com", "dingtalk": "https://oapi.dingtalk.com",
           "feishu": "https://open.feishu.cn"}
MAX_BYTES = {"wecombot": 2048, "dingtalk": 4000, "feishu": 18000}
"""The longest text each robot takes, in UTF-8 bytes: WeCom's documented 2048; Feishu's
whole body is at most 20 KB; DingTalk's limit is not documented where we could read it, so
we keep to a size robots of its kind take."""
CUT = "…"


@dataclass(frozen=True)
class Robot:
    kind: str
    token: str
    secret: str | None
    base: str


def parse(url: str) -> Robot | None:
    """The robot a URL names, or None when it is not one of ours (or malformed)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return None
    secret, _, host = parts.netloc.rpartition("@")
    token = (host + parts.path).strip("/")
    if not token or (parts.scheme == "wecombot" and secret):
        return None  # WeCom robots have no signing: the key is the only credential
    base = parse_qs(parts.query).get("base", [SCHEMES[parts.scheme]])[0].rstrip("/")
    return Robot(parts.scheme, token, secret or None, base)


def dingtalk_sign(secret: str, ms: int) -> str:
    """base64(HmacSHA256(key=secret, msg=ms + "\\n" + secret)), not yet URL-encoded."""
    digest = hmac.new(secret.encode(), f"{ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, seconds: int) -> str:
    """base64(HmacSHA256(key=seconds + "\\n" + secret, msg=empty))."""
    digest = hmac.new(f"{seconds}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def fit(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` bytes. Its first line and every line with a link (the
    acknowledgement link, the console) are kept whole; the lines between are kept in order
    while they fit, and the first that does not is cut with a mark (the advice or the list,
    in our messages), the rest left out."""
    if len(text.encode()) <= limit:
        return text
    lines = text.split("\n")
    kept = {0} | {n for n, line in enumerate(lines) if "://" in line}
    budget = limit - sum(len(lines[n].encode()) + 1 for n in kept)
    if budget < 0:  # the kept lines alone are too long: the first line gives way
        first = _clip(lines[0], max(0, len(lines[0].encode()) + budget - len(CUT.encode())))
        return _clip("\n".join([first + CUT, *(lines[n] for n in sorted(kept - {0}))]),
                     limit)
    out = []
    for n, line in enumerate(lines):
        if n in kept:
            out.append(line)
            continue
        size = len(line.encode()) + 1
        if budget >= size:
            out.append(line)
            budget -= size
        elif budget > len(CUT.encode()) + 1:
            out.append(_clip(line, budget - len(CUT.encode()) - 1) + CUT)
            budget = 0
    return "\n".join(out)


def request(robot: Robot, title: str, body: str, now: float) -> tuple[str, dict[str, Any]]:
    """The URL (with the query built once, never encoded twice) and the JSON to post."""
    text = fit(f"{title}\n{body}", MAX_BYTES[robot.kind])
    if robot.kind == "wecombot":
        return (f"{robot.base}/cgi-bin/webhook/send?key={quote(robot.token, safe='')}",
                {"msgtype": "text", "text": {"content": text}})
    if robot.kind == "dingtalk":
        url = f"{robot.base}/robot/send?access_token={quote(robot.token, safe='')}"
        if robot.secret:
            ms = int(now * 1000)
            url += f"&timestamp={ms}&sign={quote(dingtalk_sign(robot.secret, ms), safe='')}"
        return url, {"msgtype": "text", "text": {"content": text}}
    payload: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if robot.secret:
        seconds = int(now)
        payload.update(timestamp=str(seconds), sign=feishu_sign(robot.secret, seconds))
    return f"{robot.base}/open-apis/bot/v2/hook/{quote(robot.token, safe='')}", payload


def verdict(robot: Robot, status: int, answer: Any) -> tuple[bool, str]:
    """Delivered only when the robot says so: errcode 0 (WeCom, DingTalk), code 0 (Feishu)."""
    if status != 200:
        return False, f"HTTP {status}"
    if not isinstance(answer, dict):
        return False, "the robot's answer is not JSON"
    key = "errcode" if robot.kind != "feishu" else ("code" if "code" in answer else "StatusCode")
    code = answer.get(key)
    if code == 0:
        return True, "sent"
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    return False, f"the robot refused it: {key} {code}: {str(message)[:200]}"


async def send(robot: Robot, title: str, body: str, within: float) -> tuple[bool, str]:
    url, payload = request(robot, title, body, time.time())
    try:
        async with httpx.AsyncClient(timeout=within) as client:
            resp = await client.post(url, json=payload)
    except httpx.TimeoutException:
        return False, f"no answer within {within:g} s"
    except httpx.HTTPError as err:
        return False, f"cannot reach the robot: {type(err).__name__}"
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    return verdict(robot, resp.status_code, answer)
