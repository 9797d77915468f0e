"""The ``vigil`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.api.auth import TokenError
from monitor.config import ConfigError, load_config
from monitor.config.types import parse_duration
from monitor.store import StoreError


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"{len(err.issues)} error(s) in {args.config}", file=sys.stderr)
        return 1
    points = sum(len(d.points) for d in cfg.devices)
    print(f"{args.config}: OK — {len(cfg.areas)} areas, {len(cfg.devices)} devices, "
          f"{points} points, {len(cfg.rules)} rules")
    return 0


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


def cmd_schema(args: argparse.Namespace) -> int:
    from monitor.config.schema import config_schema

    print(json.dumps(config_schema(), ensure_ascii=False, indent=2))
    return 0


def _api(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import httpx

    token = os.environ.get("VIGIL_API_TOKEN")
    if not token and args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    if not token:
        raise SystemExit("vigil: set VIGIL_API_TOKEN or pass --token-file")
    resp = httpx.request(method, args.url.rstrip("/") + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text or resp.reason_phrase
        raise SystemExit(f"vigil: HTTP {resp.status_code}: {detail}")
    return resp.json()


def cmd_alarms(args: argparse.Namespace) -> int:
    for a in _api(args, "GET", "/api/v1/alarms"):
        print(f"{a['id']:32} {a['severity']:9} {a['state']:24} {a['message']}")
    return 0


def _act(args: argparse.Namespace, action: str, **extra: object) -> dict[str, object]:
    """POST an operator action on one alarm, with who and why."""
    result: dict[str, object] = _api(args, "POST", f"/api/v1/alarms/{args.alarm}/{action}",
                                     {"who": args.who, "note": args.note, **extra})
    return result


def cmd_ack(args: argparse.Namespace) -> int:
    a = _act(args, "acknowledge")
    print(f"{a['id']}: {a['state']} (acknowledged by {a['acked_by']})")
    return 0


def cmd_shelve(args: argparse.Namespace) -> int:
    a = _act(args, "shelve", duration=parse_duration(args.duration))
    print(f"{a['id']}: shelved by {a['shelved_by']} until {a['shelved_until']:.0f}")
    return 0


def cmd_unshelve(args: argparse.Namespace) -> int:
    a = _act(args, "unshelve")
    print(f"{a['id']}: {a['state']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vigil", description="Facility monitoring daemon")
    p.add_argument("--version", action="version", version=f"vigil {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("check", help="validate a site config; print every error")
    s.add_argument("config")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("run", help="run the daemon")
    s.add_argument("config")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("demo", help="run the daemon on a simulated site")
    s.add_argument("--scenario", default=None, help="push the simulated site into a situation")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--port", type=int, default=8320, help="API and status page port")
    s.add_argument("--modbus-port", type=int, default=15020, help="the simulator's Modbus port")
    s.set_defaults(fn=cmd_demo)
    s = sub.add_parser("schema", help="print the config's JSON Schema")
    s.set_defaults(fn=cmd_schema)
    for name, fn, help_ in (("alarms", cmd_alarms, "list alarms needing attention"),
                            ("ack", cmd_ack, "acknowledge an alarm"),
                            ("shelve", cmd_shelve, "shelve an alarm for a while"),
                            ("unshelve", cmd_unshelve, "end an alarm's shelving now")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--url", default="http://127.0.0.1:8320")
        s.add_argument("--token-file", default=None)
        if name != "alarms":
            s.add_argument("alarm")
            s.add_argument("--who", required=True)
            s.add_argument("--note", default="")
        if name == "shelve":
            s.add_argument("--for", dest="duration", required=True, help="e.g. 30m, 2h")
        s.set_defaults(fn=fn)
    args = p.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
