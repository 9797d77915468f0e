"""The directory: roles in the emergency organisation, the people who hold them, and groups.
Contacts are apprise URLs, given by reference (they carry tokens and passwords)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from monitor.config.types import SecretRef, Strict
from monitor.core.credentials import HASH

NOT_A_HASH = "give the hash `vigil passwd` prints, never the password itself"

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]

INBOX = "inbox://"
"""The local inbox: messages kept by Vigil itself, shown on the console's overview (the demo's)."""


class Role(Strict):
    """A position in the emergency organisation, e.g. general manager, IT, 内勤."""

    name: Name
    label: str = ""


class Contact(Strict):
    channel: Literal["wecom", "dingtalk", "feishu", "sms", "email", "webhook", "mqtt", "inbox",
                     "other"]
    url: SecretRef | str = Field(description="an apprise URL by reference, e.g. {env: "
                                             "ZHANG_SAN_MAIL}; only inbox://NAME is written out")
    label: str = ""
    fallback: bool = Field(default=False, description="used only when every other channel "
                                                      "of the person failed")

    @field_validator("url")
    @classmethod
    def _by_reference(cls, value: SecretRef | str) -> SecretRef | str:
        if isinstance(value, str) and not value.startswith(INBOX):
            raise ValueError("give contact URLs by reference, {env: NAME} or {file: PATH}: "
                             "they carry tokens and passwords (only inbox://NAME is written out)")
        return value

    def resolved(self) -> str:
        return self.url if isinstance(self.url, str) else self.url.resolve().get_secret_value()


class Person(Strict):
    name: Name
    label: str = Field(default="", description="how colleagues call the person, e.g. 张三")
    language: Literal["zh-CN", "en"] = "zh-CN"
    roles: list[str] = Field(default_factory=list)
    access: Literal["viewer", "operator", "admin"] = Field(
        default="operator", description="in the console and the API: a viewer looks; an "
                                        "operator also acts on alarms, silences and incidents; "
                                        "an admin does everything")
    contacts: list[Contact] = Field(default_factory=list)
    credential: SecretRef | str | None = Field(
        default=None, description="the hash `vigil passwd` prints, for the console, the API "
                                  "and the acknowledgement page; or a reference to it")

    @field_validator("credential")
    @classmethod
    def _hashed(cls, value: SecretRef | str | None) -> SecretRef | str | None:
        if isinstance(value, str) and not HASH.match(value):
            raise ValueError(NOT_A_HASH)
        return value

    def password_hash(self) -> str | None:
        """The credential's hash (None when the person has none or it does not resolve)."""
        if self.credential is None or isinstance(self.credential, str):
            return self.credential
        try:
            value = self.credential.resolve().get_secret_value().strip()
        except ValueError:
            return None
        return value if HASH.match(value) else None


class Group(Strict):
    """People, and whoever holds the listed roles (all staff, the emergency group, ...)."""

    name: Name
    label: str = ""
    members: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
