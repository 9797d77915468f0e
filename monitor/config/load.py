"""Load a site config: parse, validate fields, let drivers check theirs, cross-check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.base import driver_class, known_sources, known_types, source_class
from monitor.config.directory import NOT_A_HASH
from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.errors import Path as ErrorPath
from monitor.config.model import MIN_TOKEN_LENGTH, TRAPS, SiteConfig
from monitor.config.notify import Match
from monitor.config.power import MAINS
from monitor.config.types import SecretRef
from monitor.config.yamlsource import Source, parse_yaml
from monitor.core.credentials import HASH
from monitor.devices.base import classes, device_class
from monitor.devices.ups.status import UPS

MOVED: dict[tuple[str, ...], str] = {("power", "allowed_commands"): "actions.allowed_commands"}
"""Keys that moved, by where they were: an old file is told where each went."""


def _message(err: Any, path: tuple[str | int, ...]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        moved = MOVED.get(tuple(p for p in path if isinstance(p, str)))
        return f"this key moved to {moved}" if moved else "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _clean_loc(loc: tuple[Any, ...], tags: frozenset[str]) -> tuple[str | int, ...]:
    """Drop the kind tag pydantic puts after a list index (``rules.0.threshold.high``)."""
    return tuple(part for i, part in enumerate(loc)
                 if not (i and isinstance(loc[i - 1], int) and part in tags))


_RULE_KINDS = frozenset({"threshold", "state", "rate", "stale"})


def validation_issues(src: Source, err: ValidationError, prefix: tuple[str | int, ...] = (),
                      tags: frozenset[str] = _RULE_KINDS) -> list[ConfigIssue]:
    """Field errors with file and line; ``tags``: the kinds of a tagged union, left out of
    the paths."""
    issues = []
    for e in err.errors():
        path = (*prefix, *_clean_loc(e["loc"], tags))
        message = _message(e, path)
        if e["type"] == "union_tag_invalid":
            ctx = e.get("ctx", {})
            path = (*path, ctx.get("discriminator", "kind").strip("'"))
            message = f"unknown {path[-1]} {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
        issues.append(src.issue(path, message))
    return issues


def _push_device(src: Source, cfg: SiteConfig, i: int) -> list[ConfigIssue]:
    """A device no driver polls: one a listener of its type hears, checked by that listener."""
    dev = cfg.devices[i]
    source = source_class(dev.type)
    if source is None or source.device_model is None:
        return [src.issue(("devices", i, "type"), f"unknown driver type {dev.type!r} "
                                                  f"(known: {', '.join(known_types())})")]
    try:
        dev._spec = source.device_model.model_validate({"connection": dev.connection,
                                                        "points": dev.points})
    except ValidationError as err:
        return validation_issues(src, err, ("devices", i))
    if not any(x.type == dev.type for x in cfg.listening()):
        return [src.issue(("devices", i, "type"), f"no listener of type {dev.type!r} hears it "
                                                  f"(add one under listeners)")]
    return []


def _validate_listeners(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Each listener's type is registered and its settings are what that type takes."""
    issues = _unique(src, cfg.listeners, "name", "listeners")
    if cfg.traps is not None:
        issues += [src.issue(("listeners", i, "name"), f"{TRAPS!r} is the traps section's name")
                   for i, x in enumerate(cfg.listeners) if x.name == TRAPS]
    for i, listener in enumerate(cfg.listeners):
        cls = source_class(listener.type)
        if cls is None:
            issues.append(src.issue(("listeners", i, "type"),
                                    f"unknown listener type {listener.type!r} "
                                    f"(known: {', '.join(known_sources())})"))
            continue
        try:
            listener._spec = cls.spec_model.model_validate(listener.settings)
        except ValidationError as err:
            issues.extend(validation_issues(src, err, ("listeners", i, "settings")))
        if cfg.traps is not None and listener.type == TRAPS:
            issues.append(src.issue(("listeners", i, "type"),
                                    "the traps section is this listener already: keep one"))
    return issues


