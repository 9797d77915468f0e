"""The directory and delivery over real receivers: an SMTP server, HTTP receivers, a channel
that hangs, and contact URLs apprise cannot use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import ConfigError, load_config_text
from tests.servers.http_receiver import Receiver
from tests.servers.smtp_receiver import SmtpReceiver

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
        "site.yaml:17: people[1].contacts[0].url: apprise cannot send to this wecombot:// URL "
        "(check its form and options)",
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
