"""SNMP polling throughput on one core: varbinds/s of a GETBULK walk of net-snmp's snmpd,
by net-snmp's snmpbulkwalk, by a bare pysnmp bulk walk, and by Vigil's SNMP driver; then
where the driver's time goes."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import subprocess
import tempfile
import time
from pathlib import Path

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_walk_cmd,
)

from drivers.snmp import SnmpDriver
from monitor.config import load_config_text
from tests import peers
from tests.conftest import site_yaml

ROOT = "1.3.6.1.2.1"


def snmpd(work: Path, port: int) -> peers.Peer:
    conf = work / "snmpd.conf"
    conf.write_text("rocommunity public 127.0.0.1\n")
    exe = peers.need("/usr/sbin/snmpd", "snmpd")
    return peers.Peer("snmpd", [exe, "-f", "-LOw", "-C", "-c", str(conf),
                                f"udp:127.0.0.1:{port}"], lambda: _walks(port), work)


def _walks(port: int) -> bool:
    out = subprocess.run(["snmpget", "-v2c", "-c", "public", "-t", "0.3", "-r", "0",
                          f"127.0.0.1:{port}", "1.3.6.1.2.1.1.1.0"], capture_output=True)
    return out.returncode == 0


def net_snmp(port: int, reps: int) -> tuple[int, float]:
    start = time.perf_counter()
    out = subprocess.run(["snmpbulkwalk", "-v2c", "-c", "public", f"-Cr{reps}", "-On",
                          f"127.0.0.1:{port}", ROOT], capture_output=True, text=True,
                         env={"MIBS": "", "PATH": "/usr/bin:/bin"}, check=True)
    return len(out.stdout.splitlines()), time.perf_counter() - start


async def bare(port: int, reps: int) -> tuple[int, float]:
    engine = SnmpEngine()
    target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=0)
    start = time.perf_counter()
    n = 0
    async for ind, status, _, binds in bulk_walk_cmd(
            engine, CommunityData("public"), target, ContextData(), 0, reps,
            ObjectType(ObjectIdentity(ROOT)), lexicographicMode=False, lookupMib=False):
        assert not ind and not status, (ind, status)
        n += len(binds)
    return n, time.perf_counter() - start


async def driver_walk(port: int, reps: int, work: Path, profile: bool) -> tuple[int, float, str]:
    cfg = load_config_text(site_yaml(work, [{
        "name": "agent", "area": "machine_room", "class": "host", "type": "snmp",
        "connection": {"host": "127.0.0.1", "port": port, "max_repetitions": reps},
        "points": [{"key": "descr", "oid": "SNMPv2-MIB::sysDescr.0"}]}]))
    drv = SnmpDriver(cfg.devices[0])
    await drv.poll()                       # names resolved once, here, not per reply
    prof = cProfile.Profile()
    if profile:
        prof.enable()
    start = time.perf_counter()
    rows = await drv._walk(ROOT)
    elapsed = time.perf_counter() - start
    if profile:
        prof.disable()
    text = io.StringIO()
    if profile:
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
    await drv.close()
    return len(rows), elapsed, text.getvalue()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    agent = snmpd(work, port).start()
    try:
        ns_n, ns_t = net_snmp(port, args.reps)
        bare_n, bare_t = await bare(port, args.reps)
        ours_n, ours_t, _ = await driver_walk(port, args.reps, work, profile=False)
        _, _, where = await driver_walk(port, args.reps, work, profile=True)
    finally:
        agent.stop()
    print(f"peer: net-snmp snmpd; GETBULK walk of {ROOT}, max-repetitions {args.reps}")
    print(f"net-snmp snmpbulkwalk:   {ns_n / ns_t:10,.0f} varbinds/s ({ns_n} varbinds)")
    print(f"bare pysnmp bulk walk:   {bare_n / bare_t:10,.0f} varbinds/s ({bare_n} varbinds)")
    print(f"vigil SNMP driver walk:  {ours_n / ours_t:10,.0f} varbinds/s ({ours_n} varbinds), "
          f"{ours_n / ours_t / (bare_n / bare_t):.0%} of bare pysnmp (goal >= 80%)")
    print("where the driver's time goes (cProfile, top by own time):")
    print("\n".join(where.splitlines()[4:22]))


if __name__ == "__main__":
    asyncio.run(main())
