"""The registry loader's storage side: what pg_restore does around a bulk load.

Before the load the secondary indexes, the primary and unique keys, the foreign keys and
the triggers of the tables the loader fills are read from the catalog
(``pg_get_indexdef``, ``pg_get_constraintdef``, ``pg_get_triggerdef``; on SQLite the
``sql`` of ``sqlite_master``) and dropped; after it they are created again from those
definitions (keys, then indexes, then foreign keys, which validate every row, then the
triggers). SQLite cannot drop a table's own keys: its unique keys stay, its foreign keys
are not enforced on the loader's connection and are checked with ``PRAGMA
foreign_key_check`` at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite as sqlite_dialect

from surveillance.kit.audit import AuditEntry
from surveillance.kit.sqltypes import table_of
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.outbox import Alert
from surveillance.records.patients import (
    Assessment,
    Infusion,
    OutcomeRecord,
    Patient,
    PatientEvent,
)

# The tables the loader fills, in the order a chunk writes them (parents first).
MODELS = (
    Patient,
    Infusion,
    Assessment,
    OutcomeRecord,
    PatientEvent,
    AdverseEventCase,
    AdverseEventVersion,
    Alert,
    AuditEntry,
)
TABLES: dict[str, Table] = {table_of(m).name: table_of(m) for m in MODELS}
# Tables whose id the loader gives (their sequences are set after the load).
SERIAL_TABLES = (
    "patients",
    "infusions",
    "assessments",
    "outcomes",
    "patient_events",
    "adverse_event_versions",
    "audit_log",
)


@dataclass
class Catalog:
    """Definitions to recreate after the load, in the order they must be created."""

    keys: list[tuple[str, str, str]] = field(default_factory=list)  # table, name, definition
    indexes: list[tuple[str, str, str]] = field(default_factory=list)
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)
    triggers: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self) -> dict[str, int]:
        return {
            "keys": len(self.keys),
            "indexes": len(self.indexes),
            "foreign_keys": len(self.foreign_keys),
            "triggers": len(self.triggers),
        }


# -- PostgreSQL ---------------------------------------------------------------------------

_CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.contype IN ('p', 'u', 'f')
  AND (c.conrelid = ANY(%(tables)s::regclass[]) OR c.confrelid = ANY(%(tables)s::regclass[]))
ORDER BY c.conrelid::regclass::text, c.conname
"""
_INDEXES = """
SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(tables)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1, 2
"""
_TRIGGERS = """
SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t
WHERE t.tgrelid = ANY(%(tables)s::regclass[]) AND NOT t.tgisinternal
ORDER BY 1, 2
"""


def pg_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    params = {"tables": list(TABLES)}
    catalog = Catalog()
    for table, name, kind, definition in conn.execute(_CONSTRAINTS, params).fetchall():
        target = catalog.foreign_keys if kind == "f" else catalog.keys
        target.append((table, name, definition))
    catalog.indexes = [tuple(r) for r in conn.execute(_INDEXES, params).fetchall()]  # type: ignore[misc]
    catalog.triggers = [tuple(r) for r in conn.execute(_TRIGGERS, params).fetchall()]  # type: ignore[misc]
    return catalog


def pg_drop(conn: psycopg.Connection[Any], catalog: Catalog) -> None:
    for table, name, _ in catalog.triggers:
        conn.execute(
            sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), sql.Identifier(table))
        )
    for table, name, _ in [*catalog.foreign_keys, *catalog.keys]:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    for _, name, _ in catalog.indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def pg_recreate(conn: psycopg.Connection[Any], catalog: Catalog) -> None:
    conn.execute("SET maintenance_work_mem = '256MB'")
    for table, name, definition in [*catalog.keys]:
        _add_constraint(conn, table, name, definition)
    for _, _, definition in catalog.indexes:
        conn.execute(definition)  # type: ignore[arg-type]  # from pg_get_indexdef
    for table, name, definition in catalog.foreign_keys:
        _add_constraint(conn, table, name, definition)  # validates every row
    for _, _, definition in catalog.triggers:
        conn.execute(definition)  # type: ignore[arg-type]  # from pg_get_triggerdef


