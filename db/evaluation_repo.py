"""Keyword-only repository functions for evaluations and their verdicts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import Text, cast, func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.bulk import insert_rows
from db.dataset_models import PairItemRow
from db.evaluation_models import Evaluation, UnscorableItem, VerdictRow


class NewEvaluation(TypedDict):
    """The columns ``create_evaluation`` takes (status, counts and times have defaults)."""

    # what is judged: the dataset's items, fixed at creation
    dataset_id: int
    item_ids: list[int]
    total_count: int
    # under which constitution version, by which engine, with which labelling settings
    constitution_version_id: int
    engine_kind: str
    model: str
    config: dict[str, object]
    # who started it, under which name
    name: str
    created_by: str


def create_evaluation(session: Session, **fields: Unpack[NewEvaluation]) -> Evaluation:
    row = Evaluation(**fields)
    session.add(row)
    session.flush()
    return row


def get_evaluation(session: Session, *, evaluation_id: int) -> Evaluation | None:
    return session.get(Evaluation, evaluation_id)


def evaluation_progress(session: Session, *, evaluation_id: int
                        ) -> tuple[int, datetime] | None:
    """(done count, last update) of a run, without loading its item list."""
    ev: Any = Evaluation.__table__  # type: ignore[attr-defined]
    row = session.connection().execute(
        core_select(ev.c.done_count, ev.c.updated_at).where(ev.c.id == evaluation_id)).first()
    return None if row is None else (int(row[0]), row[1])


def list_evaluations(session: Session, *, limit: int = 100) -> Sequence[Evaluation]:
    return session.exec(select(Evaluation).order_by(col(Evaluation.id).desc()).limit(limit)).all()


def evaluations_with_status(session: Session, *, statuses: Sequence[str]) -> Sequence[Evaluation]:
    return session.exec(select(Evaluation).where(col(Evaluation.status).in_(statuses))
                        .order_by(col(Evaluation.id))).all()


def set_status(session: Session, *, evaluation_id: int, status: str, error: str = "") -> None:
    row = session.get(Evaluation, evaluation_id)
    if row is not None:
        row.status, row.error, row.updated_at = status, error, utcnow()
        session.add(row)


def judged_item_ids(session: Session, *, evaluation_id: int) -> set[int]:
    return set(session.exec(select(VerdictRow.item_id)
                            .where(VerdictRow.evaluation_id == evaluation_id)).all())


def count_verdicts(session: Session, *, evaluation_id: int) -> int:
    return session.exec(select(func.count()).select_from(VerdictRow)
                        .where(VerdictRow.evaluation_id == evaluation_id)).one()


def count_bounded_verdicts(session: Session, *, evaluation_id: int) -> int:
    """Verdicts with at least one variant scored by a bounded estimate (issue 11)."""
    return session.exec(select(func.count()).select_from(VerdictRow)
                        .where(VerdictRow.evaluation_id == evaluation_id)
                        .where(col(VerdictRow.bounded) > 0)).one()


def insert_verdicts(session: Session, *, evaluation_id: int, rows: Sequence[dict[str, Any]]
                    ) -> int:
    """Insert verdicts and advance the evaluation's progress counter; returns the new count."""
    for r in rows:
        session.add(VerdictRow(evaluation_id=evaluation_id, **r))
    session.flush()
    done = count_verdicts(session, evaluation_id=evaluation_id)
    row = session.get(Evaluation, evaluation_id)
    if row is not None:
        row.done_count, row.updated_at = done, utcnow()
        session.add(row)
    return done


def unscorable_item_ids(session: Session, *, evaluation_id: int) -> set[int]:
    return set(session.exec(select(UnscorableItem.item_id)
                            .where(UnscorableItem.evaluation_id == evaluation_id)).all())


def count_unscorable(session: Session, *, evaluation_id: int) -> int:
    return session.exec(select(func.count()).select_from(UnscorableItem)
                        .where(UnscorableItem.evaluation_id == evaluation_id)).one()


def unscorable_items(session: Session, *, evaluation_id: int) -> Sequence[UnscorableItem]:
    return session.exec(select(UnscorableItem).where(UnscorableItem.evaluation_id == evaluation_id)
                        .order_by(col(UnscorableItem.item_id))).all()


