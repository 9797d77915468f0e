"""Message texts (zh-CN by default, English per person)."""

from __future__ import annotations

from monitor.config.directory import Contact, Person
from monitor.config.model import SiteConfig


def test_message(site: SiteConfig, person: Person, contact: Contact) -> tuple[str, str]:
    """Title and body of ``vigil notify test``: says who, which channel, which site."""
    where = site.site.label or site.site.name
    who = person.label or person.name
    if person.language == "en":
        return (f"Vigil test message ({where})",
                f"A test of the {contact.channel} channel for {who}. Receiving it means Vigil "
                f"can reach you here; nothing needs to be done.")
    return (f"Vigil 测试消息 ({where})",
            f"这是发给 {who} 的 {contact.channel} 渠道测试。收到即说明 Vigil 能通过此渠道找到您, "
            f"无需处理。")
