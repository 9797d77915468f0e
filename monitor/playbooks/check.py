"""Reading playbooks, and their static inspection (``vigil playbook check``): fields, steps
and roles that exist, steps that can be reached, waits with an ``on_timeout``, no cycles.
Every problem names its file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.load import validation_issues
from monitor.config.yamlsource import Source, parse_yaml
from monitor.playbooks.model import (
    END,
    STEP_KINDS,
    ActionStep,
    ApprovalStep,
    BranchStep,
    ChecklistStep,
    Condition,
    DeadlineStep,
    EscalateStep,
    NotifyStep,
    Playbook,
    ResolveStep,
    RollCallStep,
    Waits,
    WaitStep,
)


def load_playbook_text(text: str, file: str, roles: set[str] | None = None) -> Playbook:
    """A valid playbook, or ConfigError with every problem; ``roles``: the site's."""
    src = parse_yaml(text, file)
    if not isinstance(src.data, dict):
        raise ConfigError([src.issue((), "a playbook is a mapping of keys")])
    try:
        pb = Playbook.model_validate(src.data)
    except ValidationError as err:
        raise ConfigError(validation_issues(src, err, tags=STEP_KINDS)) from None
    issues = inspect(pb, src, roles)
    if issues:
        raise ConfigError(issues)
    return pb


def load_playbook(path: str | Path, roles: set[str] | None = None) -> Playbook:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(str(p), 1, (), f"cannot read the file: {err}")]) from err
    return load_playbook_text(text, str(p), roles)


def load_playbooks(directory: str | Path, roles: set[str] | None = None) -> dict[str, Playbook]:
    """Every ``*.yaml`` in ``directory``; ConfigError with the problems of all of them."""
    return {name: pb for name, (pb, _) in _read_all(Path(directory), roles).items()}


def playbook_texts(directory: str | Path, roles: set[str] | None = None) -> dict[str, str]:
    """Name -> YAML text of every valid playbook in ``directory`` (the runtime keeps the
    text as the version an incident runs on); ConfigError when any is not valid."""
    return {name: text for name, (_, text) in _read_all(Path(directory), roles).items()}


def _read_all(directory: Path, roles: set[str] | None) -> dict[str, tuple[Playbook, str]]:
    if not directory.is_dir():
        raise ConfigError([ConfigIssue(str(directory), 1, (), "no such directory of "
                                                              "playbooks")])
    found: dict[str, tuple[Playbook, str]] = {}
    paths: dict[str, Path] = {}
    issues: list[ConfigIssue] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
            pb = load_playbook_text(text, str(path), roles)
        except (OSError, UnicodeDecodeError) as err:
            issues.append(ConfigIssue(str(path), 1, (), f"cannot read the file: {err}"))
            continue
        except ConfigError as err:
            issues += err.issues
            continue
        if pb.name in found:
            issues.append(ConfigIssue(str(path), 1, ("name",),
                                      f"another playbook is named {pb.name!r}"))
        found[pb.name] = (pb, text)
        paths[pb.name] = path
    for name, (pb, text) in found.items():
        for j, cause in enumerate(pb.caused_by):
            if cause not in found:
                issues.append(parse_yaml(text, str(paths[name])).issue(
                    ("caused_by", j), f"no playbook named {cause!r} in {directory}"))
    if issues:
        raise ConfigError(issues)
    return found


def _targets(step: object) -> Iterator[tuple[str, str]]:
    """(key, step id) of every step a step may go to, besides the one after it."""
    for key in ("next", "then", "else_", "on_timeout", "on_reject", "on_failure"):
        value = getattr(step, key, None)
        if isinstance(value, str):
            yield key.rstrip("_"), value


def edges(pb: Playbook) -> dict[str, list[str]]:
    """Step -> the steps the path may take from it."""
    out: dict[str, list[str]] = {}
    for step in pb.steps:
        nxt = [target for key, target in _targets(step) if key != "next"]
        if not isinstance(step, BranchStep):
            nxt.append(pb.after(step.id))
        out[step.id] = [t for t in dict.fromkeys(nxt) if t != END]
    return out


def _conditions(cond: Condition | None) -> Iterator[Condition]:
    if cond is None:
        return
    yield cond
    for inner in (cond.any or []) + (cond.all or []):
        yield from _conditions(inner)


