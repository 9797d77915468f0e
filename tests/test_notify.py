"""The directory and delivery over real receivers: an SMTP server, HTTP receivers, a channel
that hangs, and contact URLs apprise cannot use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import ConfigError, load_config_text
from monitor.notify import channels, robots
from monitor.notify.templates import render
from tests import peers
from tests.servers.http_receiver import Receiver
from tests.servers.smtp_receiver import SmtpReceiver
from tests.util import eventually

DIRECTORY = """\
site: {name: hq, label: 总部}
areas: [{name: machine_room}]
roles:
  - {name: it, label: IT}
  - {name: gm, label: 总经理}
people:
  - name: zhang_san
    label: 张三
    roles: [it]
    contacts:
      - {channel: email, url: {env: VIGIL_TEST_MAIL}}
      - {channel: webhook, url: {env: VIGIL_TEST_HOOK}}
  - name: li_si
    label: Li Si
    language: en
    roles: [gm, cfo]
    contacts: [{channel: wecom, url: {env: VIGIL_TEST_BAD_URL}}]
groups:
  - {name: emergency, label: 应急小组, members: [zhang_san, wang_wu], roles: [it]}
"""


def test_unknown_roles_people_and_unusable_urls_are_config_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_MAIL", "mailto://127.0.0.1:10025?from=v@example.com&to=a@b.c")
    monkeypatch.setenv("VIGIL_TEST_HOOK", "json://127.0.0.1:18090/notify")
    monkeypatch.setenv("VIGIL_TEST_BAD_URL", "wecombot://s3cret-key-not-shown@@")
    with pytest.raises(ConfigError) as info:
        load_config_text(DIRECTORY, "site.yaml")
    assert str(info.value).splitlines() == [
        "site.yaml:16: people[1].roles[1]: no role 'cfo'",
        "site.yaml:17: people[1].contacts[0].url: not a wecombot:// robot URL (wecombot://KEY)",
        "site.yaml:19: groups[0].members[1]: no person 'wang_wu'"]
    assert "s3cret" not in str(info.value)


@pytest.fixture
def receivers() -> Iterator[tuple[SmtpReceiver, Receiver]]:
    smtp, hook = SmtpReceiver().start(), Receiver().start()
    yield smtp, hook
    smtp.stop()
    hook.stop()


def notify_test(tmp_path: Path, env: dict[str, str], *args: str
                ) -> subprocess.CompletedProcess[str]:
    data: dict[str, Any] = yaml.safe_load(DIRECTORY)
    data["people"] = data["people"][:1]
    data["groups"][0]["members"] = ["zhang_san"]
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "monitor.cli", "notify", "test", "zhang_san",
                           "-c", str(cfg), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VIGIL_API_TOKEN": "t" * 16, **env})


def test_notify_test_reaches_every_channel(tmp_path: Path, receivers: Any) -> None:
    smtp, hook = receivers
    out = notify_test(tmp_path, {"VIGIL_TEST_MAIL": smtp.url("ops@example.com"),
                                 "VIGIL_TEST_HOOK": f"json://127.0.0.1:{hook.port}/notify"})
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "张三 (zhang_san): 2 channel(s)"
    assert lines[1].startswith("  ok   email (mailto): sent in ")
    assert lines[2].startswith("  ok   webhook (json): sent in ")
    assert lines[-1] == "2 of 2 channels reached 张三"
    assert smtp.text(0).startswith("Vigil 测试消息 (总部)\n这是发给 张三 的 email 渠道测试")
    payload = json.loads(hook.requests[0].body)
    assert payload["title"] == "Vigil 测试消息 (总部)" and "张三 的 webhook 渠道测试" in \
        payload["message"]


def test_a_form_target_gets_title_and_message_as_form_fields(tmp_path: Path,
                                                            receivers: Any) -> None:
    from urllib.parse import parse_qs

    smtp, hook = receivers
    out = notify_test(tmp_path, {"VIGIL_TEST_MAIL": smtp.url("ops@example.com"),
                                 "VIGIL_TEST_HOOK": f"form://127.0.0.1:{hook.port}/sms"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[2].startswith("  ok   webhook (form): sent in ")
    request = hook.requests[0]
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(request.body.decode())
    assert fields["title"] == ["Vigil 测试消息 (总部)"]
    assert "张三 的 webhook 渠道测试" in fields["message"][0]


def test_a_hung_or_failing_channel_is_reported_and_the_others_still_go(
        tmp_path: Path, receivers: Any) -> None:
    smtp, hook = receivers
    hook.mode = "500"
    hung = socket.socket()                 # takes the connection, never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    hung_port = hung.getsockname()[1]
    try:
        out = notify_test(tmp_path, {"VIGIL_TEST_MAIL": smtp.url("ops@example.com"),
                                     "VIGIL_TEST_HOOK": f"json://127.0.0.1:{hung_port}/x"},
                          "--timeout", "1")
    finally:
        hung.close()
    assert out.returncode == 1
    assert "  FAIL webhook (json): no answer within 1 s" in out.stdout, out.stdout
    assert out.stdout.splitlines()[-1] == "1 of 2 channels reached 张三"
    assert len(smtp.messages) == 1
    out = notify_test(tmp_path, {"VIGIL_TEST_MAIL": smtp.url("ops@example.com"),
                                 "VIGIL_TEST_HOOK": f"json://127.0.0.1:{hook.port}/x"})
    assert out.returncode == 1
    failed = next(x for x in out.stdout.splitlines() if x.startswith("  FAIL webhook"))
    assert "500" in failed, out.stdout


# -- chat robots: our own senders, since a 200 with an error code is not a delivery ---------

DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


def test_signing_vectors() -> None:
    assert robots.dingtalk_sign(DING_SECRET, 1700000000000) == \
        "8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw="
    assert robots.feishu_sign("demo-secret", 1700000000) == \
        "mYHw2R2SOm8Rw/sne3lQdmz4sOfntKR+1P/8RKKTwmA="
    url, _ = robots.request(robots.parse(f"dingtalk://{DING_SECRET}@tok"),  # type: ignore[arg-type]
                            "t", "b", 1700000000.0)
    assert url.endswith("&timestamp=1700000000000&sign=8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZi"
                        "iFw%3D")  # encoded once, not %253D


@pytest.fixture
def robot() -> Iterator[Receiver]:
    receiver = Receiver(mode="json").start()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("url, path, reply, expect", [
    ("wecombot://6f1c-key", "/cgi-bin/webhook/send?key=6f1c-key",
     b'{"errcode":0,"errmsg":"ok"}', (True, "sent")),
    ("wecombot://6f1c-key", "/cgi-bin/webhook/send?key=6f1c-key",
     b'{"errcode":45009,"errmsg":"api freq out of limit"}',
     (False, "the robot refused it: errcode 45009: api freq out of limit")),
    (f"dingtalk://{DING_SECRET}@tok", "/robot/send?access_token=tok&timestamp=",
     b'{"errcode":310000,"errmsg":"sign not match"}',
     (False, "the robot refused it: errcode 310000: sign not match")),
    ("dingtalk://tok", "/robot/send?access_token=tok",
     b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}',
     (False, "the robot refused it: errcode 130101: send too fast, exceed 20 times per minute")),
    ("feishu://demo-secret@hook1", "/open-apis/bot/v2/hook/hook1",
     b'{"code":0,"msg":"success","data":{}}', (True, "sent")),
    ("feishu://hook1", "/open-apis/bot/v2/hook/hook1",
     b'{"code":19024,"msg":"Key Words Not Found"}',
     (False, "the robot refused it: code 19024: Key Words Not Found")),
])
async def test_a_robot_counts_only_when_its_errcode_says_so(
        robot: Receiver, url: str, path: str, reply: bytes, expect: tuple[bool, str]) -> None:
    robot.reply = reply
    sep = "&" if "?" in url else "?"
    sent = await channels.send(f"{url}{sep}base={robot.url}", "机房温度过高", "机房温度 32 °C",
                               within=5)
    assert (sent.ok, sent.detail) == expect
    assert robot.requests[0].path.startswith(path)
    payload = json.loads(robot.requests[0].body)
    if url.startswith("feishu"):
        assert payload["msg_type"] == "text"
        assert payload["content"]["text"] == "机房温度过高\n机房温度 32 °C"
        if "@" in url:   # signed: timestamp and sign at the top level of the body
            assert payload["sign"] == robots.feishu_sign("demo-secret", int(payload["timestamp"]))
    else:
        assert payload == {"msgtype": "text", "text": {"content": "机房温度过高\n机房温度 32 °C"}}


async def test_wecom_text_is_cut_to_2048_bytes_on_a_character(robot: Receiver) -> None:
    sent = await channels.send(f"wecombot://k?base={robot.url}", "标题", "温" * 1000, within=5)
    content = json.loads(robot.requests[0].body)["text"]["content"]
    assert sent.ok and len(content.encode()) <= 2048 and content.endswith("温…")


@pytest.mark.parametrize("scheme", ["wecombot", "dingtalk", "feishu"])
async def test_a_long_page_keeps_its_first_line_and_link_on_every_robot(
        robot: Receiver, scheme: str) -> None:
    """The advice is what a robot's length limit cuts, with a mark; the first line and the
    acknowledgement link always arrive."""
    advice = "检查精密空调的压缩机、风机和回风温度设定, 通知空调维保单位到场; " * 200
    title, body = render("alarm", "zh-CN", "long", severity="紧急", message="机房温度过高",
                         site="总部", area="机房", device="精密空调", raised="10:00:00",
                         since="5 分钟", advice=advice, link="http://vigil.example/ack/AbC.dEf")
    url = f"{scheme}://{'tok' if scheme == 'wecombot' else 'SECx@tok'}?base={robot.url}"
    if scheme == "feishu":
        robot.reply = b'{"code":0,"msg":"success","data":{}}'
    assert (await channels.send(url, title, body, within=5)).ok
    data = json.loads(robot.requests[-1].body)
    content = data["text"]["content"] if scheme != "feishu" else data["content"]["text"]
    lines = content.splitlines()
    assert len(content.encode()) <= robots.MAX_BYTES[scheme] < len(advice.encode())
    assert lines[0] == "【紧急】机房温度过高"
    assert "点此确认: http://vigil.example/ack/AbC.dEf" in lines
    cut = next(x for x in lines if x.startswith("处置: "))
    assert cut.endswith("…") and len(cut) < len(advice)


def test_robot_urls_are_checked() -> None:
    assert channels.usable("dingtalk://SECx@tok") is None
    assert channels.usable("wecombot://secret@key") == \
        "not a wecombot:// robot URL (wecombot://KEY)"
    assert channels.usable("feishu://") is not None
    assert channels.usable("json://") == \
        "apprise cannot send to this json:// URL (check its form and options)"


def test_contact_urls_are_given_by_reference_except_the_inbox() -> None:
    text = DIRECTORY.replace("{env: VIGIL_TEST_MAIL}", '"mailto://u:secret@mail.example.com"')
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "site.yaml")
    assert "site.yaml:11: people[0].contacts[0].url: give contact URLs by reference" in \
        str(info.value)
    assert "secret@" not in str(info.value)


# -- message texts ---------------------------------------------------------------------------


def test_alarm_texts_in_each_language_and_form() -> None:
    facts = {"severity": "紧急", "message": "机房温度过高 (33.5 °C, 限值 32)", "site": "总部",
             "area": "机房", "device": "机房温湿度", "raised": "2026-11-29 10:00:00",
             "since": "1 小时 30 分", "link": "https://vigil.example/ack/abc",
             "advice": "检查精密空调"}
    title, body = render("alarm", "zh-CN", "long", **facts)
    assert title == "【紧急】机房温度过高 (33.5 °C, 限值 32)"
    assert body.splitlines() == ["站点: 总部 / 机房", "设备: 机房温湿度",
                                 "告警: 机房温度过高 (33.5 °C, 限值 32)", "级别: 紧急",
                                 "开始: 2026-11-29 10:00:00 (1 小时 30 分前)",
                                 "处置: 检查精密空调",
                                 "点此确认: https://vigil.example/ack/abc"]
    title, body = render("alarm", "zh-CN", "short", **{**facts, "message": "温" * 100})
    assert len(title) == 70 and title.endswith("…") and body == "https://vigil.example/ack/abc"
    title, _ = render("alarm", "zh-CN", "short", **facts)
    assert title == "【紧急】机房温度过高 (33.5 °C, 限值 32)。检查精密空调"
    title, body = render("alarm", "en", "long", **{**facts, "severity": "CRITICAL",
                                                    "since": "1 h 30 min"})
    assert title == "[CRITICAL] 机房温度过高 (33.5 °C, 限值 32)"
    assert "Since: 2026-11-29 10:00:00 (1 h 30 min ago)" in body


def test_spoken_durations() -> None:
    from monitor.words.text import spoken_duration

    assert [spoken_duration(s) for s in (45, 120, 5400, 90000)] == [
        "45 秒", "2 分钟", "1 小时 30 分", "1 天 1 小时"]
    assert [spoken_duration(s, "en") for s in (45, 120, 5400)] == ["45 s", "2 min",
                                                                   "1 h 30 min"]


# -- MQTT: our own sender, on a real mosquitto -------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[peers.Peer]:
    peer = peers.mosquitto(tmp_path).start()
    yield peer
    peer.stop()


def subscribe(topic: str) -> tuple[Any, list[dict[str, Any]]]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[dict[str, Any]] = []
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.append(json.loads(msg.payload))
    client.on_subscribe = lambda *_: ready.set()
    client.connect("127.0.0.1", peers.MQTT_PORT)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert ready.wait(5)
    return client, got


async def test_a_page_is_published_to_mqtt_as_json(broker: peers.Peer) -> None:
    client, got = subscribe("vigil/pages/#")
    try:
        url = f"mqtt://127.0.0.1:{peers.MQTT_PORT}/vigil/pages/zhang_san"
        for n in range(20):
            sent = await channels.send(url, f"【紧急】机房温度 过高 {n}", "处置: 检查精密空调", 5)
            assert sent.ok and sent.detail == "published to vigil/pages/zhang_san"
        await eventually(lambda: len(got) == 20, 5)
        assert got[0]["title"] == "【紧急】机房温度 过高 0"
        assert got[0]["body"] == "处置: 检查精密空调"
        assert not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-vigil")]
    finally:
        client.disconnect()
        client.loop_stop()


async def test_a_broker_that_refuses_or_is_down_is_a_failure_with_its_reason(
        tmp_path: Path) -> None:
    port = peers.free_port()
    strict = peers.mosquitto(tmp_path, port, anonymous=False).start()
    try:
        refused = await channels.send(f"mqtt://127.0.0.1:{port}/vigil/x", "t", "b", 5)
    finally:
        strict.stop()
    assert not refused.ok and refused.detail == \
        "the broker refused the connection: Not authorized"
    down = await channels.send(f"mqtt://127.0.0.1:{port}/vigil/x", "t", "b", 5)
    assert not down.ok and down.detail.startswith(f"cannot reach the broker 127.0.0.1:{port}")
    assert channels.usable("mqtt://127.0.0.1/vigil/#") is not None   # no wildcards to publish
    assert channels.usable("mqtt://user:pw@127.0.0.1:1883/vigil/pages?qos=1") is None


async def test_a_broker_that_takes_the_connection_and_never_answers_times_out() -> None:
    hung = socket.socket()                 # accepts, never sends a CONNACK
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        sent = await channels.send(f"mqtt://127.0.0.1:{hung.getsockname()[1]}/vigil/x", "t", "b",
                                   1.0)
    finally:
        hung.close()
    assert (sent.ok, sent.detail) == (False, "no answer within 1 s") and sent.duration < 3


async def test_an_action_publishes_to_mqtt(broker: peers.Peer) -> None:
    """A playbook or power action that publishes to a topic (e.g. the building's gateway)."""
    from monitor.config.actions import Action
    from monitor.core.actions import ActionRunner
    from monitor.core.bus import Bus
    from monitor.core.supervisor import Supervisor

    client, got = subscribe("building/doors/#")
    try:
        runner = ActionRunner(Bus(), Supervisor(lambda name, reason: None), lambda: [])
        action = Action.model_validate({"name": "unlock_exits", "timeout": 5, "mqtt": {
            "url": f"mqtt://127.0.0.1:{peers.MQTT_PORT}/building/doors/exits",
            "payload": {"command": "unlock", "why": "火警疏散"}}})
        result = await runner.run(action, subject="incident:x", kind="PLAYBOOK_ACTION",
                                  why="疏散")
        assert result.ok and result.detail == "published to building/doors/exits"
        await eventually(lambda: got == [{"command": "unlock", "why": "火警疏散"}], 5)
        down = Action.model_validate({"name": "x", "timeout": 2, "mqtt": {
            "url": f"mqtt://127.0.0.1:{peers.free_port()}/t"}})
        failed = await runner.run(down, subject="x", kind="K", why="y")
        assert not failed.ok and "cannot reach the broker" in failed.detail
    finally:
        client.disconnect()
        client.loop_stop()
    with pytest.raises(ValueError, match="exactly one of command, http or mqtt"):
        Action.model_validate({"name": "x", "command": ["/bin/true"], "mqtt": {
            "url": "mqtt://h/t"}})
