"""GB/T 26875.3 frames decoded, stored and confirmed: Vigil's listener beside a bare receiver
that only decodes and confirms (the floor: no rules, no store), with the same senders in
another process (each connection sends a frame and waits for its 确认, as a transmission
device does). Then frame -> alarm committed (a zone's alarm and its return, one connection:
its 确认 comes after the commit), and the daemon's memory with 1,000 idle connections open.

    python -m bench.gb26875 [--frames 20000] [--connections 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stats import ms, rss_mib
from drivers.gb26875.data import decode_data
from drivers.gb26875.frame import Command, Frame, Splitter
from monitor.config import load_config_text
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import site_yaml

ADDRESS, CENTRE = bytes.fromhex("c0a801046d1d"), bytes.fromhex("060504030201")
LABEL = bytes.fromhex("180d11160a14")


def zone_data(component: int, fire: bool) -> bytes:
    """Type 2, one component of system 3, in 火警 or back to normal."""
    return (b"\x02\x01\x01\x03\x00" + component.to_bytes(4, "little") +
            (b"\x02\x00" if fire else b"\x01\x00") + "走廊".encode("gb18030").ljust(31, b"\0") +
            bytes.fromhex("301213010814"))


def frame(serial: int, component: int, fire: bool) -> bytes:
    return Frame(serial & 0xFFFF, Command.SEND, zone_data(component, fire), ADDRESS, CENTRE,
                 LABEL).encode()


# -- the senders (another process) ----------------------------------------------------------
async def _connection(port: int, n: int, frames: int, out: dict[str, Any]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        out["failures"] += frames
        return
    splitter = Splitter()
    for i in range(frames):
        sent = time.perf_counter()
        writer.write(frame(i, 0x1000 + n, fire=i % 2 == 0))
        try:
            got: list[Any] = []
            while not got:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    raise ConnectionError("closed")
                got = splitter.feed(chunk)
        except (TimeoutError, ConnectionError):
            out["failures"] += frames - i
            break
        if isinstance(got[0], Frame) and got[0].command == Command.CONFIRM:
            out["latency"].append(time.perf_counter() - sent)
        else:
            out["failures"] += 1
    writer.close()


async def _send(port: int, connections: int, frames: int) -> dict[str, Any]:
    out: dict[str, Any] = {"latency": [], "failures": 0}
    start = time.perf_counter()
    each = frames // connections
    await asyncio.gather(*(_connection(port, n, each, out) for n in range(connections)))
    out["elapsed"] = time.perf_counter() - start
    return out


async def _hold(port: int, connections: int, ready: Any, done: Any) -> None:
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    ready.set()
    await asyncio.to_thread(done.wait)
    for _, writer in held:
        writer.close()


def sender(port: int, connections: int, frames: int, results: Any) -> None:
    results.put(asyncio.run(_send(port, connections, frames)))


def holder(port: int, connections: int, ready: Any, done: Any) -> None:
    asyncio.run(_hold(port, connections, ready, done))


async def in_other_process(port: int, connections: int, frames: int) -> dict[str, Any]:
    results: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=sender, args=(port, connections, frames, results))
    proc.start()
    out = await asyncio.to_thread(results.get)
    proc.join()
    return out


# -- the receivers -----------------------------------------------------------------------
async def bare(port: int) -> asyncio.Server:
    """Decode, understand and confirm; nothing else."""
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = Splitter()
        while chunk := await reader.read(4096):
            for item in splitter.feed(chunk):
                if isinstance(item, Frame):
                    decode_data(item.data)
                    writer.write(item.reply(Command.CONFIRM, datetime.now()).encode())
        writer.close()
    return await asyncio.start_server(client, "127.0.0.1", port, backlog=1024)


async def vigil(port: int, work: Path) -> Daemon:
    panel = {"name": "fire1", "area": "machine_room", "class": "fire_panel",
             "type": "gb26875", "interval": 3600, "connection": {"address": ADDRESS.hex()},
             "points": [{"key": "zone", "system": 3, "component": "00001000"}]}
    cfg = load_config_text(site_yaml(work, [panel], [
        {"name": "fire_zone", "point": "fire1.zone", "kind": "state", "equals": ["alarm"],
         "severity": "critical"}],
        listeners=[{"name": "fire_link", "type": "gb26875",
                    "settings": {"listen": "127.0.0.1", "port": port, "udp": False}}]))
    daemon = Daemon(cfg)
    await daemon.start()
    return daemon


def line(name: str, out: dict[str, Any]) -> str:
    ok = len(out["latency"])
    rate = ok / out["elapsed"]
    return (f"{name:<34} {rate:9,.0f} frames/s   p50 {ms(out['latency'], 50):6.2f} ms   "
            f"p99 {ms(out['latency'], 99):7.2f} ms   ok {ok}   failures {out['failures']}")


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)     # an event a frame: the log would be the bench
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--latency-frames", type=int, default=500)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    print(f"{args.frames} frames over {args.connections} TCP connections, each waiting for its "
          "确认; senders in another process")

    port = peers.free_port()
    server = await bare(port)
    print(line("bare (decode + 确认, no store)", await in_other_process(
        port, args.connections, args.frames)))
    server.close()
    await server.wait_closed()

    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    daemon = await vigil(port, work)
    print(line("vigil (decoded, judged, stored)", await in_other_process(
        port, args.connections, args.frames)) + "   (goal: >= 10,000 frames/s)")
    latency = await in_other_process(port, 1, args.latency_frames)
    print(f"frame -> alarm committed, 确认 back  p50 {ms(latency['latency'], 50):6.2f} ms   "
          f"p99 {ms(latency['latency'], 99):6.2f} ms   failures {latency['failures']}   "
          "(goal: p99 <= 10 ms)")
    before = rss_mib()
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    proc = multiprocessing.Process(target=holder, args=(port, 1000, ready, done))
    proc.start()
    await asyncio.to_thread(ready.wait)
    await asyncio.sleep(1.0)
    held = len(daemon.sources.running["fire_link"].clients)   # type: ignore[attr-defined]
    print(f"daemon memory: {before:.1f} MiB, with {held} idle connections open "
          f"{rss_mib():.1f} MiB")
    done.set()
    proc.join()
    await daemon.stop()


if __name__ == "__main__":
    asyncio.run(main())
