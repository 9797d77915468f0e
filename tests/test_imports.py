"""The architecture's one-way rules: no import circles among Vigil's modules; nothing outside
the daemon's own wiring imports the daemon; the model and the words import nothing above
them; rules and alarm definitions do not import the store; the services import no part."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIRING = {"monitor.daemon", "monitor.service", "monitor.demo.run", "monitor.cli"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parsed(text: str) -> ast.Module:
    """ast.parse, tried again when CPython 3.11 mixes up its AST recursion count with another
    thread's compile (python/cpython#106905: "AST constructor recursion depth mismatch",
    seen once in a full run while a test's server threads still ran)."""
    for _ in range(3):
        try:
            return ast.parse(text)
        except SystemError:
            continue
    return ast.parse(text)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules imported at run time (imports under ``if TYPE_CHECKING:`` do not count)."""
    tree = _parsed(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in known)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for d in ("monitor", "drivers") for p in (ROOT / d).rglob("*.py")]
    known = {_module(p) for p in files}
    return {_module(p): _imports(p, known) - {_module(p)} for p in files}


def test_no_import_circles() -> None:
    g = graph()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str], done: set[str]) -> None:
        for nxt in sorted(g.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt], done)
        done.add(node)
    done: set[str] = set()
    for start in sorted(g):
        if start not in done:
            visit(start, [start], done)
    # a package importing its own submodules (``drivers.snmp`` -> ``drivers.snmp.driver``)
    # is how packages expose them, not a circle
    real = [c for c in cycles if not any(b.startswith(a + ".") for a, b in itertools.pairwise(c))]
    assert real == [], "import circles: " + "; ".join(" -> ".join(c) for c in real)


def test_only_the_wiring_takes_the_daemon() -> None:
    users = sorted(m for m, deps in graph().items() if "monitor.daemon" in deps)
    assert set(users) <= WIRING, users


def _users(prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    """Modules under ``prefixes`` -> what they import of Vigil's."""
    return {m: deps for m, deps in graph().items() if m.startswith(prefixes)}


def _above(deps: set[str], allowed: tuple[str, ...]) -> set[str]:
    return {d for d in deps if d.startswith(("monitor", "drivers")) and not d.startswith(allowed)}


def test_the_model_and_words_import_nothing_above_them() -> None:
    found = {m: _above(deps, ("monitor.words", "monitor.core.model"))
             for m, deps in _users(("monitor.words", "monitor.core.model")).items()}
    assert {m: d for m, d in found.items() if d} == {}


def test_rules_and_alarm_definitions_do_not_import_the_store() -> None:
    found = {m: deps for m, deps in _users(("monitor.alarms.rules", "monitor.alarms.model"))
             .items() if any(d.startswith(("monitor.core.store", "monitor.alarms.manager"))
                             for d in deps)}
    assert found == {}


PARTS = ("monitor.devices", "monitor.notify", "monitor.playbooks", "monitor.api",
         "monitor.reports", "monitor.demo")


def test_services_import_no_part() -> None:
    """The core services and the alarm machinery know no part that attaches to them."""
    found = {m: {d for d in deps if d.startswith(PARTS)}
             for m, deps in _users(("monitor.core", "monitor.alarms")).items()}
    assert {m: d for m, d in found.items() if d} == {}


def test_test_modules_share_through_fixtures_not_each_other() -> None:
    """What tests share lives in tests/fixtures.py (and conftest, util, peers)."""
    found = sorted(f"{p.name}: {line.strip()}" for p in (ROOT / "tests").glob("test_*.py")
                   for line in p.read_text(encoding="utf-8").splitlines()
                   if line.lstrip().startswith(("from tests.test_", "import tests.test_")))
    assert found == []