def insert_chunk(session: Session, *, evaluation_id: int, verdicts: Sequence[dict[str, Any]],
                 unscorable: Sequence[dict[str, Any]] = ()) -> int:
    """A chunk's verdicts and unscorable items, each kind in one multi-row INSERT, and the
    run's progress (verdicts plus unscorable items); returns the new done count. The caller's
    transaction makes the chunk atomic; a duplicate (evaluation, item) raises IntegrityError."""
    conn = session.connection()
    now = utcnow()
    if verdicts:
        table: Any = VerdictRow.__table__  # type: ignore[attr-defined]
        insert_rows(conn, table, [{"evaluation_id": evaluation_id, "created_at": now, **r}
                                  for r in verdicts])
    if unscorable:
        table = UnscorableItem.__table__  # type: ignore[attr-defined]
        insert_rows(conn, table, [{"evaluation_id": evaluation_id, "created_at": now, **r}
                                  for r in unscorable])
    done = (count_verdicts(session, evaluation_id=evaluation_id)
            + count_unscorable(session, evaluation_id=evaluation_id))
    ev: Any = Evaluation.__table__  # type: ignore[attr-defined]
    conn.execute(update(ev).where(ev.c.id == evaluation_id).values(done_count=done,
                                                                    updated_at=now))
    return done


def pair_texts(session: Session, *, ids: Sequence[int]
               ) -> dict[int, tuple[str, str, str, float]]:
    """(prompt, response A, response B, human label) of these items, as plain tuples."""
    out: dict[int, tuple[str, str, str, float]] = {}
    for lo in range(0, len(ids), 500):
        rows = session.connection().execute(
            core_select(col(PairItemRow.id), col(PairItemRow.prompt), col(PairItemRow.response_a),
                        col(PairItemRow.response_b), col(PairItemRow.human_label))
            .where(col(PairItemRow.id).in_(list(ids[lo:lo + 500]))))
        for item_id, prompt, a, b, human in rows:
            out[int(item_id or 0)] = (prompt, a, b, float(human))
    return out


@dataclass(frozen=True)
class PageRow:
    item_id: int
    p_a: float
    principle_keys: list[str]
    variants: list[dict[str, Any]]
    record_ids: list[int]
    prompt: str
    response_a: str
    response_b: str
    human_label: float


def disagreement_page(session: Session, *, evaluation_id: int, principle: str | None,
                      min_confidence: float, max_confidence: float, human_label: float | None,
                      only_disagreements: bool, limit: int, offset: int,
                      known_total: int | None = None) -> tuple[list[PageRow], int]:
    """One page of an evaluation's verdicts, most confident first (ties by item id, newest
    first), filtered and paged in SQL; and how many match.

    Every filter is a range of one of the verdict indexes (``ix_verdict_page``,
    ``ix_verdict_confidence``, ``ix_verdict_principle_page``, ``ix_verdict_human_page``), so
    counts read index entries only and a page reads ``offset + limit`` entries. Where all
    verdicts are wanted under a principle or human-label filter, the agreeing and disagreeing
    ranges are each read in order and merged here (an index cannot give that order at once).
    ``known_total``: the count from an earlier page of the same filter and progress (not
    counted again).
    """
    v: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    i: Any = PairItemRow.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    where = [v.c.evaluation_id == evaluation_id,
             v.c.confidence >= min_confidence, v.c.confidence <= max_confidence]
    if principle and _one_principle_each(session, evaluation_id):
        where.append(v.c.principle_key == principle)
    elif principle:
        if conn.dialect.name == "postgresql":
            where.append(cast(v.c.principle_keys, JSONB).contains([principle]))
        else:
            keys = func.json_each(v.c.principle_keys).table_valued("value")
            where.append(core_select(keys.c.value).where(keys.c.value == principle).exists())
    if human_label is not None:
        where.append(v.c.human_label == human_label)
    if only_disagreements:
        parts = [[v.c.disagrees == True]]  # noqa: E712  (SQL, and uses the index)
    elif principle or human_label is not None:
        parts = [[v.c.disagrees == False], [v.c.disagrees == True]]  # noqa: E712
    else:
        parts = [[]]
    total = 0
    keys_in_order: list[tuple[float, int]] = []
    for extra in parts:
        if known_total is None:
            total += int(conn.execute(core_select(func.count()).select_from(v)
                                      .where(*where, *extra)).scalar() or 0)
        keys_in_order += [(float(c), int(item)) for c, item in conn.execute(
            core_select(v.c.confidence, v.c.item_id).where(*where, *extra)
            .order_by(v.c.confidence.desc(), v.c.item_id.desc()).limit(offset + limit))]
    total = total if known_total is None else known_total
    keys_in_order.sort(key=lambda ci: (-ci[0], -ci[1]))
    wanted = [item for _, item in keys_in_order[offset:offset + limit]]
    if not wanted:
        return [], total
    found = {int(r[0]): r for r in conn.execute(
        core_select(v.c.item_id, v.c.p_a, cast(v.c.principle_keys, Text),
                    cast(v.c.variants, Text), cast(v.c.record_ids, Text), i.c.prompt,
                    i.c.response_a, i.c.response_b, i.c.human_label)
        .select_from(v.join(i, i.c.id == v.c.item_id))
        .where(v.c.evaluation_id == evaluation_id, v.c.item_id.in_(wanted)))}
    rows = [PageRow(int(r[0]), float(r[1]), json.loads(r[2]), json.loads(r[3]),
                    json.loads(r[4]), r[5], r[6], r[7], float(r[8]))
            for r in (found[item] for item in wanted)]
    return rows, total


