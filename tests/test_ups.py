"""The UPS model: status flags and the events their changes make (pure logic)."""

from __future__ import annotations

import pytest

from monitor.devices.ups.status import parse_status, status_events


@pytest.mark.parametrize(("before", "now", "events"), [
    (None, "OL CHRG", []),
    (None, "OB DISCHRG", ["ONBATT"]),
    ("OL", "OB DISCHRG", ["ONBATT"]),
    ("OB DISCHRG", "OB DISCHRG LB", ["LOWBATT"]),
    ("OB LB", "OL CHRG LB", ["ONLINE"]),
    ("OL", "OL RB", ["REPLBATT"]),
    ("OL", "OL BYPASS OVER", ["BYPASS", "OVERLOAD"]),
    ("OB LB", "OB LB FSD", ["FSD"]),
    ("OL", "OL OB", ["ONBATT"]),
    ("OL OB", "OL", ["ONLINE"]),
    ("OB", "OFF", []),
])
def test_status_changes_make_nut_events(before: str | None, now: str, events: list[str]) -> None:
    prev = parse_status(before) if before is not None else None
    assert status_events(prev, parse_status(now)) == events


def test_contradictions_and_unknown_flags_are_reported() -> None:
    status = parse_status("OL OB WAT")
    assert status.on_battery
    assert status.problems == ("ups.status reports OL and OB at once; taken as on battery (OB)",
                               "ups.status has unknown flags: WAT")
    assert parse_status("OL CHRG").problems == ()
