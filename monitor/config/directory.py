"""The directory: roles in the emergency organisation, the people who hold them, and groups.
Contacts are apprise URLs, given by reference (they carry tokens and passwords)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from monitor.config.types import SecretRef, Strict

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]

CHANNELS = ("wecom", "dingtalk", "feishu", "sms", "email", "webhook", "mqtt", "other")


class Role(Strict):
    """A position in the emergency organisation, e.g. general manager, IT, 内勤."""

    name: Name
    label: str = ""


class Contact(Strict):
    channel: Literal["wecom", "dingtalk", "feishu", "sms", "email", "webhook", "mqtt", "other"]
    url: SecretRef = Field(description="an apprise URL, e.g. {env: ZHANG_SAN_MAIL}")
    label: str = ""


class Person(Strict):
    name: Name
    label: str = Field(default="", description="how colleagues call the person, e.g. 张三")
    language: Literal["zh-CN", "en"] = "zh-CN"
    roles: list[str] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)


class Group(Strict):
    """People, and whoever holds the listed roles (all staff, the emergency group, ...)."""

    name: Name
    label: str = ""
    members: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