def _validate_drivers(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    by_type: dict[str, list[int]] = {}
    for i, dev in enumerate(cfg.devices):
        cls = driver_class(dev.type)
        if cls is not None:  # the driver's defaults where the device sets none (frozen model)
            for key, default in (("interval", cls.default_interval),
                                 ("timeout", cls.default_timeout)):
                if key not in dev.model_fields_set:
                    object.__setattr__(dev, key, default)
        if cls is None:
            issues += _push_device(src, cfg, i)
            continue
        data: dict[str, Any] = {"connection": dev.connection, "points": dev.points}
        if dev.profile is not None:
            data["profile"] = dev.profile
        try:
            spec: BaseModel = cls.spec_model.model_validate(data)
        except ValidationError as err:
            issues.extend(validation_issues(src, err, ("devices", i), cls.spec_tags))
            continue
        dev._spec = spec
        by_type.setdefault(dev.type, []).append(i)
    for type_name, indexes in by_type.items():
        cls = driver_class(type_name)
        assert cls is not None
        devs = [cfg.devices[i] for i in indexes]
        for local, (path, msg) in cls.check_site(devs):
            issues.append(src.issue(("devices", indexes[local], *path), msg))
    return issues


def _unique(src: Source, items: list[Any], field: str, *section: str) -> list[ConfigIssue]:
    issues, seen = [], set()
    for i, item in enumerate(items):
        value = getattr(item, field)
        if value in seen:
            issues.append(src.issue((*section, i, field), f"duplicate {field} {value!r}"))
        seen.add(value)
    return issues


def _cross_check(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    issues = _unique(src, cfg.areas, "name", "areas")
    issues += _unique(src, cfg.devices, "name", "devices")
    issues += _unique(src, cfg.rules, "name", "rules")
    areas = {a.name for a in cfg.areas}
    points: set[str] = set()
    for i, dev in enumerate(cfg.devices):
        cls = driver_class(dev.type)
        if cls is not None and cls.discovers and not dev.points:
            points.update(f"{dev.name}.{key}"  # keys a rule may name before they are found
                          for key in device_class(dev.device_class).rule_keys())
        if cls is not None and dev.spec is not None:  # what a profile adds, too
            points.update(f"{dev.name}.{key}" for key in cls(dev).point_keys())
        elif cls is None and dev.spec is not None:  # a device that pushes
            points.update(f"{dev.name}.{p.key}" for p in getattr(dev.spec, "points", []))
        if cls is not None and dev.timeout >= dev.interval:  # one that pushes has no timeout
            issues.append(src.issue(("devices", i, "timeout"),
                                    f"timeout ({dev.timeout:g} s) must be shorter than the "
                                    f"interval ({dev.interval:g} s)"))
        if dev.area not in areas:
            issues.append(src.issue(("devices", i, "area"), f"no area named {dev.area!r}"))
        keys: set[str] = set()
        for j, p in enumerate(dev.points):
            key = p.get("key") if isinstance(p, dict) else None
            if key in keys:
                issues.append(src.issue(("devices", i, "points", j, "key"),
                                        f"duplicate point key {key!r} in device {dev.name!r}"))
            keys.add(str(key))
            points.add(f"{dev.name}.{key}")
            where = p.get("area") if isinstance(p, dict) else None
            if where is not None and where not in areas:
                issues.append(src.issue(("devices", i, "points", j, "area"),
                                        f"no area named {where!r}"))
    for i, rule in enumerate(cfg.rules):
        if rule.point not in points:
            hint = "" if "." in rule.point else " (write it as DEVICE.KEY)"
            issues.append(src.issue(("rules", i, "point"), f"no point {rule.point!r}{hint}"))
    return issues


def _power_issues(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Feeds and shutdowns name real UPSes, devices and areas; commands are allow-listed."""
    issues = []
    of_class = {d.name: d.device_class for d in cfg.devices}
    areas = {a.name for a in cfg.areas}

    def ups(path: tuple[str | int, ...], name: str) -> None:
        if of_class.get(name) != UPS:
            issues.append(src.issue(path, f"no UPS named {name!r} (a device of class ups)"))
    for i, feed in enumerate(cfg.power.feeds):
        if feed.ups != MAINS:
            ups(("power", "feeds", i, "ups"), feed.ups)
        for j, dev in enumerate(feed.devices):
            if dev not in of_class:
                issues.append(src.issue(("power", "feeds", i, "devices", j),
                                        f"no device {dev!r}"))
        for j, area in enumerate(feed.areas):
            if area not in areas:
                issues.append(src.issue(("power", "feeds", i, "areas", j), f"no area {area!r}"))
    for i, action in enumerate(cfg.power.shutdown):
        ups(("power", "shutdown", i, "ups"), action.ups)
        if action.command and action.command[0] not in cfg.actions.allowed_commands:
            issues.append(src.issue(("power", "shutdown", i, "command"),
                                    f"{action.command[0]} is not in actions.allowed_commands"))
    return issues


def _directory_issues(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Unique names; people hold roles that exist; groups name people and roles that exist."""
    issues = _unique(src, cfg.roles, "name", "roles") + _unique(src, cfg.people, "name", "people")
    issues += _unique(src, cfg.groups, "name", "groups")
    roles = {r.name for r in cfg.roles}
    people = {p.name for p in cfg.people}
    for i, person in enumerate(cfg.people):
        for j, role in enumerate(person.roles):
            if role not in roles:
                issues.append(src.issue(("people", i, "roles", j), f"no role {role!r}"))
    for i, group in enumerate(cfg.groups):
        for j, member in enumerate(group.members):
            if member not in people:
                issues.append(src.issue(("groups", i, "members", j), f"no person {member!r}"))
        for j, role in enumerate(group.roles):
            if role not in roles:
                issues.append(src.issue(("groups", i, "roles", j), f"no role {role!r}"))
    for i, schedule in enumerate(cfg.schedules):
        if schedule.role not in roles:
            issues.append(src.issue(("schedules", i, "role"), f"no role {schedule.role!r}"))
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("layers", j, "people", k), name) for j, layer in enumerate(schedule.layers)
            for k, name in enumerate(layer.people)]
        named += [(("overrides", j, "person"), o.person)
                  for j, o in enumerate(schedule.overrides)]
        for where, name in named:
            if name not in people:
                issues.append(src.issue(("schedules", i, *where), f"no person {name!r}"))
    return issues


def _notify_issues(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Policies are unique; routes name policies; targets name roles, people, groups."""
    issues = _unique(src, cfg.notify.policies, "name", "notify", "policies")
    policies = {p.name for p in cfg.notify.policies}
    known = {"role": {r.name for r in cfg.roles}, "person": {p.name for p in cfg.people},
             "group": {g.name for g in cfg.groups}}
    for i, route in enumerate(cfg.notify.routes):
        if route.policy not in policies:
            issues.append(src.issue(("notify", "routes", i, "policy"),
                                    f"no policy {route.policy!r}"))
        issues += _match_issues(src, cfg, route.match, ("notify", "routes", i, "match"))
    for i, rule in enumerate(cfg.inhibit):
        for side in ("source", "target"):
            issues += _match_issues(src, cfg, getattr(rule, side), ("inhibit", i, side))
    for i, policy in enumerate(cfg.notify.policies):
        for j, level in enumerate(policy.levels):
            for k, target in enumerate(level.notify):
                for kind, names in known.items():
                    name = getattr(target, kind)
                    if name is not None and name not in names:
                        issues.append(src.issue(("notify", "policies", i, "levels", j, "notify",
                                                 k, kind), f"no {kind} {name!r}"))
    return issues


def _match_issues(src: Source, cfg: SiteConfig, match: Match,
                  where: tuple[str | int, ...]) -> list[ConfigIssue]:
    """A matcher names areas, device classes and feeds that exist (else it never matches)."""
    known = {"area": {a.name for a in cfg.areas}, "device_class": set(classes()),
             "feed": {MAINS} | {d.name for d in cfg.devices if d.device_class == UPS}}
    return [src.issue((*where, key, j), f"no {key.replace('_', ' ')} {value!r}")
            for key, names in known.items()
            for j, value in enumerate(getattr(match, key)) if value not in names]


def schedule_warnings(path: str | Path, cfg: SiteConfig, now: datetime) -> list[ConfigIssue]:
    """Gaps in the next four weeks (who is paged then), and where China's holiday calendar
    is not known yet."""
    from monitor.notify.oncall import calendar_known, gaps

    p = Path(path)
    src = parse_yaml(p.read_text(encoding="utf-8"), str(p))
    issues = []
    for i, schedule in enumerate(cfg.schedules):
        for start, end in gaps(schedule, now):
            issues.append(src.issue(("schedules", i), (
                f"nobody on call {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: then "
                f"everyone holding role {schedule.role!r} is paged")))
    horizon = (now + timedelta(days=28)).date()
    if cfg.schedules and not calendar_known(horizon):
        issues.append(src.issue(("schedules",), (
            f"China's holidays for {horizon.year} are not in this chinese-calendar yet: "
            f"Monday to Friday are taken as workdays (update the package)")))
    return issues


def _contact_issues(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Every contact URL is one apprise can send to (told by its scheme, never the URL)."""
    from monitor.notify.channels import usable

    issues = []
    for i, person in enumerate(cfg.people):
        for j, contact in enumerate(person.contacts):
            try:
                url = contact.resolved()
            except ValueError:
                continue  # reported with the secrets
            problem = usable(url)
            if problem is not None:
                issues.append(src.issue(("people", i, "contacts", j, "url"), problem))
    return issues


def _secret_refs(value: Any, path: tuple[str | int, ...]
                 ) -> Iterator[tuple[tuple[str | int, ...], SecretRef]]:
    """Every secret reference in a validated config (driver specs included), with its path."""
    if isinstance(value, SecretRef):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_refs(getattr(value, name), (*path, name))
        spec = getattr(value, "spec", None)
        if isinstance(spec, BaseModel):
            yield from _secret_refs(spec, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _secret_refs(item, (*path, i))


def _secret_issues(src: Source, cfg: SiteConfig) -> list[ConfigIssue]:
    """Every secret reference must resolve; the message names the reference, never the value."""
    issues = []
    for path, ref in _secret_refs(cfg, ()):
        try:
            value = ref.resolve().get_secret_value()
        except ValueError as err:
            issues.append(src.issue(path, str(err)))
            continue
        if path[0] == "people" and path[-1] == "credential" and not HASH.match(value.strip()):
            issues.append(src.issue(path, NOT_A_HASH))
        if path == ("api", "token") and len(value.strip()) < MIN_TOKEN_LENGTH:
            issues.append(src.issue(path, f"the API token has {len(value.strip())} characters; "
                                          f"it needs at least {MIN_TOKEN_LENGTH}"))
    return issues


@dataclass
class _Pruned(Source):
    """The source with items taken out: issues name the places in the file as written."""

    kept: dict[str, list[int]] = field(default_factory=dict)

    def issue(self, path: ErrorPath, message: str) -> ConfigIssue:
        if len(path) > 1 and isinstance(path[0], str) and isinstance(path[1], int) \
                and path[0] in self.kept:
            path = (path[0], self.kept[path[0]][path[1]], *path[2:])
        return super().issue(path, message)


def _prune(data: dict[str, Any], err: ValidationError,
           kept: dict[str, list[int]]) -> set[str]:
    """Take out of ``data`` what the field validation refused, so the later stages can still
    judge the rest: the list items (a device, a rule, ...) holding an error, or else the
    optional top-level section. ``kept`` gets the original index of every item left in a
    list; returns the names of the items taken out."""
    names: set[str] = set()
    drop: dict[str, set[int]] = {}
    for e in err.errors():
        loc = e["loc"]
        if not loc or not isinstance(loc[0], str) or loc[0] not in data:
            continue
        section = loc[0]
        if len(loc) > 1 and isinstance(loc[1], int) and isinstance(data[section], list):
            drop.setdefault(section, set()).add(loc[1])
        elif section not in REQUIRED:
            del data[section]
    for section, indexes in drop.items():
        items = data[section]
        names.update(str(items[i]["name"]) for i in indexes
                     if isinstance(items[i], dict) and "name" in items[i])
        kept[section] = [i for i in range(len(items)) if i not in indexes]
        data[section] = [items[i] for i in kept[section]]
    return names


REQUIRED = {"site", "areas"}


def _pruned_device_issues(src: Source, data: dict[str, Any],
                          kept: dict[str, list[int]]) -> list[ConfigIssue]:
    """A device left out for a field error still has its points judged by its driver, so
    every error of the entry shows in the same run."""
    devices = data.get("devices")
    if not isinstance(devices, list) or "devices" not in kept:
        return []
    issues = []
    for i, dev in enumerate(devices):
        if i in kept["devices"] or not isinstance(dev, dict):
            continue
        cls = driver_class(str(dev.get("type")))
        if cls is None:
            continue
        spec = {k: dev[k] for k in ("connection", "points", "profile") if k in dev}
        spec.setdefault("connection", {})
        try:
            cls.spec_model.model_validate(spec)
        except ValidationError as err:
            issues.extend(validation_issues(src, err, ("devices", i), cls.spec_tags))
    return issues


def _later_stages(src: Source, data: Any, check_secrets: bool,
                  pruned: set[str]) -> tuple[SiteConfig | None, list[ConfigIssue]]:
    """Drivers, cross references, power and secrets on what passed the field validation;
    issues that only name an item taken out before are not repeated."""
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError:
        return None, []
    issues = (_validate_listeners(src, cfg) + _validate_drivers(src, cfg)
              + _cross_check(src, cfg) + _power_issues(src, cfg)
              + _directory_issues(src, cfg) + _notify_issues(src, cfg))
    if check_secrets:
        issues += _secret_issues(src, cfg) + _contact_issues(src, cfg)
    return cfg, [i for i in issues if not any(f"'{name}'" in i.message or f"'{name}." in
                                              i.message for name in pruned)]


def load_config_text(text: str, file: str = "<config>", *,
                     check_secrets: bool = True) -> SiteConfig:
    """Validate ``text`` fully; raise ConfigError listing every problem found, in one run."""
    src = parse_yaml(text, file)
    if not isinstance(src.data, dict):
        raise ConfigError([src.issue((), "the top level must be a mapping of keys")])
    try:
        SiteConfig.model_validate(src.data)
    except ValidationError as err:
        issues = validation_issues(src, err)
        pruned_data = dict(src.data)
        kept: dict[str, list[int]] = {}
        pruned = _prune(pruned_data, err, kept)
        issues += _pruned_device_issues(src, src.data, kept)
        _, later = _later_stages(_Pruned(src.file, src.data, src.lines, kept), pruned_data,
                                 check_secrets, pruned)
        raise ConfigError(issues + later) from None
    cfg, issues = _later_stages(src, src.data, check_secrets, set())
    if issues:
        raise ConfigError(issues)
    assert cfg is not None
    return cfg


def secret_warnings(path: str | Path, cfg: SiteConfig) -> list[ConfigIssue]:
    """The secret references of ``cfg`` (loaded from ``path``) that do not resolve here."""
    p = Path(path)
    return _secret_issues(parse_yaml(p.read_text(encoding="utf-8"), str(p)), cfg)


def load_config(path: str | Path, *, check_secrets: bool = True) -> SiteConfig:
    """Read and validate the config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(str(p), 1, (), f"cannot read the file: {err}")]) from err
    return load_config_text(text, str(p), check_secrets=check_secrets)
