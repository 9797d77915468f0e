"""What an alarm is, without I/O: its definition (what raises it and what it is about), its
ISA-18.2 state, and the protocols the rules and inhibition see the alarm manager through."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from monitor.config.model import Severity
from monitor.core.model import split_point_id
from monitor.words.labels import ALARM_STATE, SEVERITY, table


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKNOWLEDGED = "active_unacknowledged"
    ACTIVE_ACKNOWLEDGED = "active_acknowledged"
    CLEARED_UNACKNOWLEDGED = "cleared_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class AlarmDef:
    """What raises an alarm: id, severity, message, delays, and the point it watches."""

    id: str
    severity: Severity
    message: str
    point: str | None = None
    on_delay: float = 0.0
    off_delay: float = 0.0
    latched: bool = False
    """Raised by an event, not a lasting condition: it stays until acknowledged."""
    advice: str = ""
    """What to do about it, said in every message."""
    device: str | None = None
    """The device it is about (never parsed from the id); a rule's alarm: its point's."""
    feed: str | None = None
    """The UPS whose feed it is about (a UPS's own battery alarms), where not its device's."""
    situation: str | None = None
    """The situation it makes on the console's banner (``fire``, ``power``, ...), if any."""

    def new(self) -> Alarm:
        """The alarm it raises, as yet normal."""
        alarm = Alarm(self.id, self.severity.value, self.message, self.point)
        self.describe(alarm)
        return alarm

    def describe(self, alarm: Alarm) -> None:
        """Give ``alarm`` this definition's words and what it is about."""
        alarm.severity, alarm.message = self.severity.value, self.message
        alarm.device = self.device or alarm.device
        alarm.feed, alarm.situation = self.feed, self.situation


@dataclass
class Alarm:
    id: str
    severity: str
    message: str
    point: str | None = None
    device: str | None = None
    """The device it is about, if any."""
    feed: str | None = None
    situation: str | None = None
    active: bool = False
    acked: bool = True
    value: Any = None
    raised_at: float | None = None
    cleared_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_note: str | None = None
    suppressed_by: str | None = None
    condition: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.device is None and self.point:  # a rule's alarm is about its point's device
            self.device = split_point_id(self.point)[0]

    def state(self) -> AlarmState:
        """Shelving ends when its (durable) timer fires, never by comparing wall clocks."""
        if self.shelved_until is not None:
            return AlarmState.SHELVED
        if self.suppressed_by is not None and self.active:
            return AlarmState.SUPPRESSED
        if self.active:
            return (AlarmState.ACTIVE_ACKNOWLEDGED if self.acked
                    else AlarmState.ACTIVE_UNACKNOWLEDGED)
        return AlarmState.NORMAL if self.acked else AlarmState.CLEARED_UNACKNOWLEDGED

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("condition")
        data["state"] = self.state().value
        return data


STATE_TEXT = table(ALARM_STATE)
SEVERITY_TEXT = table(SEVERITY)

class Inhibitor(Protocol):
    """Suppression by design (kept and shown, not annunciated): the inhibition rules."""

    def is_source(self, alarm: Alarm) -> bool:
        """Whether this alarm coming or going can change what is suppressed."""

    def reason(self, alarm: Alarm, alarms: Collection[Alarm]) -> str | None:
        """Why ``alarm`` is suppressed while these alarms are as they are, if it is."""


class Conditions(Protocol):
    """What the rules need of the alarm manager: define alarms, and say whether each one's
    condition holds."""

    def define(self, defn: AlarmDef) -> None: ...

    def holds(self, alarm_id: str) -> bool:
        """Whether the alarm's condition held when last said (a deadband keeps it)."""

    def set_condition(self, alarm_id: str, condition: bool, value: Any = None,
                      now: float | None = None, message: str | None = None) -> None: ...


def escape(text: str) -> str:
    """What a user typed, safe for one log line (control characters shown escaped)."""
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
