"""The words of the device classes beside the common ones: a class's label, its events, its
points' labels and units, its true/false points' meanings, its values in words, and its
situations, for the API and the messages."""

from __future__ import annotations

from typing import Any

from monitor.devices.base import COMMON_SITUATIONS, classes, device_class
from monitor.words.labels import AT_REST, EVENT, Language, Pair, boolean_meaning, label
from monitor.words.text import display as plain_display


def _i(language: Language) -> int:
    return 1 if language == "en" else 0


def class_label(name: str, language: Language = "zh-CN") -> str:
    cls = classes().get(name)
    return cls.label[_i(language)] if cls else name


def events() -> dict[str, Pair]:
    """Every event kind's words: the common ones and each class's."""
    found = dict(EVENT)
    for cls in classes().values():
        found.update(cls.events)
    return found


def event_label(kind: str, language: Language = "zh-CN") -> str:
    return label(events(), kind, language)


def point_words(cls: str, key: str, language: Language = "zh-CN") -> tuple[str, str]:
    """(label, unit) of a point the configuration leaves without them; ``("", "")`` where
    its class knows none."""
    known = device_class(cls).points.get(key)
    return (known.label[_i(language)], known.unit) if known else ("", "")


def meaning(cls: str, key: str) -> str:
    """What a true/false point of a device of class ``cls`` means."""
    return boolean_meaning(key, device_class(cls).booleans)


def at_rest(cls: str, key: str) -> bool:
    """The value a true/false point has when nothing is wrong."""
    return AT_REST.get(meaning(cls, key), False)


def display(cls: str, key: str, value: Any, unit: str, language: Language = "zh-CN") -> str:
    """A value as a person reads it: in its class's words where it has some, else plainly."""
    said = device_class(cls).display(key, value, language) if value is not None else None
    return said if said is not None else plain_display(value, unit, language, meaning(cls, key))


def tables(language: Language) -> dict[str, Any]:
    """The classes' words for the console: class labels, every event kind, and the
    situations (worst first)."""
    i = _i(language)
    found = {name: cls for name, cls in classes().items()}
    said = {**COMMON_SITUATIONS,
            **{kind: s for cls in found.values() for kind, s in cls.situations.items()}}
    return {"device_class": {name: cls.label[i] for name, cls in found.items()},
            "event": {kind: pair[i] for kind, pair in events().items()},
            "situations": [{"kind": kind, "text": s.words[i], "urgent": s.urgent}
                           for kind, s in sorted(said.items(), key=lambda x: x[1].rank)]}
