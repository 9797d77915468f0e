"""JSON Schema of the site config for editors, with each driver's connection and points."""

from __future__ import annotations

from typing import Any

from drivers.base import REGISTRY, SOURCES, known_sources, known_types
from monitor.config.model import SiteConfig
from monitor.devices.base import classes


def config_schema() -> dict[str, Any]:
    schema = SiteConfig.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    device = defs["DeviceConfig"]
    device["properties"]["type"]["enum"] = known_types()
    device["properties"]["class"]["enum"] = sorted(classes())
    branches = []
    for name in known_types():  # polled types, and the push-only ones a listener checks
        model = REGISTRY[name].spec_model if name in REGISTRY else SOURCES[name].device_model
        assert model is not None
        spec = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(spec.pop("$defs", {}))
        branches.append({"if": {"properties": {"type": {"const": name}}},
                         "then": {"properties": spec["properties"]}})
    device["allOf"] = branches
    listener = defs["ListenerConfig"]
    listener["properties"]["type"]["enum"] = known_sources()
    listener["allOf"] = []
    for name in known_sources():
        spec = SOURCES[name].spec_model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(spec.pop("$defs", {}))
        listener["allOf"].append({"if": {"properties": {"type": {"const": name}}},
                                  "then": {"properties": {"settings": spec}}})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Vigil site configuration"
    return schema
