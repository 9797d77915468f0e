"""Our own MQTT sender: a page published to a topic, for a display board, a gateway or home
automation. apprise's MQTT plugin keeps a connection and a network thread for every message
it sends (and never closes them) and drops the title, so ``mqtt://`` and ``mqtts://`` URLs
are handled here:

``mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC[?qos=1&retain=no]``

The payload is JSON, UTF-8: ``{"title": ..., "body": ..., "ts": ...}``. A delivery counts
when the broker has accepted the message (PUBACK at QoS 1, the default).
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

SCHEMES = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    topic: str
    tls: bool
    user: str | None = None
    password: str | None = None
    qos: int = 1
    retain: bool = False


def parse(url: str) -> Broker | None:
    """The broker and topic a URL names, or None when it is not an MQTT URL we can use."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or "#" in url:  # no wildcards
        return None
    topic = unquote(parts.path.lstrip("/"))
    query = parse_qs(parts.query)
    qos, retain = query.get("qos", ["1"])[0], query.get("retain", ["no"])[0]
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        return None
    if not topic or "#" in topic or "+" in topic or qos not in ("0", "1", "2") \
            or retain not in ("yes", "no"):
        return None
    return Broker(parts.hostname, port, topic, parts.scheme == "mqtts",
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None, int(qos),
                  retain == "yes")


def publish(broker: Broker, title: str, body: str, within: float) -> tuple[bool, str]:
    """A page: its title and body as JSON (blocking)."""
    return send(broker, {"title": title, "body": body, "ts": time.time()}, within)


def send(broker: Broker, message: dict[str, Any], within: float) -> tuple[bool, str]:
    """Connect, publish ``message`` as JSON, wait for the broker's acknowledgement,
    disconnect (blocking)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"vigil-{secrets.token_hex(4)}",
                         protocol=paho.MQTTv311)
    if broker.user:
        client.username_pw_set(broker.user, broker.password)
    if broker.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    answered = threading.Event()
    refused: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        if code.is_failure:
            refused.append(str(code))
        answered.set()
    client.on_connect = on_connect
    end = time.monotonic() + within
    try:
        client.connect(broker.host, broker.port, keepalive=max(5, int(within) * 2))
    except OSError as err:
        return False, f"cannot reach the broker {broker.host}:{broker.port}: " \
                      f"{err.strerror or err}"
    client.loop_start()
    try:
        if not answered.wait(max(0.0, end - time.monotonic())):
            return False, "the broker did not answer the connection"
        if refused:
            return False, f"the broker refused the connection: {refused[0]}"
        payload = json.dumps(message, ensure_ascii=False).encode()
        info = client.publish(broker.topic, payload, qos=broker.qos, retain=broker.retain)
        info.wait_for_publish(max(0.0, end - time.monotonic()))
        if not info.is_published():
            return False, "the broker did not acknowledge the message"
        return True, f"published to {broker.topic}"
    except (RuntimeError, ValueError) as err:  # paho: connection lost, or a bad message
        return False, f"not published: {err}"
    finally:
        client.disconnect()
        client.loop_stop()
