"""`vigil demo`: a newcomer sees live values within 10 s and can push the site into alarm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests import peers


def test_demo_shows_values_and_scenarios_raise_alarms(tmp_path: Path) -> None:
    api, modbus = peers.free_port(), peers.free_port()
    started = time.monotonic()
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "demo", "--port", str(api),
                             "--modbus-port", str(modbus), "--data-dir", str(tmp_path / "d"),
                             "--scenario", "fire"], stdout=subprocess.PIPE,
                            stderr=log, text=True,
                            env={k: v for k, v in os.environ.items() if k != "VIGIL_API_TOKEN"})
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("Vigil demo running. Console, signed in as the operator")
        link = first.split(": ")[-1].strip()
        token = second.removeprefix("API token (for curl and the CLI): ").strip()
        auth = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{api}"
        with httpx.Client(base_url=url) as browser:       # the link signs the operator in
            assert browser.get(link).status_code == 303
            assert browser.get("/api/v1/session").json()["label"] == "张三"
            assert browser.get(link).status_code == 403           # once
        points: list[dict[str, object]] = []
        while time.monotonic() - started < 10:
            points = httpx.get(f"{url}/api/v1/points", headers=auth).json()
            if points and all(p["quality"] == "good" for p in points):
                break
            time.sleep(0.2)
        assert points and all(p["quality"] == "good" for p in points), points
        by_id = {p["id"]: p["value"] for p in points}
        assert 15 < by_id["mr_env.temperature"] < 30            # type: ignore[operator]
        assert by_id["ups1.input.voltage"] > 200                 # type: ignore[operator]
        assert by_id["fire_panel.zone2.alarm"] is True
        page = httpx.get(url + "/").text               # the console, which holds no data
        assert "/web/js/main.js" in page
        assert httpx.get(url + "/web/js/main.js").status_code == 200

        def active() -> set[str]:
            return {a["id"] for a in httpx.get(f"{url}/api/v1/alarms", headers=auth).json()
                    if a["active"]}
        assert "fire_zone2" in active()
        end = time.monotonic() + 5                # the IT on call hears of it in the inbox
        sent: list[dict[str, object]] = []
        while not sent and time.monotonic() < end:
            sent = httpx.get(f"{url}/api/v1/notifications?alarm=fire_zone2",
                             headers=auth).json()
            time.sleep(0.2)
        assert [(n["person"], n["channel"], n["ok"]) for n in sent] == [
            ("zhang_san", "inbox", True)]
        assert str(sent[0]["text"]).startswith("【紧急】机房烟感火警")
        resp = httpx.post(f"{url}/api/v1/demo/scenario", json={"name": "power_loss"},
                          headers=auth)
        assert resp.status_code == 200
        end = time.monotonic() + 5
        while "power:ups1" not in active() and time.monotonic() < end:
            time.sleep(0.2)
        assert {"power:ups1"} <= active()
        ups_status = next(p["value"] for p in httpx.get(f"{url}/api/v1/points",
                                                        headers=auth).json()
                          if p["id"] == "ups1.ups.status")
        assert ups_status == "OB"
        end = time.monotonic() + 5                # the power-loss procedure starts too
        power: list[dict[str, object]] = []
        while not power and time.monotonic() < end:
            power = [i for i in httpx.get(f"{url}/api/v1/incidents", headers=auth).json()
                     if i["label"] == "停电应急预案"]
            time.sleep(0.2)
        assert [i["status"] for i in power] == ["running"]
        end, told = time.monotonic() + 5, []
        while ("wang_wu", "inbox", True) not in told and time.monotonic() < end:
            told = [(n["person"], n["channel"], n["ok"]) for n in httpx.get(
                f"{url}/api/v1/notifications?alarm={power[0]['id']}", headers=auth).json()]
            time.sleep(0.2)
        assert ("wang_wu", "inbox", True) in told       # the office administrator is told
        httpx.post(f"{url}/api/v1/demo/scenario", json={"name": "system_outage"},
                   headers=auth).raise_for_status()
        end, outage = time.monotonic() + 12, []     # the business system's page fails
        while not outage and time.monotonic() < end:
            outage = [i for i in httpx.get(f"{url}/api/v1/incidents", headers=auth).json()
                      if i["label"] == "系统中断应急预案"]
            time.sleep(0.2)
        assert [(i["status"], i["links"]) for i in outage] == [("running", [power[0]["id"]])]
        assert httpx.post(f"{url}/api/v1/demo/scenario", json={"name": "meteor"},
                          headers=auth).status_code == 422
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()
    assert proc.returncode == 0
    said = (tmp_path / "demo.log").read_text()  # Vigil's news, not its libraries' chatter
    assert "vigil started" in said and "notifying level 1" in said
    assert not [line for line in said.splitlines() if " INFO httpx" in line or " INFO httpcore"
                in line or " INFO apprise" in line], said[-2000:]


def test_demo_rejects_unknown_scenario() -> None:
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "demo", "--scenario", "meteor"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown scenario 'meteor'" in out.stderr
