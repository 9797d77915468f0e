"""``vigil check --probe``: connect to each enabled device once, with its timeout, and say
what it answered (as Home Assistant's config flow tries a device before accepting it)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from drivers.base import DriverError, OperatorError, ProtocolError, driver_class
from monitor.config.model import DeviceConfig, SiteConfig
from monitor.core.model import Quality


@dataclass(frozen=True)
class Probe:
    device: str
    ok: bool
    text: str


async def probe_device(dev: DeviceConfig) -> Probe:
    cls = driver_class(dev.type)
    if cls is None:  # it pushes: nothing to ask, its listener hears it
        return Probe(dev.name, True, f"pushes: heard by a listener of type {dev.type}")
    driver = cls(dev)
    started = time.monotonic()
    try:
        async with asyncio.timeout(driver.poll_timeout()):
            result = await driver.poll()
    except TimeoutError:
        return Probe(dev.name, False, f"no answer within {driver.poll_timeout():g} s")
    except OperatorError as err:
        return Probe(dev.name, False, f"reachable, but refused: {err}")
    except ProtocolError as err:
        return Probe(dev.name, False, f"reachable, but its answer is unusable: {err}")
    except DriverError as err:
        return Probe(dev.name, False, f"unreachable: {err}")
    finally:
        await driver.close()
    took = (time.monotonic() - started) * 1000
    good = sum(1 for r in result.readings if r.quality is Quality.GOOD)
    text = f"answered in {took:.0f} ms: {len(result.readings)} points read, {good} good"
    if result.problems:
        text += "; problems: " + "; ".join(result.problems)
    return Probe(dev.name, good > 0 and not result.problems, text)


async def probe(cfg: SiteConfig) -> list[Probe]:
    """Every enabled device at once (a hung one delays nobody)."""
    return list(await asyncio.gather(*(probe_device(d) for d in cfg.devices if d.enabled)))
