"""Console sessions: signing in, the cookie's flags, CSRF and same-site checks, what each
access level may do, approvals only by the role's holders, the demo's one-time link, and
sessions that outlive a restart."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.api.session import COOKIE, Sessions
from monitor.core.credentials import hash_password
from monitor.daemon import Daemon
from tests.conftest import config
from tests.fixtures import TOKEN, app_of, client_of
from tests.util import recorded

PASSWORD = "correct horse battery"
APPROVE = """\
name: approve
label: 审批预案
roles: [gm, it]
triggers: [{manual: true}]
steps:
  - {id: go, kind: approval, role: gm, text: 批准继续, timeout: 1h, on_timeout: end}
  - {id: work, kind: checklist, items: [{id: done, text: 完成, role: it}], timeout: 1h,
     on_timeout: end}
"""


def site(tmp_path: Path) -> Any:
    books = tmp_path / "playbooks"
    books.mkdir(exist_ok=True)
    (books / "approve.yaml").write_text(APPROVE, encoding="utf-8")
    secret = hash_password(PASSWORD)
    return config(tmp_path, [], playbooks=str(books), roles=[{"name": "gm", "label": "总经理"},
                                               {"name": "it"}],
                  people=[{"name": "zhang_san", "label": "张三", "roles": ["it"],
                           "credential": secret},
                          {"name": "qian_zong", "label": "钱总", "roles": ["gm"],
                           "credential": secret},
                          {"name": "guest", "label": "访客", "access": "viewer",
                           "credential": secret}])


def client(daemon: Daemon, sessions: Sessions, base: str = "http://127.0.0.1:8320"
           ) -> httpx.AsyncClient:
    return client_of(app_of(daemon, sessions), None, base)


async def sign_in(c: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/login", data={"name": name, "password": password})


async def csrf(c: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": (await c.get("/api/v1/session")).json()["csrf"]}


async def test_signing_in_gives_a_strict_cookie_and_acts_as_the_person(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    sessions = Sessions(daemon.ctx.store)
    async with client(daemon, sessions) as c:
        assert (await c.get("/api/v1/alarms")).status_code == 401
        made = await sign_in(c, "zhang_san")
        assert made.status_code == 303 and made.headers["location"] == "/"
        cookie = made.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        me = (await c.get("/api/v1/session")).json()
        assert (me["label"], me["access"]) == ("张三", "operator") and me["csrf"]
        incident = (await c.post("/api/v1/incidents", headers=await csrf(c), json={
            "playbook": "approve", "who": "冒名"})).json()["id"]
        noted = await c.post(f"/api/v1/incidents/{incident}/note", headers=await csrf(c),
                             json={"text": "<script>alert(1)</script>", "who": "别人"})
        assert noted.status_code == 200
        await recorded(daemon)
        line = (await c.get(f"/api/v1/incidents/{incident}")).json()["timeline"][-1]
        assert line["actor"] == "张三"           # the person signed in, never a typed name
    async with client(daemon, sessions, "https://127.0.0.1") as c:
        assert "secure" in (await sign_in(c, "zhang_san")).headers["set-cookie"].lower()


async def test_csrf_and_other_sites_are_refused(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        planted = await c.post("/login", data={"name": "zhang_san", "password": PASSWORD},
                               headers={"Origin": "https://evil.example"})
        assert planted.status_code == 403 and COOKIE not in c.cookies   # no login CSRF
        await sign_in(c, "zhang_san")
        body = {"playbook": "approve"}
        missing = await c.post("/api/v1/incidents", json=body)
        forged = await c.post("/api/v1/incidents", json=body, headers={"X-CSRF-Token": "x" * 32})
        assert (missing.status_code, forged.status_code) == (403, 403)
        assert "CSRF" in forged.json()["detail"]
        other = await c.post("/api/v1/incidents", json=body, headers={
            **await csrf(c), "Origin": "https://evil.example"})
        assert other.status_code == 403 and "another site" in other.json()["detail"]
        ok = await c.post("/api/v1/incidents", json=body, headers={
            **await csrf(c), "Origin": "http://127.0.0.1:8320"})
        assert ok.status_code == 200
        stale = (await c.get("/api/v1/session")).json()["csrf"]
        await c.post("/logout", headers={"X-CSRF-Token": stale})
        after = await c.post("/api/v1/incidents", json=body, headers={"X-CSRF-Token": stale})
        assert after.status_code == 401                # the session has ended


async def test_what_each_access_may_do(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    sessions = Sessions(daemon.ctx.store)
    incident = daemon.incidents.start("approve").id
    async with client(daemon, sessions) as viewer:
        await sign_in(viewer, "guest")
        assert (await viewer.get("/api/v1/incidents")).status_code == 200
        acked = await viewer.post(f"/api/v1/incidents/{incident}/acknowledge",
                                  headers=await csrf(viewer), json={})
        assert acked.status_code == 403 and "viewer" in acked.json()["detail"]
    async with client(daemon, sessions) as it:
        await sign_in(it, "zhang_san")
        refused = await it.post(f"/api/v1/incidents/{incident}/decide", headers=await csrf(it),
                                json={"step": "go", "approve": True})
        assert refused.status_code == 403 and "总经理" in refused.json()["detail"]
        assert (await it.post("/api/v1/reload", headers=await csrf(it))).status_code == 403
    async with client(daemon, sessions) as gm:
        await sign_in(gm, "qian_zong")
        done = await gm.post(f"/api/v1/incidents/{incident}/decide", headers=await csrf(gm),
                             json={"step": "go", "approve": True})
        assert done.status_code == 200 and done.json()["decisions"]["go"][:2] == ["钱总", True]


async def test_failed_sign_ins_are_limited_and_recorded(tmp_path: Path,
                                                        daemon_factory: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The form and HTTP Basic share the limits: an address is stopped after 10 failures;
    a name tried wrongly is slowed, never locked, so its owner still gets in."""
    monkeypatch.setattr("monitor.api.session.SLOW_DOWN", 0.01)
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        answers = [(await sign_in(c, "zhang_san", "wrong")).status_code for _ in range(6)]
        assert answers == [401] * 6
        assert (await sign_in(c, "zhang_san")).status_code == 303      # the owner gets in
        basic = [(await c.get("/api/v1/alarms", auth=("qian_zong", "guess"))).status_code
                 for _ in range(4)]
        assert basic == [401] * 4
        assert (await sign_in(c, "qian_zong")).status_code == 429      # 10 from here: stop
        await recorded(daemon)
        events = (await c.get("/api/v1/events", headers={
            "Authorization": f"Bearer {TOKEN}"})).json()
        failed = sorted((e["ts"], e["message"]) for e in events if e["kind"] == "LOGIN_FAILED")
        assert [m.split(":")[0] for _, m in failed] == ["wrong name or password"] * 10 + [
            "too many failed sign-ins"]
        assert sum("'qian_zong', from 127.0.0.1" in m for _, m in failed) == 5
        assert PASSWORD not in str(events)                    # no password is ever written


