"""The ``vigil`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from monitor import __version__
from monitor.alarms.model import SEVERITY_TEXT, STATE_TEXT
from monitor.api.auth import TokenError
from monitor.config import ConfigError, SiteConfig, load_config
from monitor.config.types import parse_duration
from monitor.core.store import StoreError
from monitor.demo import data_dir as demo_data_dir

if TYPE_CHECKING:
    import httpx


OWN_LOGGERS = ("monitor", "drivers")


def _setup_logging(level: str) -> None:
    """Vigil's own log at ``level``; libraries' (httpx, uvicorn, apprise, ...) only from
    WARNING, unless debugging: their INFO chatter is not Vigil's news."""
    logging.basicConfig(level="DEBUG" if level == "debug" else "WARNING", stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level.upper())


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.config.load import schedule_warnings, secret_warnings

    try:
        cfg = load_config(args.config, check_secrets=not args.no_secrets)
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"{len(err.issues)} error(s) in {args.config}", file=sys.stderr)
        return 1
    if args.no_secrets:
        for issue in sorted(secret_warnings(args.config, cfg), key=lambda i: i.line):
            print(f"{issue} (warning: secrets not checked)", file=sys.stderr)
    for issue in schedule_warnings(args.config, cfg, datetime.now().astimezone()):
        print(f"{issue} (warning)", file=sys.stderr)
    if cfg.playbooks is not None:
        from monitor.playbooks.check import playbook_texts

        try:
            books = playbook_texts(Path(args.config).parent / cfg.playbooks,
                                   {r.name for r in cfg.roles})
        except ConfigError as err:
            print(err, file=sys.stderr)
            print(f"{len(err.issues)} error(s) in the playbooks of {args.config}",
                  file=sys.stderr)
            return 1
    print(f"{args.config}: OK — {_count(len(cfg.areas), 'area')}, "
          f"{_count(len(cfg.devices), 'device')} ({sum(d.enabled for d in cfg.devices)} "
          f"enabled), {_count(points_of(cfg), 'point')}, {_count(len(cfg.rules), 'rule')}"
          + (f", {_count(len(books), 'playbook')}" if cfg.playbooks is not None else ""))
    if not args.probe:
        return 0
    from monitor.devices.probe import probe

    results = asyncio.run(probe(cfg))
    for r in results:
        print(f"  {'ok  ' if r.ok else 'FAIL'} {r.device}: {r.text}")
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results) - failed} of {len(results)} devices answered")
    return 1 if failed else 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def points_of(cfg: SiteConfig) -> int:
    """The points the enabled devices provide, a profile's included."""
    from drivers.base import driver_class

    total = 0
    for dev in cfg.devices:
        cls = driver_class(dev.type)
        if dev.enabled and cls is not None:
            total += len(cls(dev).point_keys())
    return total


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.service import serve

    _setup_logging(args.log_level)
    try:
        cfg = load_config(args.config)
        asyncio.run(serve(cfg, Path(args.config)))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    except (StoreError, TokenError) as err:
        print(f"vigil: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo.run import run_demo
    from monitor.demo.simulator import SCENARIOS

    _setup_logging(args.log_level)
    if args.scenario and args.scenario not in SCENARIOS:
        print(f"vigil: unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2
    try:
        asyncio.run(run_demo(args.scenario, Path(args.data_dir) if args.data_dir else None,
                             args.port, args.modbus_port))
    except StoreError as err:
        print(f"vigil: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_notify_test(args: argparse.Namespace) -> int:
    """Send a test message on each of a person's channels; report each result."""
    from monitor.notify.channels import scheme, send
    from monitor.notify.messages import test_message

    cfg = _site(args.config, check_secrets=True)
    person = cfg.person(args.person)
    if person is None:
        known = ", ".join(p.name for p in cfg.people) or "none"
        raise CliError(f"no person {args.person!r} in {args.config} (people: {known})")
    who = f"{person.label or person.name} ({person.name})"
    if not person.contacts:
        raise CliError(f"{who} has no contacts")

    async def each() -> list[tuple[str, bool, str]]:
        results = []
        for contact in person.contacts:
            url = contact.resolved()
            title, body = test_message(cfg, person, contact)
            sent = await send(url, title, body, args.timeout)
            detail = f"sent in {sent.duration:.2f} s" if sent.ok else sent.detail
            results.append((f"{contact.channel} ({scheme(url)})", sent.ok, detail))
        return results
    print(f"{who}: {len(person.contacts)} channel(s)")
    results = asyncio.run(each())
    for channel, ok, detail in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {channel}: {detail}")
    reached = sum(ok for _, ok, _ in results)
    print(f"{reached} of {len(results)} channels reached {person.label or person.name}")
    return 0 if reached == len(results) else 1


def cmd_oncall(args: argparse.Namespace) -> int:
    """Who is on call for a role, now or at ``--at`` (local time)."""
    from monitor.notify.oncall import on_call

    cfg = _site(args.config)
    if args.role not in {r.name for r in cfg.roles}:
        raise CliError(f"no role {args.role!r} (roles: {', '.join(r.name for r in cfg.roles)})")
    try:
        at = (datetime.fromisoformat(args.at) if args.at else datetime.now()).astimezone()
    except ValueError as err:
        raise CliError(f"--at {args.at!r}: give a time such as 2026-12-01T20:00") from err
    found = on_call(cfg, args.role, at)
    labels = {p.name: p.label or p.name for p in cfg.people}
    who = "、".join(labels.get(n, n) for n in found.people) or "无人"
    print(f"{at:%Y-%m-%d %H:%M} {args.role}: {who} ({found.source})")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    match: dict[str, list[str]] = {}
    for item in args.match:
        key, sep, value = item.partition("=")
        if not sep or key not in ("severity", "area", "device_class", "alarm"):
            raise CliError(f"--match {item!r}: give KEY=VALUE with KEY severity, area, "
                           f"device_class or alarm")
        match.setdefault(key, []).append(value)
    try:
        duration = parse_duration(args.duration)
    except ValueError as err:
        raise CliError(f"--for {args.duration!r}: {err}") from err
    s = _api(args, "POST", "/api/v1/silences", {"match": match, "duration": duration,
                                                "who": args.who, "reason": args.reason})
    print(f"静默 #{s['id']}: {local_time(s['start'])} 至 {local_time(s['end'])} ({s['reason']})")
    return 0


def cmd_silences(args: argparse.Namespace) -> int:
    found = _api(args, "GET", "/api/v1/silences")
    for s in found:
        match = " ".join(f"{k}={','.join(v)}" for k, v in s["match"].items() if v) or "全部"
        print(f"#{s['id']:<4} {local_time(s['start'])} 至 {local_time(s['end'])}  {match}  "
              f"{s['who']}: {s['reason']}")
    if not found:
        print("无静默")
    return 0


def cmd_route_test(args: argparse.Namespace) -> int:
    """The path an alarm with these facts would take: routes, levels, who, when."""
    from monitor.notify.routing import plan

    cfg = _site(args.config)
    found = {"severity": "", "area": "", "device_class": "", "alarm": ""}
    for fact in args.facts:
        key, sep, value = fact.partition("=")
        if not sep or key not in found:
            raise CliError(f"{fact!r}: give KEY=VALUE with KEY one of {', '.join(found)}")
        found[key] = value
    for line in plan(cfg, found, datetime.now().astimezone()):
        print(line)
    return 0


def cmd_playbook_check(args: argparse.Namespace) -> int:
    """Inspect playbooks: every problem with file and line; exit 1 when any."""
    from monitor.playbooks.check import load_playbook

    roles = {r.name for r in _site(args.config).roles} if args.config else None
    failed = 0
    for path in args.files:
        try:
            pb = load_playbook(path, roles)
        except ConfigError as err:
            failed += 1
            print(err, file=sys.stderr)
            continue
        print(f"{path}: OK — {pb.label}: {len(pb.steps)} steps, {len(pb.triggers)} triggers")
    return 1 if failed else 0


def cmd_playbook_rehearse(args: argparse.Namespace) -> int:
    """Run a playbook against a scenario on a virtual clock; print the timeline."""
    from monitor.playbooks.check import load_playbook
    from monitor.playbooks.rehearse import Rehearsal, load_scenario, render

    try:
        pb, scenario = load_playbook(args.playbook), load_scenario(args.scenario)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    rehearsal = Rehearsal(pb, scenario)
    lines = rehearsal.run()
    print(f"演练推演: {pb.label} / {scenario.name} (不发送任何消息, 不执行任何动作)")
    print(render(lines, pb))
    inc = rehearsal.incident
    print(f"结果: {STATUS_TEXT.get(inc.status, inc.status) if inc else '未触发'}")
    return 0


STATUS_TEXT = {"running": "处置中", "recovery": "恢复中", "closed": "已结束"}


def cmd_schema(args: argparse.Namespace) -> int:
    from monitor.config.schema import config_schema

    print(json.dumps(config_schema(), ensure_ascii=False, indent=2))
    return 0


class CliError(Exception):
    """A problem the user can fix, told in one line (exit 2)."""


def _site(path: str, *, check_secrets: bool = False) -> SiteConfig:
    """The site config a command reads; errors send the user to ``vigil check``."""
    try:
        return load_config(path, check_secrets=check_secrets)
    except ConfigError as err:
        raise CliError(f"{path} has errors; run: vigil check {path}") from err


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    """The daemon's URL and token: ``--url``/``--token``, VIGIL_API_TOKEN, or what the site
    config (``-c``) says (its api section, its token secret, or DATA_DIR/api-token). A person
    signing in (``--as``) needs no token."""
    url, token = args.url, args.token or os.environ.get("VIGIL_API_TOKEN")
    if getattr(args, "as_person", None):
        if args.config:
            cfg = _site(args.config)
            url = url or f"http://{cfg.api.listen.replace('0.0.0.0', '127.0.0.1')}:{cfg.api.port}"
        return (url or "http://127.0.0.1:8320").rstrip("/"), None
    if args.config:
        from monitor.api.auth import token_file

        cfg = _site(args.config)  # only the api section matters: other secrets need not be set
        url = url or f"http://{cfg.api.listen.replace('0.0.0.0', '127.0.0.1')}:{cfg.api.port}"
        if not token and cfg.api.token is not None:
            try:
                token = cfg.api.token.resolve().get_secret_value()
            except ValueError as err:
                raise CliError(f"{args.config}: api.token: {err}") from err
        token = token or _read_token(token_file(cfg.data_dir))
    demo = demo_data_dir() / "api-token"
    token = token or (_read_token(demo) if not args.config and not args.url else None)
    if not token:
        raise CliError(f"no API token: set VIGIL_API_TOKEN, pass --token, or -c site.yaml "
                       f"(the demo's is in {demo})")
    return (url or "http://127.0.0.1:8320").rstrip("/"), token


def _read_token(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CliError(f"cannot read the API token in {path}: {err.strerror}") from err


def _api(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    return _request(args, method, path, body).json()


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None, *,
             params: dict[str, str] | None = None, timeout: float = 10) -> httpx.Response:
    import httpx

    url, token = _target(args)
    auth = (args.as_person, _password()) if token is None else None
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        resp = httpx.request(method, url + path, json=body, params=params, timeout=timeout,
                             headers=headers, auth=auth)
    except httpx.HTTPError as err:
        raise CliError(f"cannot reach the daemon at {url}: {err}") from err
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text or resp.reason_phrase
        if isinstance(detail, list):  # field errors: where and what
            detail = "; ".join(f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: "
                               f"{d.get('msg', '')}" for d in detail if isinstance(d, dict))
        raise CliError(f"HTTP {resp.status_code}: {detail}")
    return resp


def _password() -> str:
    """A person's password: VIGIL_PASSWORD, else asked (never an argument: ps shows those)."""
    import getpass

    password = os.environ.get("VIGIL_PASSWORD")
    if password is None:
        try:
            password = getpass.getpass("password: ")
        except EOFError as err:
            raise CliError("no password: set VIGIL_PASSWORD or run on a terminal") from err
    return password


def cmd_passwd(args: argparse.Namespace) -> int:
    """Print the hash of a new password, for a person's ``credential`` in the config."""
    import getpass

    from monitor.core.credentials import MIN_PASSWORD, hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    if len(password) < MIN_PASSWORD:
        raise CliError(f"a password needs at least {MIN_PASSWORD} characters")
    print(hash_password(password))
    return 0


def local_time(ts: float | None) -> str:
    """An epoch time as the local wall clock, as people read it."""
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cmd_alarms(args: argparse.Namespace) -> int:
    alarms = _api(args, "GET", "/api/v1/alarms")
    for a in alarms:
        print(f"{a['id']:32} {SEVERITY_TEXT.get(a['severity'], a['severity']):4} "
              f"{STATE_TEXT.get(a['state'], a['state']):8} "
              f"{local_time(a['raised_at'])}  {a['message']}")
    if not alarms:
        print("无需处理的告警")
    return 0


def _act(args: argparse.Namespace, action: str, **extra: object) -> dict[str, Any]:
    """POST an operator action on one alarm, with who and why."""
    result: dict[str, Any] = _api(args, "POST", f"/api/v1/alarms/{args.alarm}/{action}",
                                  {"who": args.who, "note": args.note, **extra})
    return result


def cmd_ack(args: argparse.Namespace) -> int:
    a = _act(args, "acknowledge")
    print(f"{a['id']}: {STATE_TEXT.get(a['state'], a['state'])} ({a['acked_by']} 于 "
          f"{local_time(a['acked_at'])} 确认)")
    return 0


def cmd_shelve(args: argparse.Namespace) -> int:
    try:
        duration = parse_duration(args.duration)
    except ValueError as err:
        raise CliError(f"--for {args.duration!r}: {err}") from err
    a = _act(args, "shelve", duration=duration)
    print(f"{a['id']}: 已由 {a['shelved_by']} 搁置至 {local_time(a['shelved_until'])}")
    return 0


def cmd_unshelve(args: argparse.Namespace) -> int:
    a = _act(args, "unshelve")
    print(f"{a['id']}: {STATE_TEXT.get(a['state'], a['state'])}")
    return 0


def cmd_incident_export(args: argparse.Namespace) -> int:
    """An incident's review for management."""
    return _report(args, f"/api/v1/incidents/{quote(args.incident, safe='')}/export")


def cmd_drill_start(args: argparse.Namespace) -> int:
    """Start a drill; with ``--scenario`` its inputs run on the daemon at their times."""
    from monitor.playbooks.rehearse import load_scenario

    script: list[dict[str, Any]] = []
    if args.scenario:
        try:
            scenario = load_scenario(args.scenario)
        except ConfigError as err:
            raise CliError(str(err)) from err
        script = [s.model_dump(by_alias=True, exclude_none=True) for s in scenario.inputs]
    inc = _api(args, "POST", "/api/v1/incidents", {
        "playbook": args.playbook, "scope": args.scope, "drill": True, "why": args.why,
        "unsafe_allowed": args.unsafe, "who": args.who, "script": script})
    if inc.get("joined"):
        print(f"{inc['id']}: 【演练】{inc['label']} 已在进行中, 本次请求已记入其时间线")
        return 0
    print(f"{inc['id']}: 【演练】{inc['label']} 已开始" + (
        f", 脚本 {len(script)} 步" if script else ", 现场演练"))
    return 0


def cmd_drill_report(args: argparse.Namespace) -> int:
    """A playbook's drills side by side."""
    return _report(args, "/api/v1/drills/report", playbook=args.playbook)


def _report(args: argparse.Namespace, path: str, **params: str) -> int:
    """A report from the daemon: HTML or CSV to stdout or ``-o``; a PDF only to ``-o``."""
    if args.format == "pdf" and not args.output:
        raise CliError("a PDF goes to a file: give -o FILE")
    content = _request(args, "GET", path, params={"format": args.format, "lang": args.lang,
                                                  **params}, timeout=120).content
    if not args.output:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return 0
    try:
        Path(args.output).write_bytes(content)
    except OSError as err:
        raise CliError(f"cannot write {args.output}: {err.strerror}") from err
    print(f"{args.output}: {len(content)} bytes")
    return 0


def cmd_report_alarms(args: argparse.Namespace) -> int:
    """The month's alarm-system review (ISA-18.2): the measures as text, or the report."""
    from monitor.reports.alarm_review import summary_lines

    path = "/api/v1/reports/alarms"
    params = {"operators": str(args.operators), **({"month": args.month} if args.month else {})}
    if args.format != "text":
        return _report(args, path, **params)
    review = _request(args, "GET", path, params=params).json()
    print("\n".join(summary_lines(review, args.lang)))
    return 0


def _daemon_args(p: argparse.ArgumentParser) -> None:
    """Where the daemon is and its token."""
    p.add_argument("-c", "--config", default=None,
                   help="site config: the daemon's address and token come from it")
    p.add_argument("--url", default=None, help="default http://127.0.0.1:8320")
    p.add_argument("--token", default=None, help="default: VIGIL_API_TOKEN")


def _report_args(p: argparse.ArgumentParser,
                 formats: tuple[str, ...] = ("html", "pdf", "csv")) -> None:
    p.add_argument("--format", choices=formats, default=formats[0])
    p.add_argument("--lang", choices=("zh-CN", "en"), default="zh-CN")
    p.add_argument("-o", "--output", default=None, help="write to this file (a PDF must)")
    p.add_argument("--as", dest="as_person", metavar="PERSON",
                   help="sign in as this person (password: VIGIL_PASSWORD, or asked)")
    _daemon_args(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vigil", description="Facility monitoring daemon")
    p.add_argument("--version", action="version", version=f"vigil {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("check", help="validate a site config; print every error")
    s.add_argument("config")
    s.add_argument("--no-secrets", action="store_true",
                   help="do not resolve {env:}/{file:} secrets (missing ones are warnings)")
    s.add_argument("--probe", action="store_true",
                   help="also connect to each enabled device once and report what it answers")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("run", help="run the daemon")
    s.add_argument("config")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("demo", help="run the daemon on a simulated site")
    s.add_argument("--scenario", default=None, help="push the simulated site into a situation")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--port", type=int, default=8320, help="API and console port")
    s.add_argument("--modbus-port", type=int, default=15020, help="the simulator's Modbus port")
    s.set_defaults(fn=cmd_demo)
    s = sub.add_parser("notify", help="notifications")
    notify = s.add_subparsers(dest="notify_command", required=True)
    t = notify.add_parser("test", help="send a test message on each of a person's channels")
    t.add_argument("person", help="the person's name in the config")
    t.add_argument("-c", "--config", required=True, help="the site config")
    t.add_argument("--timeout", type=float, default=15.0, help="seconds per channel")
    t.set_defaults(fn=cmd_notify_test)
    s = sub.add_parser("oncall", help="who is on call for a role, now or at a time")
    s.add_argument("role")
    s.add_argument("-c", "--config", required=True, help="the site config")
    s.add_argument("--at", default=None, help="local time, e.g. 2026-12-01T20:00")
    s.set_defaults(fn=cmd_oncall)
    s = sub.add_parser("route", help="where alarms go")
    route = s.add_subparsers(dest="route_command", required=True)
    t = route.add_parser("test", help="show the path an alarm would take, e.g. "
                                      "severity=critical area=machine_room")
    t.add_argument("facts", nargs="+", help="severity=, area=, device_class=, alarm=")
    t.add_argument("-c", "--config", required=True, help="the site config")
    t.set_defaults(fn=cmd_route_test)
    s = sub.add_parser("playbook", help="emergency procedures")
    playbook = s.add_subparsers(dest="playbook_command", required=True)
    t = playbook.add_parser("check", help="inspect playbooks: steps, roles, reachability, "
                                          "timeouts, cycles")
    t.add_argument("files", nargs="+")
    t.add_argument("-c", "--config", help="site config: roles must exist there")
    t.set_defaults(fn=cmd_playbook_check)
    t = playbook.add_parser("rehearse", help="run a playbook against a scenario on a virtual "
                                             "clock; nothing is sent")
    t.add_argument("playbook")
    t.add_argument("scenario")
    t.set_defaults(fn=cmd_playbook_rehearse)
    verbs = {}
    for group, help_ in (("incident", "incident reports"), ("drill", "drills and their reports")):
        verbs[group] = sub.add_parser(group, help=help_).add_subparsers(
            dest=f"{group}_command", required=True)
    for group, verb, name, fn, help_ in (
            ("incident", "export", "incident", cmd_incident_export,
             "an incident's review: times, targets passed or missed, steps, roles, timeline"),
            ("drill", "report", "playbook", cmd_drill_report,
             "a playbook's drills side by side, each against the one before")):
        t = verbs[group].add_parser(verb, help=help_)
        t.add_argument(name, help=f"the {name}'s {'id' if name == 'incident' else 'name'}")
        _report_args(t)
        t.set_defaults(fn=fn)
    t = verbs["drill"].add_parser("start", help="start a playbook as a drill, live or with a "
                                                "scripted scenario (its alarms and answers)")
    t.add_argument("playbook")
    t.add_argument("--scenario", help="a scenario file as for rehearse: its inputs are fed "
                                      "at their times")
    t.add_argument("--scope", default="site")
    t.add_argument("--unsafe", action="store_true", help="run unsafe actions too")
    t.add_argument("--why", default="演练")
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--who", help="who starts it (with the API token)")
    who.add_argument("--as", dest="as_person", metavar="PERSON",
                     help="sign in as this person (password: VIGIL_PASSWORD, or asked)")
    _daemon_args(t)
    t.set_defaults(fn=cmd_drill_start)
    t = sub.add_parser("report", help="reports on the site").add_subparsers(
        dest="report_command", required=True).add_parser(
        "alarms", help="a month's alarm-system review (ISA-18.2): rates, floods, the most "
                       "frequent, chattering and stale alarms, shelving, priorities")
    t.add_argument("--month", default=None, help="YYYY-MM; default: the previous month")
    t.add_argument("--operators", type=int, default=1, help="operators sharing the alarms")
    _report_args(t, ("text", "json", "html", "pdf", "csv"))
    t.set_defaults(fn=cmd_report_alarms)
    s = sub.add_parser("passwd", help="print the hash of a new password, for a person's "
                                      "credential in the config")
    s.add_argument("--stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(fn=cmd_passwd)
    s = sub.add_parser("schema", help="print the config's JSON Schema")
    s.set_defaults(fn=cmd_schema)
    for name, fn, help_ in (("silences", cmd_silences, "list maintenance windows"),
                            ("silence", cmd_silence, "hold back notifications during planned "
                                                     "work"),
                            ("alarms", cmd_alarms, "list alarms needing attention"),
                            ("ack", cmd_ack, "acknowledge an alarm"),
                            ("shelve", cmd_shelve, "shelve an alarm for a while"),
                            ("unshelve", cmd_unshelve, "end an alarm's shelving now")):
        s = sub.add_parser(name, help=help_)
        _daemon_args(s)
        if name in ("ack", "shelve", "unshelve"):
            s.add_argument("alarm")
            s.add_argument("--note", default="", required=name == "shelve",
                           help="why (required to shelve)" if name == "shelve" else None)
        if name in ("ack", "shelve", "unshelve", "silence"):
            who = s.add_mutually_exclusive_group(required=True)
            who.add_argument("--who", help="who acts (with the API token)")
            who.add_argument("--as", dest="as_person", metavar="PERSON",
                             help="sign in as this person (password: VIGIL_PASSWORD, or asked)")
        if name in ("shelve", "silence"):
            s.add_argument("--for", dest="duration", required=True, help="e.g. 30m, 2h")
        if name == "silence":
            s.add_argument("--match", action="append", default=[],
                           help="KEY=VALUE (severity, area, device_class, alarm); repeatable")
            s.add_argument("--reason", required=True, help="e.g. 物业通知 14:00-16:00 停电检修")
        s.set_defaults(fn=fn)
    args = p.parse_args(argv)
    try:
        return int(args.fn(args))
    except CliError as err:
        print(f"vigil: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vigil alarms | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
