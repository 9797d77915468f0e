"""The operator console in a real browser (Chromium through Playwright), against `vigil run`
and a Modbus fire panel: signing in, a fire's banner after the register change,
acknowledging on a phone, confirming and approving an incident's items, its timeline, a
viewer who gets no buttons, HTML shown as text, a storm of 500 alarms, a dropped stream.
Screenshots of each page at 1440x900 and 390x844 are saved (the directory is printed)."""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from monitor.core.credentials import hash_password
from monitor.words.console import CONSOLE
from tests import peers
from tests.conftest import modbus_device
from tests.fixtures import PEER_TEMP as TEMP
from tests.fixtures import Running, signed_in, start, write_config

PASSWORD = "console-passw0rd"
SHOTS = Path("/tmp/console-shots")
WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
EVIL = '<img src=x onerror="window.pwned=1">办公区<b>温湿度</b>'
PLAYBOOK = """\
name: console_drill
label: 控制台预案
roles: [gm, it]
triggers: [{manual: true}]
steps:
  - {id: items, kind: checklist, alias: 处置清单, timeout: 1h, on_timeout: end,
     items: [{id: told, text: 已报告值班经理, role: it}]}
  - {id: go_on, kind: approval, alias: 总经理审批, role: gm, text: 批准继续, timeout: 1h,
     on_timeout: end}
  - {id: over, kind: resolve}
"""
COUNT_TONES = """
window.tones = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.tones++;
  return start.apply(this, args);
};
"""


