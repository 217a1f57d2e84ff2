"""Reading provenance across tables: a training job's datasets and their samples (which link
to critique-log records and principles). Keyword-only functions; no writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from db.dataset_models import PairDataset
from db.job_models import Job
from db.training_models import AiPairSample, SlCaiSample, TrainingDataset

_SL: Any = SlCaiSample.__table__  # type: ignore[attr-defined]
_PAIR: Any = AiPairSample.__table__  # type: ignore[attr-defined]
_DATASET: Any = TrainingDataset.__table__  # type: ignore[attr-defined]


def get_job(session: Session, *, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def get_training_dataset(session: Session, *, dataset_id: int) -> TrainingDataset | None:
    return session.get(TrainingDataset, dataset_id)


def get_pair_dataset(session: Session, *, dataset_id: int) -> PairDataset | None:
    return session.get(PairDataset, dataset_id)


def datasets_made_by(session: Session, *, job_ids: Sequence[int]) -> list[TrainingDataset]:
    if not job_ids:
        return []
    return list(session.execute(select(TrainingDataset).where(
        _DATASET.c.job_id.in_(list(job_ids))).order_by(_DATASET.c.id)).scalars())


def count_samples(session: Session, *, dataset_id: int) -> int:
    total = 0
    for table in (_SL, _PAIR):
        total += int(session.execute(select(func.count()).select_from(table).where(
            table.c.dataset_id == dataset_id)).scalar_one())
    return total


def sample_links(session: Session, *, dataset_id: int, limit: int
                 ) -> list[tuple[int, str, list[int], list[str]]]:
    """(position, prompt, critique-log record ids, principle keys) of the first samples."""
    out: list[tuple[int, str, list[int], list[str]]] = []
    rows = session.execute(select(_SL.c.position, _SL.c.prompt, _SL.c.record_ids,
                                  _SL.c.principle_keys).where(_SL.c.dataset_id == dataset_id)
                           .order_by(_SL.c.position).limit(limit)).all()
    out += [(int(r[0]), str(r[1]), [int(i) for i in r[2]], [str(k) for k in r[3]])
            for r in rows]
    rows = session.execute(select(_PAIR.c.position, _PAIR.c.prompt, _PAIR.c.response_record_ids,
                                  _PAIR.c.verdict_record_ids, _PAIR.c.principle_keys).where(
        _PAIR.c.dataset_id == dataset_id).order_by(_PAIR.c.position).limit(limit)).all()
    out += [(int(r[0]), str(r[1]), [int(i) for i in [*r[2], *r[3]]], [str(k) for k in r[4]])
            for r in rows]
    return out[:limit]


def dataset_chains(dataset_id: int) -> Any:
    """A subquery of the critique-log chain ids behind a training dataset's samples."""
    return select(_SL.c.chain_id).where(_SL.c.dataset_id == dataset_id).union(
        select(_PAIR.c.verdict_chain_id).where(_PAIR.c.dataset_id == dataset_id))
