"""What routes, silences and inhibition rules match an alarm on: its facts (severity, area,
device class, power feed, alarm id), found from the site configuration."""

from __future__ import annotations

from monitor.alarms.model import Alarm
from monitor.config.model import DeviceConfig, SiteConfig
from monitor.core.model import split_point_id

FACTS = ("severity", "area", "device_class", "feed")
"""Facts a rule may ask to be equal (``equal:``) or group by."""


def alarm_device(cfg: SiteConfig, alarm: Alarm) -> DeviceConfig | None:
    """The device an alarm is about (its definition says which)."""
    return cfg.device(alarm.device) if alarm.device else None


def alarm_area(cfg: SiteConfig, alarm: Alarm) -> str:
    """Where an alarm is: its point's own area (a fire zone), else its device's."""
    dev = alarm_device(cfg, alarm)
    if dev is None:
        return ""
    point = dev.described_points().get(split_point_id(alarm.point)[1]) if alarm.point else None
    return (point.area if point is not None else None) or dev.area


def feeders(cfg: SiteConfig) -> dict[str, str]:
    """Device -> the UPS that feeds it (or ``mains``): the first feed that names the device
    or its area."""
    feeder: dict[str, str] = {}
    for feed in cfg.power.feeds:
        for dev in cfg.devices:
            if dev.name in feed.devices or dev.area in feed.areas:
                feeder.setdefault(dev.name, feed.ups)
    return feeder


def facts(cfg: SiteConfig, alarm: Alarm, feeder: dict[str, str] | None = None) -> dict[str, str]:
    """An alarm's facts. ``feed`` is the UPS its device hangs on (``mains``: no UPS behind
    it), or the one its definition says it is about (a UPS's own battery alarms)."""
    dev = alarm_device(cfg, alarm)
    feed = alarm.feed or ""
    if dev is not None and not feed:
        feed = (feeders(cfg) if feeder is None else feeder).get(dev.name, "")
    return {"severity": alarm.severity, "alarm": alarm.id, "feed": feed,
            "area": alarm_area(cfg, alarm), "device_class": dev.device_class if dev else ""}


class AlarmFacts:
    """Each alarm's facts, kept until the configuration changes: routes, silences,
    inhibition rules and playbooks judge the same alarms again and again, and a storm must not
    cost a device lookup each time."""

    def __init__(self, cfg: SiteConfig):
        self.use(cfg)

    def use(self, cfg: SiteConfig) -> None:
        """Follow the running configuration (at start and after a reload)."""
        self.cfg, self.feeder = cfg, feeders(cfg)
        self.known: dict[str, dict[str, str]] = {}

    def of(self, alarm: Alarm) -> dict[str, str]:
        found = self.known.get(alarm.id)
        if found is None or found["severity"] != alarm.severity:
            found = self.known[alarm.id] = facts(self.cfg, alarm, self.feeder)
        return found
