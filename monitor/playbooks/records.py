"""The playbooks' records: incidents, their timelines, the playbook versions they ran on, and
the messages their changes made (``notices``, until the notifier has them): their tables, the
one codec of their rows, and the readers the API and the notifier ask."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from monitor.core.bus import IncidentNotice
from monitor.core.schema import declare
from monitor.playbooks.engine import Entry, Incident

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, playbook TEXT NOT NULL,
                                      scope TEXT NOT NULL, drill INTEGER NOT NULL,
                                      status TEXT NOT NULL, started REAL NOT NULL,
                                      ended REAL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS timeline (seq INTEGER PRIMARY KEY, incident TEXT NOT NULL,
                                     ts REAL NOT NULL, kind TEXT NOT NULL, step TEXT,
                                     actor TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS timeline_incident ON timeline (incident, seq);
CREATE TABLE IF NOT EXISTS playbook_versions (version TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notices (key TEXT PRIMARY KEY, data TEXT NOT NULL);
""")

Op = Callable[[sqlite3.Connection], object]


def encode(inc: Incident) -> str:
    return json.dumps(asdict(inc))


def decode(data: str) -> Incident:
    """An incident as stored (JSON gives lists where it keeps tuples)."""
    fields: dict[str, Any] = json.loads(data)
    for key in ("acked", "resolved"):
        if isinstance(fields.get(key), list):
            fields[key] = tuple(fields[key])
    fields["checked"] = {k: tuple(v) for k, v in fields.get("checked", {}).items()}
    fields["decisions"] = {k: tuple(v) for k, v in fields.get("decisions", {}).items()}
    return Incident(**fields)


# -- writing ---------------------------------------------------------------------------------
def writer(inc: Incident, entries: Sequence[Entry],
           notices: Sequence[IncidentNotice] = ()) -> Callable[[sqlite3.Connection], None]:
    """The incident, its new timeline entries and the messages it sends, in one
    transaction."""
    row = (inc.id, inc.playbook, inc.scope, int(inc.drill), inc.status, inc.started,
           time.time() if inc.status == "closed" else None, encode(inc))
    lines = [(inc.id, e.ts, e.kind, e.step, e.actor, e.text) for e in entries]
    held = [(n.key, json.dumps(asdict(n), ensure_ascii=False)) for n in notices]

    def write(c: sqlite3.Connection) -> None:
        c.execute("INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        c.executemany("INSERT INTO timeline (incident, ts, kind, step, actor, text) "
                      "VALUES (?, ?, ?, ?, ?, ?)", lines)
        c.executemany("INSERT INTO notices VALUES (?, ?)", held)
    return write


def versions_writer(versions: Sequence[tuple[str, str]]) -> Op:
    """(version, playbook text) kept, for incidents that run on them."""
    return lambda c: c.executemany("INSERT OR IGNORE INTO playbook_versions VALUES (?, ?)",
                                   versions)


def drop_notice(key: str) -> Op:
    """The message is the notifier's now (its deliveries are written in the same
    transaction)."""
    return lambda c: c.execute("DELETE FROM notices WHERE key = ?", (key,))


def drop_notices_of(incident: str) -> Op:
    """A drill ended: its messages not delivered yet end with it."""
    return lambda c: c.execute("DELETE FROM notices WHERE json_extract(data, '$.incident') = ?",
                               (incident,))


# -- reading ---------------------------------------------------------------------------------
def running(conn: sqlite3.Connection) -> list[tuple[Incident, str]]:
    """The incidents not closed, each with the text of the playbook version it runs on."""
    return [(decode(data), text) for data, text in conn.execute(
        "SELECT i.data, v.text FROM incidents i JOIN playbook_versions v "
        "ON v.version = json_extract(i.data, '$.version') WHERE i.status != 'closed'")]


def pending_notices(conn: sqlite3.Connection) -> list[IncidentNotice]:
    """The messages stored with their change and not yet the notifier's, oldest first."""
    return [IncidentNotice.from_json(d) for (d,) in
            conn.execute("SELECT data FROM notices ORDER BY rowid")]


def notice(conn: sqlite3.Connection, key: str) -> IncidentNotice | None:
    row = conn.execute("SELECT data FROM notices WHERE key = ?", (key,)).fetchone()
    return IncidentNotice.from_json(row[0]) if row else None


def closed_drills(conn: sqlite3.Connection) -> list[str]:
    return [i for (i,) in conn.execute("SELECT id FROM incidents WHERE drill AND "
                                       "status = 'closed'")]


def newest(conn: sqlite3.Connection, limit: int) -> list[Incident]:
    """Incidents and drills, newest first."""
    return [decode(d) for (d,) in conn.execute(
        "SELECT data FROM incidents ORDER BY started DESC LIMIT ?", (limit,))]


def incident(conn: sqlite3.Connection, incident_id: str) -> Incident | None:
    row = conn.execute("SELECT data FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return decode(row[0]) if row else None


def timeline(conn: sqlite3.Connection, incident_id: str) -> list[tuple[Any, ...]]:
    """(ts, kind, step, actor, text) of each line, in order."""
    return conn.execute("SELECT ts, kind, step, actor, text FROM timeline WHERE incident = ? "
                        "ORDER BY seq", (incident_id,)).fetchall()


def with_versions(conn: sqlite3.Connection, incident_id: str | None = None,
                  drills_of: str | None = None,
                  limit: int = 10) -> list[tuple[Incident, str | None]]:
    """One incident, or the last ``limit`` drills of a playbook, each with the text of the
    playbook version it ran on (None where it is not kept)."""
    where, args = ("i.id = ?", (incident_id,)) if incident_id is not None else (
        "i.id IN (SELECT id FROM incidents WHERE playbook = ? AND drill = 1 "
        "ORDER BY started DESC LIMIT ?)", (drills_of, limit))
    return [(decode(data), text) for data, text in conn.execute(
        "SELECT i.data, v.text FROM incidents i LEFT JOIN playbook_versions v ON v.version = "
        f"json_extract(i.data, '$.version') WHERE {where}", args)]
