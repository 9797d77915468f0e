"""The shared SNMP engine, credentials, and MIB names resolved once, off the event loop."""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from pathlib import Path

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    SnmpEngine,
    UsmUserData,
    usm3DESEDEPrivProtocol,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)

from drivers.snmp import upsmib
from drivers.snmp.spec import SnmpConnection

AUTH = {"MD5": usmHMACMD5AuthProtocol, "SHA": usmHMACSHAAuthProtocol,
        "SHA224": usmHMAC128SHA224AuthProtocol, "SHA256": usmHMAC192SHA256AuthProtocol,
        "SHA384": usmHMAC256SHA384AuthProtocol, "SHA512": usmHMAC384SHA512AuthProtocol}
PRIV = {"DES": usmDESPrivProtocol, "3DES": usm3DESEDEPrivProtocol, "AES": usmAesCfb128Protocol,
        "AES192": usmAesCfb192Protocol, "AES256": usmAesCfb256Protocol}
SYSTEM_MIBS = ("/usr/share/snmp/mibs", "/usr/share/snmp/mibs/ietf", "/usr/share/snmp/mibs/iana")
"""Where Debian puts MIB sources (snmp-mibs-downloader adds the IETF and IANA ones, which
pysmi needs to compile any MIB that imports SNMPv2-SMI)."""

_ENGINES: dict[asyncio.AbstractEventLoop, SnmpEngine] = {}


def engine() -> SnmpEngine:
    """One SNMP engine per event loop, shared by every SNMP device."""
    loop = asyncio.get_running_loop()
    for old in [lp for lp in _ENGINES if lp.is_closed()]:
        del _ENGINES[old]
    if loop not in _ENGINES:
        _ENGINES[loop] = SnmpEngine()
    return _ENGINES[loop]


def auth_data(conn: SnmpConnection) -> CommunityData | UsmUserData:
    if conn.version != "3":
        community = conn.community.resolve().get_secret_value() if conn.community else "public"
        return CommunityData(community, mpModel=0 if conn.version == "1" else 1)
    assert conn.user is not None
    auth_key = conn.auth_key.resolve().get_secret_value() if conn.auth_key else None
    priv_key = conn.priv_key.resolve().get_secret_value() if conn.priv_key else None
    kwargs = {}
    if conn.auth_protocol:
        kwargs["authProtocol"] = AUTH[conn.auth_protocol]
    if conn.priv_protocol:
        kwargs["privProtocol"] = PRIV[conn.priv_protocol]
    return UsmUserData(conn.user, auth_key, priv_key, **kwargs)


def mib_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "vigil", "mibs")


class MibError(Exception):
    """A MIB name that no MIB in the configured folders defines."""


@lru_cache(maxsize=64)
def _view(mib_dirs: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from pysnmp.smi import builder, compiler, view

    cache = mib_cache()
    cache.mkdir(parents=True, exist_ok=True)
    mib_builder = builder.MibBuilder()
    mib_builder.add_mib_sources(builder.DirMibSource(str(cache)))
    sources = [f"file://{Path(d).resolve()}" for d in (*mib_dirs, *SYSTEM_MIBS)
               if Path(d).is_dir()]
    compiler.add_mib_compiler(mib_builder, sources=sources or [f"file://{cache}"],
                              destination=str(cache), borrowers=[f"file://{cache}"])
    return view.MibViewController(mib_builder)


def resolve_names(names: list[str], mib_dirs: tuple[str, ...]) -> dict[str, str]:
    """``MIB::object.index`` -> numeric OID: UPS-MIB names from our own table, others through
    pysnmp's MIBs and pysmi. Blocking (may compile MIBs): run it in an executor."""
    from pysnmp.smi.rfc1902 import ObjectIdentity

    out = {}
    for name in names:
        module, _, rest = name.partition("::")
        symbol, *index = rest.split(".")
        if module == "UPS-MIB" and symbol in upsmib.NAMES:
            out[name] = ".".join((upsmib.UPS_MIB, upsmib.NAMES[symbol], *index))
            continue
        mib_view = _view(mib_dirs)
        try:
            identity = ObjectIdentity(module, symbol, *[int(i) for i in index])
            identity.resolve_with_mib(mib_view)
            out[name] = str(identity.get_oid())
        except Exception as err:  # pysmi and pysnmp raise many kinds for a missing MIB
            raise MibError(f"cannot resolve {name}: {err}".splitlines()[0][:300]) from err
    return out
