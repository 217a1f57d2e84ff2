"""Walking a whole table in id order, a batch at a time (keyset paging: constant memory,
no OFFSET scans), for verification passes over logs that may hold millions of rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import RowMapping, Table
from sqlalchemy import select as core_select
from sqlmodel import Session, SQLModel, col, select

Row = TypeVar("Row", bound=SQLModel)


def iter_by_id(session: Session, model: type[Row], batch: int = 1000) -> Iterator[Row]:
    id_column: Any = col(model.id)  # type: ignore[attr-defined]
    last_id = 0
    while True:
        rows = session.exec(select(model).where(id_column > last_id)
                            .order_by(id_column).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id  # type: ignore[attr-defined]


def row_batches(session: Session, table: Table, *, after: int = 0, batch: int = 1000
                ) -> Iterator[Sequence[RowMapping]]:
    """Every column of the rows with id > ``after``, in id order, ``batch`` rows at a time."""
    last = after
    while True:
        rows = session.execute(core_select(table).where(table.c.id > last).order_by(table.c.id)
                               .limit(batch)).mappings().all()
        if not rows:
            return
        yield rows
        last = int(rows[-1]["id"])