async def test_a_removed_person_is_signed_out_and_reports_only_themself_safe(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    sessions = Sessions(daemon.ctx.store)
    async with client(daemon, sessions) as c:
        await sign_in(c, "zhang_san")
        incident = daemon.incidents.start("approve").id
        other = await c.post(f"/api/v1/incidents/{incident}/safe", headers=await csrf(c),
                             json={"person": "qian_zong"})
        assert other.status_code == 403 and "only themself" in other.json()["detail"]
        object.__setattr__(daemon.ctx.cfg, "people", [p for p in daemon.ctx.cfg.people
                                                      if p.name != "zhang_san"])
        gone = await c.get("/api/v1/session")
        assert gone.status_code == 401 and "no longer" in gone.json()["detail"]


async def test_a_proxys_public_address_is_this_site(tmp_path: Path,
                                                    daemon_factory: Any) -> None:
    """Behind a proxy the browser's Origin is the public address (notify.public_url)."""
    cfg = site(tmp_path)
    object.__setattr__(cfg.notify, "public_url", "https://vigil.example.com/")
    daemon = await daemon_factory(cfg)
    async with client(daemon, Sessions(daemon.ctx.store), "https://127.0.0.1:8320") as c:
        signed = await c.post("/login", data={"name": "zhang_san", "password": PASSWORD},
                              headers={"Origin": "https://vigil.example.com"})
        assert signed.status_code == 303
        made = await c.post("/api/v1/incidents", json={"playbook": "approve"}, headers={
            **await csrf(c), "Origin": "https://vigil.example.com"})
        assert made.status_code == 200, made.text


async def test_a_one_time_link_signs_in_once_and_sessions_outlive_a_restart(
        tmp_path: Path) -> None:
    cfg = site(tmp_path)
    first = Daemon(cfg)
    await first.start()
    try:
        sessions = Sessions(first.ctx.store)
        link = f"/login/once/{sessions.one_time('zhang_san')}"
        async with client(first, sessions) as c:
            assert (await c.get(link)).status_code == 303
            sid = c.cookies[COOKIE]
            assert (await c.get("/api/v1/session")).json()["label"] == "张三"
        async with client(first, sessions) as again:
            assert (await again.get(link)).status_code == 403          # used
    finally:
        await first.stop()
    second = Daemon(cfg)
    await second.start()
    try:
        async with client(second, Sessions(second.ctx.store)) as c:
            c.cookies.set(COOKIE, sid)
            assert (await c.get("/api/v1/session")).json()["label"] == "张三"
            c.cookies.set(COOKIE, "not-a-session")
            assert (await c.get("/api/v1/session")).status_code == 401
    finally:
        await second.stop()


@pytest.mark.parametrize("cookie", ["", "vigil_session", 'vigil_session="; bad'])
async def test_a_malformed_cookie_is_not_a_session(tmp_path: Path, daemon_factory: Any,
                                                   cookie: str) -> None:
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        got = await c.get("/api/v1/alarms", headers={"Cookie": cookie})
        assert got.status_code == 401


async def test_a_scope_must_be_the_site_or_an_area_and_unsafe_drills_need_an_admin(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        await sign_in(c, "zhang_san")
        for scope in ("a#b", "x/y", "<b>机房</b>", "machine_room"):
            made = await c.post("/api/v1/incidents", headers=await csrf(c),
                                json={"playbook": "approve", "scope": scope})
            assert made.status_code == 422, scope        # a site procedure: site only
        unsafe = await c.post("/api/v1/incidents", headers=await csrf(c), json={
            "playbook": "approve", "drill": True, "unsafe_allowed": True})
        assert unsafe.status_code == 403 and "administrator" in unsafe.json()["detail"]
        assert not daemon.incidents.running


async def test_a_person_never_sees_anothers_answer_link(tmp_path: Path,
                                                         daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    daemon.ctx.store.submit(lambda c: c.execute(
        "INSERT INTO notifications (ts, alarm, person, channel, ok, detail, text, paging) "
        "VALUES (1, 'inc', 'qian_zong', 'webhook', 1, 'ok', "
        "'请审批 点此确认: http://vigil/ack/eyJhIjoi.c2lnbmVk', 0)"))
    await recorded(daemon)
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        await sign_in(c, "zhang_san")
        seen = (await c.get("/api/v1/notifications")).json()
        assert seen[0]["text"] == "请审批 点此确认: http://vigil/ack/…"
        machine = (await c.get("/api/v1/notifications", headers={
            "Authorization": f"Bearer {TOKEN}"})).json()
        assert machine[0]["text"].endswith("/ack/eyJhIjoi.c2lnbmVk")


async def test_a_note_on_an_alarm_goes_on_its_journal_as_the_person(
        tmp_path: Path, daemon_factory: Any) -> None:
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    daemon = await daemon_factory(site(tmp_path))
    daemon.alarms.define(AlarmDef("test:door", Severity.MAJOR, "机房门未关"))
    daemon.alarms.set_condition("test:door", True)
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        await sign_in(c, "zhang_san")
        noted = await c.post("/api/v1/alarms/test:door/note", headers=await csrf(c),
                             json={"note": "已通知物业, 10 分钟内到场", "who": "别人"})
        assert noted.status_code == 200 and noted.json()["state"] == "active_unacknowledged"
        empty = await c.post("/api/v1/alarms/test:door/note", headers=await csrf(c),
                             json={"note": "  "})
        assert empty.status_code == 422
        journal = (await c.get("/api/v1/alarms/history", params={"alarm": "test:door"})).json()
        assert [(e["action"], e["who"], e["note"]) for e in journal][:1] == [
            ("noted", "张三", "已通知物业, 10 分钟内到场")]
    async with client(daemon, Sessions(daemon.ctx.store)) as viewer:
        await sign_in(viewer, "guest")
        refused = await viewer.post("/api/v1/alarms/test:door/note",
                                    headers=await csrf(viewer), json={"note": "x"})
        assert refused.status_code == 403


async def test_an_ended_session_signs_nobody_in_and_is_forgotten(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    sessions = Sessions(daemon.ctx.store, lifetime=0.0)        # every session ends at once
    sid, _ = await sessions.open("zhang_san", None)
    assert await sessions.find(sid) is None
    await recorded(daemon)
    assert not await daemon.store.read(lambda c: c.execute("SELECT * FROM sessions").fetchall())


async def test_the_sign_in_page_speaks_the_browsers_language(tmp_path: Path,
                                                            daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        zh = await c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        en = await c.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert "姓名" in zh.text and 'lang="zh-CN"' in zh.text
        assert "Password" in en.text and 'lang="en"' in en.text and "密码" not in en.text
        wrong = await c.post("/login", data={"name": "zhang_san", "password": "x"},
                             headers={"Accept-Language": "en"})
        assert wrong.status_code == 401 and "Wrong name or password" in wrong.text


async def test_every_answer_forbids_framing_sniffing_and_referrers(
        tmp_path: Path, daemon_factory: Any) -> None:
    """The guard's own refusals (401, 403, 413, 429, 421) too; and a policy that allows no
    inline script or style anywhere but the offline API docs."""
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        answers = {path: await c.get(path) for path in ("/", "/login", "/health", "/ack/x.y")}
        answers["401"] = await c.get("/api/v1/alarms")
        answers["413"] = await c.post("/api/v1/reload", content=b"x" * (2**20 + 1),
                                      headers={"Authorization": f"Bearer {TOKEN}"})
        await sign_in(c, "guest")
        answers["403"] = await c.post("/api/v1/silences", headers=await csrf(c), json={})
        answers["421"] = await c.get("/health", headers={"Host": "rebound.example"})
        for n in range(11):
            answers["429"] = await c.get("/api/v1/alarms", headers={
                "Authorization": "Basic " + base64.b64encode(f"n{n}:wrong".encode()).decode()})
        for what, answer in answers.items():
            got = answer.headers
            assert what in ("/", "/login", "/health", "/ack/x.y") or \
                str(answer.status_code) == what, (what, answer.status_code)
            assert (got["x-frame-options"], got["x-content-type-options"],
                    got["referrer-policy"]) == ("DENY", "nosniff", "same-origin"), what
            policy = got["content-security-policy"]
            assert "script-src 'self';" in policy and "style-src 'self';" in policy, what
            assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        for path in ("/login", "/ack/x.y"):              # their style is a file
            assert "<style" not in answers[path].text and "/web/pages.css" in answers[path].text
        assert (await c.get("/web/pages.css")).status_code == 200


def failed_sign_ins(running: Any) -> list[str]:
    return [e["message"] for e in running.get("/api/v1/events").json()
            if e["kind"] == "LOGIN_FAILED"]


def test_forwarded_headers_count_only_from_the_proxies_named(tmp_path: Path) -> None:
    """A rotating X-Forwarded-For from 127.0.0.1 gets no more wrong passwords past the
    limit, and the record names the real address; a proxy named in api.trusted_proxies is
    believed."""
    from tests import peers
    from tests.fixtures import start, write_config

    secret = hash_password(PASSWORD)
    for trusted in ([], ["127.0.0.1"]):
        work = tmp_path / str(len(trusted))
        work.mkdir()
        cfg = write_config(work, [], people=[{"name": "zhang_san", "credential": secret}],
                           api_port=peers.free_port())
        text = cfg.read_text().replace("api:\n", f"api:\n  trusted_proxies: {trusted}\n", 1)
        cfg.write_text(text)
        running = start(cfg)
        try:
            codes = [httpx.post(f"{running.url}/login", timeout=10, headers={
                "X-Forwarded-For": f"203.0.113.{n}"}, data={"name": f"name{n}",
                                                            "password": "guess"}).status_code
                     for n in range(12)]
            running.wait(lambda r=running: len(failed_sign_ins(r)) == 12)  # each recorded
            said = failed_sign_ins(running)
        finally:
            running.proc.kill()
            running.proc.wait()
        if not trusted:
            assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
            assert all(x.endswith("from 127.0.0.1") for x in said), said
        else:                                           # each address its own count
            assert codes == [401] * 12
            assert any(x.endswith("from 203.0.113.0") for x in said), said


async def test_a_foreign_host_name_is_refused(tmp_path: Path, daemon_factory: Any) -> None:
    """A page of another site whose name resolves to Vigil (DNS rebinding) cannot sign in:
    the Host must be an address, localhost, notify.public_url's host or one of api.hosts."""
    cfg = site(tmp_path)
    object.__setattr__(cfg.notify, "public_url", "https://vigil.example.com/")
    object.__setattr__(cfg.api, "hosts", ["vigil.corp.local"])
    daemon = await daemon_factory(cfg)
    async with client(daemon, Sessions(daemon.ctx.store), "http://rebound.example") as c:
        planted = await c.post("/login", data={"name": "zhang_san", "password": PASSWORD},
                               headers={"Origin": "http://rebound.example"})
        assert planted.status_code == 421 and COOKIE not in c.cookies
    object.__setattr__(cfg.api, "hosts", ["vigil.corp.local.", "ops.corp.local:8320"])
    own = socket.gethostname()
    for base in ("http://127.0.0.1:8320", "http://[::1]:8320", "http://localhost:8320",
                 "https://vigil.example.com", "http://VIGIL.corp.local:8320",
                 "http://ops.corp.local", f"http://{own}:8320"):
        async with client(daemon, Sessions(daemon.ctx.store), base) as c:
            assert (await c.get("/health")).status_code == 200, base
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        assert (await c.get("/health", headers={"Host": ""})).status_code == 421


async def test_a_changed_password_ends_that_persons_sessions(
        tmp_path: Path, daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    sessions = Sessions(daemon.ctx.store)
    async with client(daemon, sessions) as zhang, client(daemon, sessions) as qian:
        await sign_in(zhang, "zhang_san")
        await sign_in(qian, "qian_zong")
        changed = daemon.ctx.cfg.people[0].model_copy(
            update={"credential": hash_password("a new password")})
        object.__setattr__(daemon.ctx.cfg, "people", [changed, *daemon.ctx.cfg.people[1:]])
        gone = await zhang.get("/api/v1/session")
        assert gone.status_code == 401 and "password changed" in gone.json()["detail"]
        assert (await zhang.get("/api/v1/session")).status_code == 401   # ended, not paused
        assert (await qian.get("/api/v1/session")).status_code == 200    # the others stay
        await sign_in(zhang, "zhang_san", "a new password")
        assert (await zhang.get("/api/v1/session")).status_code == 200


async def test_refused_sign_ins_are_for_administrators_only(tmp_path: Path,
                                                             daemon_factory: Any) -> None:
    daemon = await daemon_factory(site(tmp_path))
    async with client(daemon, Sessions(daemon.ctx.store)) as c:
        await sign_in(c, "zhang_san", "my-other-password")         # typed into the wrong box
        await recorded(daemon)
        await sign_in(c, "zhang_san")
        seen = [e["kind"] for e in (await c.get("/api/v1/events")).json()]
        assert "LOGIN_FAILED" not in seen                           # an operator: not shown
        machine = (await c.get("/api/v1/events", headers={
            "Authorization": f"Bearer {TOKEN}"})).json()
        assert [e["kind"] for e in machine].count("LOGIN_FAILED") == 1