@pytest.fixture(scope="module")
def modbus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A Modbus server of our own (a free port): the fire panel and the sensors."""
    port = peers.free_port()
    peer, state = peers.modbus_peer(tmp_path_factory.mktemp("modbus"), port)
    peer.start()
    yield port, state
    peer.stop()


@pytest.fixture
def screens(tmp_path: Path) -> Callable[[Page, str], None]:
    """Save the page at both sizes (tmp_path/screens, copied to /tmp/console-shots)."""
    folder = tmp_path / "screens"
    folder.mkdir()
    SHOTS.mkdir(exist_ok=True)
    print(f"screenshots: {folder} (and {SHOTS})")

    def shoot(page: Page, name: str) -> None:
        size = page.viewport_size
        for view in (WIDE, PHONE):
            page.set_viewport_size(view)
            page.wait_for_timeout(300)
            path = folder / f"{name}-{view['width']}.png"
            page.screenshot(path=str(path), full_page=True)
            shutil.copy(path, SHOTS / path.name)
        if size:
            page.set_viewport_size(size)
    return shoot


def site(tmp_path: Path, port: int, state: Path, storm: int = 0) -> Path:
    peers.set_modbus_state(state, hr={40: 215, 41: 450}, di={0: False})
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "console_drill.yaml").write_text(PLAYBOOK, encoding="utf-8")
    secret = hash_password(PASSWORD)
    fire = modbus_device("fire", port, [{"key": "zone1.alarm", "table": "discrete_input",
                                         "address": 0, "label": "1 号防区 火警"}],
                         cls="fire_panel", interval=0.5, timeout=0.4)
    office = modbus_device("office_env", port, [
        {"key": "humidity", "table": "holding", "address": 41, "data_type": "int16",
         "scale": 0.1, "unit": "%RH", "label": "办公区湿度"}], area="office", label=EVIL,
        interval=1.0, timeout=0.5)
    rules = [{"name": "fire_zone1", "point": "fire.zone1.alarm", "kind": "state",
              "equals": [True], "severity": "critical", "message": "机房火警"},
             {"name": "mr_hot", "point": "mr_env.temperature", "kind": "threshold",
              "high": 27, "high_high": 32, "message": "机房温度"},
             *({"name": f"hot_{i}", "point": "mr_env.temperature", "kind": "threshold",
                "high": 40, "severity": "major"} for i in range(storm))]
    return write_config(
        tmp_path, [modbus_device("mr_env", port, [TEMP], interval=0.5, timeout=0.4), fire,
                   office], rules=rules, playbooks=str(books),
        areas=[{"name": "machine_room", "label": "机房", "purpose": "machine_room"},
               {"name": "office", "purpose": "office"}],
        roles=[{"name": "gm", "label": "总经理"}, {"name": "it", "label": "IT"}],
        people=[{"name": "zhang_san", "label": "张三", "roles": ["it"], "credential": secret},
                {"name": "qian_zong", "label": "钱总", "roles": ["gm"], "credential": secret},
                {"name": "guest", "label": "Guest", "access": "viewer", "language": "en",
                 "credential": secret}])


@pytest.fixture
def daemons() -> Iterator[Callable[[Path], Running]]:
    """Start `vigil run` on a config (``start``); each still running at the end is stopped."""
    started: list[Running] = []

    def run(cfg: Path) -> Running:
        started.append(start(cfg))
        return started[-1]
    yield run
    for running in started:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(10)


@pytest.fixture
def daemon(tmp_path: Path, modbus: tuple[int, Path],
           daemons: Callable[[Path], Running]) -> Running:
    return daemons(site(tmp_path, *modbus))


def sign_in(browser: Browser, daemon: Running, name: str = "zhang_san",
            viewport: dict[str, int] = WIDE, zone: str | None = None) -> Page:
    """Signed in (in the browser's time zone ``zone``), counting the tones it plays."""
    return signed_in(browser, daemon.url, name, PASSWORD, viewport, zone, COUNT_TONES)


def fire(modbus: tuple[int, Path], on: bool = True) -> None:
    peers.set_modbus_state(modbus[1], di={0: on})


def test_console_words_have_both_languages() -> None:
    js = "\n".join(p.read_text(encoding="utf-8") for p in
                   (Path(__file__).parent.parent / "monitor/web/static/js").glob("*.js"))
    used = set(re.findall(r'\bt\("([a-z_]+)"', js))
    dynamic = {f"{stem}{end}" for stem, ends in (
        ("access_", ("viewer", "operator", "admin")),
        ("alarm_", ("ack", "note", "shelve", "unshelve")),
        ("situation_", ("other", "shelved"))) for end in ends}
    assert len(used) > 60
    for key in used | dynamic:
        zh, en = CONSOLE[key]
        assert zh and en, key


def test_signing_in_and_a_fire_fills_the_banner(
        browser: Browser, daemon: Running, modbus: tuple[int, Path],
        screens: Callable[[Page, str], None]) -> None:
    page = sign_in(browser, daemon)
    expect(page.locator("#me")).to_have_text("张三 · 值班员")
    expect(page.locator("#banner")).to_contain_text("一切正常")
    expect(page.locator(".tile", has_text="机房")).to_contain_text("21.5 °C")
    weight = first_page_weight(page, daemon)
    print(f"first page: {weight} bytes")
    assert weight < 200_000
    fire(modbus)                         # how fast: bench/console.py (about 1 s at 1 s polls)
    expect(page.locator("#banner.urgent .head")).to_contain_text("火警", timeout=10_000)
    expect(page.locator("#banner")).to_contain_text("机房火警")
    expect(page.locator("#banner")).to_contain_text("未确认 1 条")
    page.wait_for_function("document.title.startsWith('【火警】')")   # the tab flashes
    assert page.evaluate("window.tones") > 0                         # and it sounded
    screens(page, "overview")
    page.get_by_role("button", name=re.compile("静音一班")).click()  # muted for a shift
    expect(page.locator("#mute")).to_contain_text("已静音至")
    page.reload()
    expect(page.locator("#mute")).to_contain_text("已静音至")


def first_page_weight(page: Page, daemon: Running) -> int:
    """Bytes of everything the overview loads at 390 px with nothing cached (the page, styles,
    scripts, its data), the live stream aside."""
    sizes: list[int] = []
    context = page.context.browser.new_context(  # type: ignore[union-attr]
        storage_state=page.context.storage_state(), viewport=PHONE)   # nothing cached
    fresh = context.new_page()
    fresh.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"]))
    fresh.goto(daemon.url + "/")
    expect(fresh.locator(".tile").first).to_be_visible()
    fresh.wait_for_timeout(500)
    context.close()
    assert len(sizes) > 15
    return sum(sizes)


def test_acknowledging_noting_and_shelving_from_a_phone(
        browser: Browser, daemon: Running, modbus: tuple[int, Path],
        screens: Callable[[Page, str], None]) -> None:
    fire(modbus)
    page = sign_in(browser, daemon, viewport=PHONE)
    page.goto(daemon.url + "/#/alarms")
    card = page.locator(".alarm", has_text="机房火警")
    expect(card).to_contain_text("未确认")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390   # no sideways scroll
    button = card.get_by_role("button", name="确认", exact=True)
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    screens(page, "alarms")
    button.click()
    expect(card).to_contain_text("已确认")
    expect(page.locator("#banner")).to_contain_text("未确认 0 条")
    card.get_by_role("button", name="备注").click()
    page.locator("#ask textarea").fill("<script>window.pwned=1</script>已到现场")
    page.locator("#ask").get_by_role("button", name="备注").click()
    card.get_by_role("button", name="搁置").click()
    page.locator("#ask textarea").fill("消防维保测试")
    page.locator("#ask select").select_option(label="2 小时")
    page.locator("#ask").get_by_role("button", name="搁置").click()
    expect(card).to_contain_text("已搁置")
    expect(page.locator("#banner")).to_contain_text("已搁置 1 条")
    expect(page.locator("#banner .head")).to_contain_text("1 条告警已搁置, 仍在报警")
    expect(page.locator("#banner")).not_to_contain_text("一切正常")  # the fire still stands
    card.get_by_role("link", name="机房火警").click()
    journal = page.locator("table")
    expect(journal).to_contain_text("消防维保测试")
    expect(journal).to_contain_text("<script>window.pwned=1</script>已到现场")
    assert page.evaluate("window.pwned") is None
    screens(page, "alarm")
    acked = {a["id"]: a for a in daemon.get("/api/v1/alarms").json()}["fire_zone1"]
    assert (acked["acked_by"], acked["shelved_by"], acked["shelve_note"]) == (
        "张三", "张三", "消防维保测试")
    assert 7100 < acked["shelved_until"] - time.time() <= 7200
    page.get_by_role("button", name="取消搁置").click()
    expect(page.locator(".facts")).not_to_contain_text("搁置人")


def test_confirming_an_item_approving_and_reading_the_timeline(
        browser: Browser, daemon: Running, screens: Callable[[Page, str], None]) -> None:
    incident = daemon.post("/api/v1/incidents", {"playbook": "console_drill",
                                                 "who": "王五"}).json()["id"]
    page = sign_in(browser, daemon)
    page.get_by_role("link", name="应急事件").click()
    page.get_by_role("link", name="控制台预案").click()
    item = page.locator(".todo .card", has_text="已报告值班经理")
    item.get_by_role("button", name="确认完成").click()
    expect(item).to_have_count(0)
    approval = page.locator(".todo .card", has_text="批准继续")
    expect(approval).to_contain_text("等待总经理审批")        # 张三 does not hold the role
    expect(approval.get_by_role("button")).to_have_count(0)
    timeline = page.locator("table")
    expect(timeline.locator("tr", has_text="已确认")).to_contain_text("张三")
    expect(page.locator(".strip")).to_contain_text("启动")
    page.locator(".note-form textarea").fill("已联系物业")
    page.get_by_role("button", name="添加备注").click()
    expect(timeline.locator("tr", has_text="已联系物业")).to_contain_text("张三")
    screens(page, "incident")
    page.goto(daemon.url + "/#/incidents")
    screens(page, "incidents")
    gm = sign_in(browser, daemon, "qian_zong")
    gm.goto(f"{daemon.url}/#/incident/{incident}")
    gm.locator(".todo .card", has_text="批准继续").get_by_role("button", name="批准",
                                                                exact=True).click()
    expect(gm.locator("table tr", has_text="钱总")).to_contain_text("批准")
    expect(gm.locator(".strip")).to_contain_text("批准")
    with gm.expect_popup() as review:
        gm.get_by_role("link", name="在新标签页中打开").click()
    expect(review.value.locator("body")).to_contain_text("控制台预案")   # the cookie went too
    got = daemon.get(f"/api/v1/incidents/{incident}").json()
    assert got["checked"]["told"][0] == "张三" and got["decisions"]["go_on"][:2] == ["钱总", True]


def test_times_are_said_on_the_sites_clock_whatever_the_browsers_zone(
        browser: Browser, daemon: Running) -> None:
    incident = daemon.post("/api/v1/incidents", {"playbook": "console_drill",
                                                 "who": "王五"}).json()["id"]
    started = daemon.get(f"/api/v1/incidents/{incident}").json()["started"]
    site_clock = datetime.fromtimestamp(started, ZoneInfo("Asia/Shanghai")).strftime("%H:%M:%S")
    for zone, marked in (("Asia/Shanghai", False), ("Europe/London", True)):
        page = sign_in(browser, daemon, zone=zone)
        page.goto(f"{daemon.url}/#/incident/{incident}")
        first = page.locator("table tr", has_text="启动").locator("td").first
        expect(first).to_contain_text(site_clock)        # as the export and the messages say
        assert ("GMT+8" in first.inner_text()) is marked, first.inner_text()
        page.context.close()


def test_a_viewer_reads_in_english_gets_no_buttons_and_the_api_refuses(
        browser: Browser, daemon: Running, modbus: tuple[int, Path]) -> None:
    daemon.post("/api/v1/incidents", {"playbook": "console_drill", "who": "王五"})
    fire(modbus)
    page = sign_in(browser, daemon, "guest")
    expect(page.locator("#me")).to_have_text("Guest · viewer")
    expect(page.locator("#banner .head")).to_contain_text("FIRE")
    page.get_by_role("link", name="Alarms").click()
    card = page.locator(".alarm", has_text="机房火警")
    expect(card).to_contain_text("critical")
    expect(card.get_by_role("button")).to_have_count(0)
    page.get_by_role("link", name="Incidents").click()
    page.get_by_role("link", name="控制台预案").click()
    expect(page.locator(".todo")).to_contain_text("已报告值班经理")
    expect(page.locator("#view button")).to_have_count(0)
    refused = page.evaluate("""async () => {
        const {csrf} = await (await fetch("/api/v1/session")).json();
        const r = await fetch("/api/v1/alarms/fire_zone1/acknowledge", {method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: "{}"});
        return r.status; }""")
    assert refused == 403
    assert not {a["id"]: a for a in daemon.get("/api/v1/alarms").json()}["fire_zone1"]["acked"]


def test_html_in_a_device_label_is_shown_as_text(
        browser: Browser, daemon: Running, screens: Callable[[Page, str], None]) -> None:
    page = sign_in(browser, daemon)
    page.get_by_role("link", name="设备").click()
    device = page.locator(".device", has_text="办公区湿度")
    expect(device.locator("header strong")).to_have_text(EVIL)
    expect(device).to_contain_text("在线")
    expect(page.locator("#view img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
    expect(page.locator(".device", has_text="机房温度")).to_contain_text("21.5 °C")
    screens(page, "devices")
    page.get_by_role("link", name=re.compile("机房温度")).click()
    expect(page.locator(".limits")).to_contain_text("偏高 27 °C")
    expect(page.locator(".limits")).to_contain_text("过高 32 °C")
    expect(page.locator(".chart canvas")).to_be_visible()
    screens(page, "point")


def test_500_alarms_at_once_keep_the_page_usable_and_the_banner_counts_them(
        browser: Browser, tmp_path: Path, modbus: tuple[int, Path],
        daemons: Callable[[Path], Running], screens: Callable[[Page, str], None]) -> None:
    running = daemons(site(tmp_path, *modbus, storm=500))
    page = sign_in(browser, running, viewport=PHONE)
    page.goto(running.url + "/#/alarms")
    peers.set_modbus_state(modbus[1], hr={40: 450})          # 45 °C: 500 rules and mr_hot's two
    banner = page.locator("#banner")
    expect(banner).to_contain_text("活动告警 502 条", timeout=10_000)
    expect(banner.locator(".head")).to_contain_text("机房超温")
    expect(page.locator(".alarm")).to_have_count(100)        # a page of them, then more
    expect(page.get_by_role("button", name="显示更多 (还有 402 条)")).to_be_visible()
    first = page.locator(".alarm").first
    expect(first).to_contain_text("机房温度过高")               # the worst first
    first.get_by_role("button", name="确认", exact=True).click()
    expect(banner).to_contain_text("未确认 501 条")
    screens(page, "storm")


def test_a_dropped_stream_shows_offline_and_recovers(
        browser: Browser, tmp_path: Path, modbus: tuple[int, Path],
        daemons: Callable[[Path], Running]) -> None:
    cfg = site(tmp_path, *modbus)
    first = daemons(cfg)
    page = sign_in(browser, first)
    offline = page.locator("#offline")
    expect(offline).to_be_hidden()
    first.proc.kill()                                            # the daemon dies
    first.proc.wait()
    expect(offline).to_have_text("离线", timeout=5000)
    again = daemons(cfg)                                         # the session outlives it
    expect(offline).to_be_hidden(timeout=10_000)
    fire(modbus)
    expect(page.locator("#banner.urgent")).to_be_visible(timeout=3000)   # live again
    assert httpx.get(again.url + "/health").json()["status"] == "ok"


def test_the_page_asks_for_every_module_at_once() -> None:
    """On a slow link the chain of imports would cost a round trip per level."""
    page = (Path(__file__).parent.parent / "monitor" / "web" / "index.html").read_text()
    js = Path(__file__).parent.parent / "monitor" / "web" / "static" / "js"
    preloaded = set(re.findall(r'rel="modulepreload" href="/web/js/([a-z_]+\.js)"', page))
    assert preloaded == {p.name for p in js.glob("*.js")} - {"main.js"}


def test_values_change_live_on_the_page(browser: Browser, daemon: Running,
                                        modbus: tuple[int, Path]) -> None:
    """A new reading reaches the tile over the stream, without fetching the points again."""
    page = sign_in(browser, daemon)
    tile = page.locator(".tile", has_text="机房")
    expect(tile).to_contain_text("21.5 °C")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/v1/points" in r.url else None)
    peers.set_modbus_state(modbus[1], hr={40: 255, 41: 450}, di={0: False})
    try:
        expect(tile).to_contain_text("25.5 °C", timeout=3000)
        assert fetched == []                    # it came on the stream
    finally:
        peers.set_modbus_state(modbus[1], hr={40: 215, 41: 450}, di={0: False})