def _add_constraint(conn: psycopg.Connection[Any], table: str, name: str, definition: str) -> None:
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(table), sql.Identifier(name)
        )
        + sql.SQL(definition)  # type: ignore[arg-type]  # from pg_get_constraintdef
    )


def pg_set_sequences(conn: psycopg.Connection[Any]) -> None:
    for table in SERIAL_TABLES:
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                "coalesce((SELECT max(id) FROM {i}), 0) + 1, false)"
            ).format(t=sql.Literal(table), i=sql.Identifier(table))
        )


def pg_write(conn: psycopg.Connection[Any], rows: dict[str, list[dict[str, Any]]]) -> int:
    """COPY each table's rows (one transaction: the caller's)."""
    written = 0
    with conn.cursor() as cursor:
        for name, table in TABLES.items():
            batch = rows.get(name)
            if not batch:
                continue
            columns = [c.name for c in table.columns]
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            values = itemgetter(*columns)  # a row's values in column order, in one call
            with cursor.copy(statement) as copy:
                for row in batch:
                    copy.write_row(values(row))
            written += len(batch)
    return written


def pg_sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Bytes on disk: the database, each loaded table and each of its indexes."""
    sizes = {"database": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]}  # type: ignore[index]
    for table in TABLES:
        sizes[table] = conn.execute("SELECT pg_relation_size(%s::regclass)", (table,)).fetchone()[0]  # type: ignore[index]
        for index, size in conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
            "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
            (table,),
        ).fetchall():
            sizes[f"{table}.{index}"] = size
    return sizes


# -- SQLite ---------------------------------------------------------------------------------


def sqlite_catalog(conn: sqlite3.Connection) -> Catalog:
    marks = ",".join("?" * len(TABLES))
    found = conn.execute(
        f"SELECT type, tbl_name, name, sql FROM sqlite_master "
        f"WHERE type IN ('index', 'trigger') AND sql IS NOT NULL AND tbl_name IN ({marks}) "
        "ORDER BY type, tbl_name, name",
        list(TABLES),
    ).fetchall()
    catalog = Catalog()
    for kind, table, name, definition in found:
        target = catalog.indexes if kind == "index" else catalog.triggers
        target.append((table, name, definition))
    return catalog


def sqlite_drop(conn: sqlite3.Connection, catalog: Catalog) -> None:
    for _, name, _ in catalog.triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    for _, name, _ in catalog.indexes:
        conn.execute(f'DROP INDEX "{name}"')


def sqlite_recreate(conn: sqlite3.Connection, catalog: Catalog) -> None:
    for _, _, definition in [*catalog.indexes, *catalog.triggers]:
        conn.execute(definition)
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign keys broken after the load: {problems[:5]}")


_SQLITE = sqlite_dialect.dialect()
# Per table: the columns and the bind processor SQLAlchemy would apply to each (dates as
# ISO text, UTC timestamps, booleans as 0/1), so the file reads back as if the app wrote it.
_PROCESSORS = {
    name: [(c.name, c.type.bind_processor(_SQLITE)) for c in table.columns]
    for name, table in TABLES.items()
}


def sqlite_write(conn: sqlite3.Connection, rows: dict[str, list[dict[str, Any]]]) -> int:
    written = 0
    for name in TABLES:
        batch = rows.get(name)
        if not batch:
            continue
        processors = _PROCESSORS[name]
        columns = ", ".join(f'"{c}"' for c, _ in processors)
        marks = ", ".join("?" * len(processors))
        conn.executemany(
            f"INSERT INTO {name} ({columns}) VALUES ({marks})",
            [_converted(row, processors) for row in batch],
        )
        written += len(batch)
    return written


def _converted(row: dict[str, Any], processors: Sequence[tuple[str, Any]]) -> tuple[Any, ...]:
    return tuple(p(row[c]) if p is not None else row[c] for c, p in processors)


def sqlite_sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes per table and index from ``dbstat`` when compiled in, and the file's pages."""
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    sizes = {"database": page * conn.execute("PRAGMA page_count").fetchone()[0]}
    try:
        found = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return sizes  # no dbstat in this build
    indexes = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
    for name, size in found:
        if name in TABLES:
            sizes[name] = size
        elif indexes.get(name) in TABLES:
            sizes[f"{indexes[name]}.{name}"] = size
    return sizes
