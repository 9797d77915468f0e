"""Each part owns its tables: every table is declared by one module, and only the room
(``monitor.notify``, ``monitor.playbooks``, ...) that declares it reads or writes it; the
others ask that room. The store makes every declared table (and the columns added since)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import monitor.service  # noqa: F401  (every part declares its tables on import)
from monitor.core.schema import DECLARED
from monitor.core.store import Store

ROOT = Path(__file__).resolve().parent.parent
SQL = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|DELETE FROM)\s+([a-z_]+)\b")


def room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def owners() -> dict[str, str]:
    """Table -> the module that declares it."""
    found: dict[str, str] = {}
    for tables in DECLARED.values():
        for name in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", tables.ddl):
            assert name not in found, f"{name} is declared by {found[name]} and {tables.owner}"
            found[name] = tables.owner
    return found


def test_no_room_reads_another_rooms_tables() -> None:
    tables = owners()
    strays = []
    for path in (ROOT / "monitor").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for table in set(SQL.findall(path.read_text(encoding="utf-8"))) & set(tables):
            if room(tables[table]) != room(module):
                strays.append(f"{module} uses {table} of {tables[table]}")
    assert sorted(strays) == []


def test_the_store_makes_every_declared_table_and_column(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "vigil.db")     # a database of an earlier version
    old.execute("CREATE TABLE sessions (key TEXT PRIMARY KEY, person TEXT NOT NULL, "
                "csrf TEXT NOT NULL, expires REAL NOT NULL)")
    old.commit()
    old.close()
    store = Store(tmp_path)
    try:
        with sqlite3.connect(tmp_path / "vigil.db") as db:
            made = {name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
    finally:
        store.close()
    assert set(owners()) <= made and "credential" in columns
