"""Each part declares its own tables: their DDL, and the columns added since each was first
made (a database made by an earlier version gets them). The store is one SQLite file with one
writer; it makes every declared table when it opens a file. A table belongs to the room
(``monitor.notify``, ``monitor.playbooks``, ...) that declares it: only that room reads,
writes and decodes its rows; the others ask it (``tests/test_tables.py`` keeps it so)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tables:
    owner: str
    """The module that declares them (its room owns them)."""
    ddl: str
    added: tuple[tuple[str, str, str], ...] = ()
    """(table, column, declaration) added since the table was first made."""


DECLARED: dict[str, Tables] = {}


def declare(owner: str, ddl: str, added: tuple[tuple[str, str, str], ...] = ()) -> Tables:
    """Declare ``owner``'s tables (at import of the owning module)."""
    tables = DECLARED[owner] = Tables(owner, ddl, added)
    return tables
