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
from db.bulk import give_ids, insert_rows
from db.dataset_models import PairItemRow
from db.evaluation_models import Evaluation, UnscorableItem, VerdictCount, VerdictRow
from db.record_seal import note_inserted


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
    """How many verdicts a run has, from ``verdict_count`` (kept by the insert trigger), so
    a chunk's progress does not count the whole run's index entries again."""
    c: Any = VerdictCount.__table__  # type: ignore[attr-defined]
    return int(session.connection().execute(
        core_select(func.coalesce(func.sum(c.c.n), 0)).where(c.c.evaluation_id == evaluation_id)
    ).scalar() or 0)


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
        rows = [{"evaluation_id": evaluation_id, "created_at": now, **r} for r in verdicts]
        if conn.dialect.name == "sqlite":
            give_ids(conn, table, rows)
        insert_rows(conn, table, rows)
        note_inserted(conn, table.name, rows)
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
    ``ix_verdict_confidence``, ``ix_verdict_principle_page``, ``ix_verdict_human_page``,
    ``ix_verdict_principle_human_page``), so a page reads ``offset + limit`` index entries,
    then fetches only that page's rows; the count is read from ``verdict_count`` (see
    ``count_matches``; a k > 1 run's principle filter counts index entries). Where all
    verdicts are wanted under a principle or human-label filter, the agreeing and disagreeing
    ranges are each read in order and merged here (an index cannot give that order at once).
    ``known_total``: the count from an earlier page of the same filter and progress (not
    counted again).
    """
    v: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    i: Any = PairItemRow.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    where = [v.c.evaluation_id == evaluation_id]
    one_each = bool(principle) and _one_principle_each(session, evaluation_id)
    if principle and one_each:
        where.append(v.c.principle_key == principle)
    elif principle:
        if conn.dialect.name == "postgresql":
            where.append(cast(v.c.principle_keys, JSONB).contains([principle]))
        else:
            keys = func.json_each(v.c.principle_keys).table_valued("value")
            where.append(core_select(keys.c.value).where(keys.c.value == principle).exists())
    if human_label is not None:
        where.append(v.c.human_label == human_label)
    unranged = list(where)
    where += [v.c.confidence >= min_confidence, v.c.confidence <= max_confidence]
    if only_disagreements:
        parts = [[v.c.disagrees == True]]  # noqa: E712  (SQL, and uses the index)
    elif principle or human_label is not None:
        parts = [[v.c.disagrees == False], [v.c.disagrees == True]]  # noqa: E712
    else:
        parts = [[]]
    total = 0
    keys_in_order: list[tuple[float, int]] = []
    for extra in parts:
        keys_in_order += [(float(c), int(item)) for c, item in conn.execute(
            core_select(v.c.confidence, v.c.item_id).where(*where, *extra)
            .order_by(v.c.confidence.desc(), v.c.item_id.desc()).limit(offset + limit))]
    if known_total is None and principle and not one_each:  # k > 1: a JSON list's member
        total = sum(int(conn.execute(core_select(func.count()).select_from(v)
                                     .where(*where, *extra)).scalar() or 0) for extra in parts)
    elif known_total is None:
        total = count_matches(
            conn, evaluation_id=evaluation_id, lo=min_confidence, hi=max_confidence,
            where=unranged, principle=principle if one_each else None, human_label=human_label,
            disagrees=(1,) if only_disagreements else (0, 1) if len(parts) == 2 else None)
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


BUCKETS = 100  # confidence buckets of width 1 / BUCKETS in verdict_count (migration 0015)


def confidence_bucket(confidence: float | None) -> int:
    """The ``verdict_count`` bucket of a confidence, as the insert trigger computes it: the
    ``k`` with ``k / 100 <= confidence < (k + 1) / 100`` (100 for 1.0, 101 above, -1 none)."""
    if confidence is None:
        return -1
    if confidence > 1.0:
        return BUCKETS + 1
    k = int(confidence * BUCKETS)
    if confidence >= (k + 1) / BUCKETS:
        return k + 1
    return k - 1 if confidence < k / BUCKETS else k


def _whole_buckets(lo: float, hi: float) -> tuple[int, int] | None:
    """The buckets lying wholly inside ``[lo, hi]`` (a contiguous run), if any."""
    k_lo = next((k for k in range(BUCKETS + 1) if k / BUCKETS >= lo), None)
    if k_lo is None:
        return None
    k_hi = BUCKETS if hi >= 1.0 else max(
        (k for k in range(BUCKETS) if (k + 1) / BUCKETS <= hi), default=-1)
    return (k_lo, k_hi) if k_lo <= k_hi else None


def count_matches(conn: Any, *, evaluation_id: int, lo: float, hi: float, where: list[Any],
                  principle: str | None, human_label: float | None,
                  disagrees: tuple[int, ...] | None) -> int:
    """How many of a run's verdicts match a page filter: the ``verdict_count`` rows of the
    buckets wholly inside ``[lo, hi]``, plus an index count of the verdicts in the partial
    buckets at either edge (each under 1 % of the range). ``where``: the page's verdict
    filters but the confidence range (run, principle key, human label); ``disagrees``: the values
    wanted (None: any, NULL included)."""
    v: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    c: Any = VerdictCount.__table__  # type: ignore[attr-defined]
    conds = list(where)
    if disagrees == (1,):
        conds.append(v.c.disagrees == True)  # noqa: E712  (SQL, and uses the index)
    elif disagrees is not None:
        conds.append(v.c.disagrees.is_not(None))

    def rows_between(low: Any, high: Any) -> int:
        # one range per statement: SQLite's planner bounds an index scan by one pair only
        return int(conn.execute(core_select(func.count()).select_from(v)
                                .where(*conds, low, high)).scalar() or 0)

    whole = _whole_buckets(lo, hi)
    if whole is None:
        return rows_between(v.c.confidence >= lo, v.c.confidence <= hi)
    k_lo, k_hi = whole
    counted = [c.c.evaluation_id == evaluation_id, c.c.bucket >= k_lo, c.c.bucket <= k_hi]
    if principle is not None:
        counted.append(c.c.principle_key == principle)
    if human_label is not None:
        counted.append(c.c.human_label == human_label)
    if disagrees is not None:
        counted.append(c.c.disagrees.in_(disagrees))
    total = int(conn.execute(core_select(func.coalesce(func.sum(c.c.n), 0)).where(*counted))
                .scalar() or 0)
    if lo < k_lo / BUCKETS:
        total += rows_between(v.c.confidence >= lo, v.c.confidence < k_lo / BUCKETS)
    if k_hi == BUCKETS and hi > 1.0:
        total += rows_between(v.c.confidence > 1.0, v.c.confidence <= hi)
    elif k_hi < BUCKETS and (k_hi + 1) / BUCKETS <= hi:
        total += rows_between(v.c.confidence >= (k_hi + 1) / BUCKETS, v.c.confidence <= hi)
    return total


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
