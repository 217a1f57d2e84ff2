"""Keyword-only repository functions for human-labelled pair datasets and their items."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from db.audit_models import AuditEvent
from db.dataset_models import PairDataset, PairItemRow

_CHUNK = 500  # SQLite caps bound parameters per statement


def create_dataset(session: Session, *, name: str, source_format: str, source_name: str,
                   source_sha256: str, item_count: int, skipped_duplicates: int, swap_seed: int,
                   created_by: str) -> PairDataset:
    row = PairDataset(name=name, source_format=source_format, source_name=source_name,
                      source_sha256=source_sha256, item_count=item_count,
                      skipped_duplicates=skipped_duplicates, swap_seed=swap_seed,
                      created_by=created_by)
    session.add(row)
    session.flush()
    return row


def insert_items(session: Session, *, dataset_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Bulk insert (one executemany per chunk, no ORM objects); returns the number inserted.

    Each row has position, prompt, response_a, response_b, human_label, swapped, meta and
    content_hash. Runs in the caller's transaction.
    """
    conn = session.connection()
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(PairItemRow),
                     [{**r, "dataset_id": dataset_id} for r in rows[start:start + _CHUNK]])
    return len(rows)


def get_dataset(session: Session, *, dataset_id: int) -> PairDataset | None:
    return session.get(PairDataset, dataset_id)


def find_dataset(session: Session, *, name: str) -> PairDataset | None:
    return session.exec(select(PairDataset).where(PairDataset.name == name)).first()


def datasets_with_sha256(session: Session, *, sha256: str) -> Sequence[PairDataset]:
    """Datasets imported from a source with this sha256, oldest first."""
    return session.exec(select(PairDataset).where(PairDataset.source_sha256 == sha256)
                        .order_by(col(PairDataset.id))).all()


def list_datasets(session: Session, *, limit: int = 200, offset: int = 0
                  ) -> Sequence[PairDataset]:
    """Newest first."""
    return session.exec(select(PairDataset).order_by(col(PairDataset.id).desc())
                        .offset(offset).limit(limit)).all()


def count_datasets(session: Session) -> int:
    return session.exec(select(func.count()).select_from(PairDataset)).one()


def count_items(session: Session, *, dataset_id: int | None = None) -> int:
    """Items of one dataset, or of all datasets when ``dataset_id`` is None."""
    query = select(func.count()).select_from(PairItemRow)
    if dataset_id is not None:
        query = query.where(PairItemRow.dataset_id == dataset_id)
    return session.exec(query).one()


def dataset_items(session: Session, *, dataset_id: int, limit: int = 50, offset: int = 0
                  ) -> Sequence[PairItemRow]:
    return session.exec(select(PairItemRow).where(PairItemRow.dataset_id == dataset_id)
                        .order_by(col(PairItemRow.position)).offset(offset).limit(limit)).all()


def items_by_ids(session: Session, *, ids: Sequence[int]) -> list[PairItemRow]:
    """The items with these ids, in the order given; unknown ids are left out."""
    found: dict[int, PairItemRow] = {}
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        for row in session.exec(select(PairItemRow).where(col(PairItemRow.id).in_(chunk))):
            assert row.id is not None
            found[row.id] = row
    return [found[i] for i in ids if i in found]


def item_ids(session: Session, *, dataset_id: int) -> list[int]:
    return [i for i in session.exec(select(PairItemRow.id)
                                    .where(PairItemRow.dataset_id == dataset_id)
                                    .order_by(col(PairItemRow.position))).all() if i is not None]


def sample_item_ids(session: Session, *, dataset_id: int, n: int, seed: int) -> list[int]:
    """``n`` item ids drawn without replacement (all if fewer), in dataset order. The same
    dataset, ``n`` and ``seed`` always give the same ids."""
    ids = item_ids(session, dataset_id=dataset_id)
    if n >= len(ids):
        return ids
    chosen = set(random.Random(seed).sample(ids, max(n, 0)))
    return [i for i in ids if i in chosen]


def import_payloads(session: Session, *, dataset_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The payload of each dataset's ``dataset.import`` audit event, by dataset id."""
    out: dict[int, dict[str, Any]] = {}
    keys = [str(i) for i in dict.fromkeys(dataset_ids)]
    for start in range(0, len(keys), _CHUNK):
        rows = session.exec(select(AuditEvent).where(
            AuditEvent.entity_type == "pair_dataset", AuditEvent.action == "dataset.import",
            col(AuditEvent.entity_id).in_(keys[start:start + _CHUNK]))).all()
        for event in rows:
            payload = json.loads(event.payload)
            if isinstance(payload, dict):
                out[int(event.entity_id)] = payload
    return out