def _one_principle_each(session: Session, evaluation_id: int) -> bool:
    """Whether every verdict of the run names its one principle in ``principle_key`` (k = 1),
    so the principle filter can use ``ix_verdict_principle_page``."""
    v: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    missing = session.connection().execute(
        core_select(v.c.id).where(v.c.evaluation_id == evaluation_id,
                                  v.c.principle_key.is_(None)).limit(1)).first()
    return missing is None


def evaluation_verdicts(session: Session, *, evaluation_id: int) -> Sequence[VerdictRow]:
    return session.exec(select(VerdictRow).where(VerdictRow.evaluation_id == evaluation_id)
                        .order_by(col(VerdictRow.item_id))).all()


@dataclass(frozen=True)
class VerdictColumns:
    """An evaluation's verdicts as columns (ordered by item id), with each item's human label."""

    item_ids: list[int]
    p_a: list[float]
    p_a_ab: list[float | None]
    p_a_ba: list[float | None]
    human_label: list[float]
    principle_keys: list[list[str]]
    variants: list[list[dict[str, Any]]]


def _json_column(texts: Sequence[str]) -> list[Any]:
    """Many JSON documents decoded in one ``json.loads`` call (far cheaper than one per row)."""
    return list(json.loads("[" + ",".join(texts) + "]")) if texts else []


def single_principle_columns(session: Session, *, evaluation_id: int
                             ) -> tuple[list[int], list[float], list[float | None],
                                        list[float | None], list[float], list[str]] | None:
    """For a run whose every verdict has one principle (``principle_key`` set, k = 1): item
    ids, p(A), p(A) per order, human label and principle key, in one joined query with no JSON
    to decode (a principle's own p(A) is then the verdict's). None for any other run."""
    if not _one_principle_each(session, evaluation_id):
        return None
    v: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    i: Any = PairItemRow.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        core_select(v.c.item_id, v.c.p_a, v.c.p_a_ab, v.c.p_a_ba, i.c.human_label,
                    v.c.principle_key)
        .join(i, i.c.id == v.c.item_id).where(v.c.evaluation_id == evaluation_id)
        .order_by(v.c.item_id)).all()
    if not rows:
        return None
    item_ids, p_a, p_ab, p_ba, human, keys = (list(c) for c in zip(*rows, strict=True))
    return item_ids, p_a, p_ab, p_ba, human, keys


def verdict_columns(session: Session, *, evaluation_id: int) -> VerdictColumns:
    """The columns a report needs, read in one joined query as plain tuples: no ORM objects,
    the JSON columns fetched as text and decoded together (100,000 verdicts in about a second
    instead of tens of seconds through ORM instances)."""
    rows = session.connection().execute(
        core_select(col(VerdictRow.item_id), col(VerdictRow.p_a), col(VerdictRow.p_a_ab),
                    col(VerdictRow.p_a_ba), col(PairItemRow.human_label),
                    cast(col(VerdictRow.principle_keys), Text),
                    cast(col(VerdictRow.variants), Text))
        .join(PairItemRow, col(PairItemRow.id) == col(VerdictRow.item_id))
        .where(col(VerdictRow.evaluation_id) == evaluation_id)
        .order_by(col(VerdictRow.item_id))
    ).all()
    if not rows:
        return VerdictColumns([], [], [], [], [], [], [])
    item_ids, p_a, p_ab, p_ba, human, keys, variants = zip(*rows, strict=True)
    return VerdictColumns(list(item_ids), list(p_a), list(p_ab), list(p_ba), list(human),
                          _json_column(keys), _json_column(variants))