def inspect(pb: Playbook, src: Source, site_roles: set[str] | None = None) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    ids = [s.id for s in pb.steps]
    index = {step_id: i for i, step_id in enumerate(ids)}
    for i, step_id in enumerate(ids):
        if step_id == END or ids.index(step_id) != i:
            issues.append(src.issue(("steps", i, "id"), f"step id {step_id!r} is "
                                    + ("reserved" if step_id == END else "used twice")))
    if site_roles is not None:
        for j, role in enumerate(pb.roles):
            if role not in site_roles:
                issues.append(src.issue(("roles", j), f"no role {role!r} in the site config"))
    items = {item.id for s in pb.steps if isinstance(s, ChecklistStep) for item in s.items}
    for i, step in enumerate(pb.steps):
        at = ("steps", i)
        for key, target in _targets(step):
            if target != END and target not in index:
                issues.append(src.issue((*at, key), f"no step {target!r}"))
        for where, role in _roles(step):
            if role not in pb.roles:
                issues.append(src.issue((*at, *where), f"role {role!r} is not in the "
                                                      f"playbook's roles"))
        for cond in _step_conditions(step):
            for c in _conditions(cond):
                if c.checked is not None and c.checked not in items:
                    issues.append(src.issue(at, f"no checklist item {c.checked!r}"))
        if isinstance(step, Waits) and _waits(step) \
                and (step.timeout is None or step.on_timeout is None):
            issues.append(src.issue(at, f"step {step.id!r} waits without a timeout and "
                                        f"on_timeout: give both, so the plan goes on"))
    if issues:
        return issues
    return _reach_issues(pb, src, index)


def _waits(step: Waits) -> bool:
    """Whether the step waits for people or the site (a plain ``for`` wait always ends)."""
    if isinstance(step, ChecklistStep):
        return step.blocking
    return not (isinstance(step, WaitStep) and step.for_ is not None)


def _roles(step: object) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(step, NotifyStep | EscalateStep | RollCallStep):
        for j, role in enumerate(step.roles):
            yield ("roles", j), role
    elif isinstance(step, ChecklistStep):
        for j, item in enumerate(step.items):
            yield ("items", j, "role"), item.role
    elif isinstance(step, ApprovalStep):
        yield ("role",), step.role
    elif isinstance(step, DeadlineStep):
        for j, role in enumerate(step.escalate):
            yield ("escalate", j), role


def _step_conditions(step: object) -> list[Condition | None]:
    if isinstance(step, BranchStep):
        return [step.when]
    if isinstance(step, WaitStep):
        return [step.until]
    if isinstance(step, DeadlineStep):
        return [step.met]
    if isinstance(step, ResolveStep):
        return [step.when]
    return []


def _reach_issues(pb: Playbook, src: Source, index: dict[str, int]) -> list[ConfigIssue]:
    """Steps no path reaches (from the first step, or the recovery after a resolution by
    hand), and cycles."""
    graph = edges(pb)
    roots = [next((s.id for s in pb.steps if s.enabled), END)]
    resolve = next((s for s in pb.steps if isinstance(s, ResolveStep)), None)
    if resolve is not None:
        roots.append(pb.after(resolve.id))
    seen: set[str] = set()
    todo = [r for r in roots if r != END]
    while todo:
        step_id = todo.pop()
        if step_id not in seen:
            seen.add(step_id)
            todo += graph[step_id]
    issues = [src.issue(("steps", index[s.id]), f"step {s.id!r} is never reached")
              for s in pb.steps if s.enabled and s.id not in seen]
    waiting = {s.id for s in pb.steps if _holds_the_path(s)}
    spinning = {node: [n for n in nxt if n not in waiting]  # loops that never stop
                for node, nxt in graph.items() if node not in waiting}
    issues += [src.issue(("steps", index[cycle[0]]), "steps go round without waiting: "
                         + " -> ".join([*cycle, cycle[0]])) for cycle in _cycles(spinning)]
    return issues


def _holds_the_path(step: object) -> bool:
    """Whether the path stops at this step (for people, the site, time or an action): a
    loop through such a step is a reminder, not a spin."""
    if isinstance(step, Waits):
        return _waits(step) or isinstance(step, WaitStep)
    return isinstance(step, ActionStep | ApprovalStep | ResolveStep)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Cycles of ``graph``, at least one through every loop (depth-first search: one per
    edge back to a step on the current path)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2
    for node in graph:
        if node not in state:
            visit(node)
    return found

