"""Many rows into one table, fast: one multi-row INSERT per few hundred rows on SQLite.

A plain ``executemany`` steps SQLite once per row, and Python's sqlite3 module takes the GIL
back between rows; with another thread busy (an agreement run's model calls) each row then waits
for the GIL's switch interval, and 10,000 log records took 4.9 s instead of 0.95 s. One
``INSERT ... VALUES (...), (...), ...`` statement per batch binds every value exactly (no text
round trip for floats) and steps once, with the GIL released for all of its rows. Values go
through each column type's own bind processor (JSON, aware datetimes), as SQLAlchemy would
store them. Other databases get SQLAlchemy's ``executemany``.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, Table, func, insert, select

SQLITE_MAX_VARIABLES = 32_000  # SQLite's default limit is 32,766 since 3.32


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    # (position, bind processor, is a Float column) of the columns that have a processor
    processed: list[tuple[int, Callable[[Any], Any], bool]] = []
    for k, name in enumerate(names):
        bind = table.c[name].type.bind_processor(conn.dialect)
        if bind is not None:
            processed.append((k, bind, isinstance(table.c[name].type, Float)))
    pick = operator.itemgetter(*names)
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
    one = "(" + ", ".join("?" * len(names)) + ")"
    per_statement = max(1, SQLITE_MAX_VARIABLES // len(names))
    # a JSON value or a time shared by many rows (a batch's created_at) is encoded once
    cache: dict[tuple[int, int], Any] = {}
    for lo in range(0, len(rows), per_statement):
        batch = rows[lo:lo + per_statement]
        params: list[Any] = []
        for row in batch:
            values = list(pick(row)) if len(names) > 1 else [row[names[0]]]
            for k, process, is_float in processed:
                value = values[k]
                if value is None or (is_float and type(value) is float):
                    continue  # a Float column's processor gives a float back as it is
                if isinstance(value, dict | list | datetime):
                    key = (k, id(value))
                    if key not in cache:  # keep value alive: stable id
                        cache[key] = (value, _adapted(process(value)))
                    values[k] = cache[key][1]
                else:
                    values[k] = process(value)
            params.extend(values)
        # Names come from the table's own metadata, every value is a bound parameter.
        sql = (f"INSERT INTO {conn.dialect.identifier_preparer.quote(table.name)} "  # noqa: S608
               f"({quoted}) VALUES " + ", ".join([one] * len(batch)))
        conn.exec_driver_sql(sql, tuple(params))


def _adapted(value: Any) -> Any:
    """``value`` as the sqlite3 module would adapt it when binding (its registered adapter,
    e.g. datetime -> ISO text), so that a cached value is not adapted again for every row."""
    adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
    return adapt(value) if adapt is not None else value


def give_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """SQLite: set the ids ``rows`` will get (max(id)+1, ...) in each row, and return them.

    A SQLite writer holds the database's only write lock (BEGIN IMMEDIATE) for the whole
    transaction, so the next ids are known and can be given explicitly: multi-row INSERTs
    instead of a statement per row (which is what RETURNING with a guaranteed order costs on
    SQLite), and the writer knows every stored value (rows are sealed from them)."""
    top = conn.execute(select(func.max(table.c.id))).scalar() or 0
    ids = list(range(top + 1, top + 1 + len(rows)))
    for row, row_id in zip(rows, ids, strict=True):
        row["id"] = row_id
    return ids
