"""Agreement runs: evaluations, their verdicts (paged in SQL for the disagreement browser)
and the items an engine could not score."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, event, select
from sqlmodel import Field, SQLModel

import db.constitution_models  # noqa: F401  (registers its tables)
from db.base_models import RunProgress, utcnow
from db.dataset_models import PairItemRow


class Evaluation(RunProgress, table=True):
    """An agreement run: a dataset (or a sample) judged under one constitution version."""

    __tablename__ = "evaluation"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    dataset_id: int = Field(foreign_key="pair_dataset.id", index=True)
    constitution_version_id: int = Field(foreign_key="constitution_version.id", index=True)
    engine_kind: str = Field(max_length=40)
    model: str = Field(max_length=300)
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class VerdictRow(SQLModel, table=True):
    """The AI verdict on one item of one evaluation; at most one per (evaluation, item)."""

    __tablename__ = "verdict"
    __table_args__ = (UniqueConstraint("evaluation_id", "item_id", name="uq_verdict_item"),)

    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    item_id: int = Field(foreign_key="pair_item.id", index=True)
    p_a: float
    p_a_ab: float | None = None  # shown in the original order
    p_a_ba: float | None = None  # shown swapped (mapped back to A's side)
    principle_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    variants: list[dict[str, object]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    record_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # variants whose probability is a bounded estimate (a choice absent from a server's top-k)
    bounded: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow)
    # For the disagreement browser (issue 15, migration 0011): max(p_a, 1 - p_a), and whether
    # the AI's side differs from the human label; paged in SQL through ix_verdict_page.
    confidence: float | None = None
    disagrees: bool | None = None
    principle_key: str | None = Field(default=None, max_length=64)  # the one, if k = 1
    human_label: float | None = None  # the item's (immutable) human label, for the index


# The disagreement browser's pages: filter and sort in the index (issue 15, migration 0011).
_VERDICT: Any = VerdictRow.__table__  # type: ignore[attr-defined]
Index("ix_verdict_page", _VERDICT.c.evaluation_id, _VERDICT.c.disagrees, _VERDICT.c.confidence,
      _VERDICT.c.item_id)
Index("ix_verdict_confidence", _VERDICT.c.evaluation_id, _VERDICT.c.confidence,
      _VERDICT.c.item_id)
Index("ix_verdict_principle_page", _VERDICT.c.evaluation_id, _VERDICT.c.principle_key,
      _VERDICT.c.disagrees, _VERDICT.c.confidence, _VERDICT.c.item_id)
Index("ix_verdict_human_page", _VERDICT.c.evaluation_id, _VERDICT.c.human_label,
      _VERDICT.c.disagrees, _VERDICT.c.confidence, _VERDICT.c.item_id)
Index("ix_verdict_principle_human_page", _VERDICT.c.evaluation_id, _VERDICT.c.principle_key,
      _VERDICT.c.human_label, _VERDICT.c.disagrees, _VERDICT.c.confidence, _VERDICT.c.item_id)


class VerdictCount(SQLModel, table=True):
    """How many verdicts a run has per (principle, human label, disagrees, confidence bucket),
    kept by an insert trigger on ``verdict`` (migration 0015): page counts read these."""

    __tablename__ = "verdict_count"

    evaluation_id: int = Field(primary_key=True)
    principle_key: str = Field(primary_key=True, max_length=64)  # '' when none
    human_label: float = Field(primary_key=True)  # -1 when none
    disagrees: int = Field(primary_key=True)  # 0, 1, or -1 when none
    bucket: int = Field(primary_key=True)  # see evaluation_repo.confidence_bucket
    n: int


@event.listens_for(VerdictRow, "before_insert")
def _page_fields(mapper: Any, connection: Any, target: VerdictRow) -> None:
    """Verdicts added through the ORM get the page fields too (the run loop sets them itself)."""
    if target.confidence is None:
        target.confidence = max(target.p_a, 1.0 - target.p_a)
    if target.principle_key is None and len(target.principle_keys) == 1:
        target.principle_key = target.principle_keys[0]
    if target.human_label is None:
        target.human_label = connection.execute(
            select(PairItemRow.human_label)  # type: ignore[call-overload]
            .where(PairItemRow.id == target.item_id)).scalar()
    if target.disagrees is None and target.human_label is not None:
        decision = 1.0 if target.p_a > 0.5 else 0.0 if target.p_a < 0.5 else 0.5
        target.disagrees = decision != target.human_label


class UnscorableItem(SQLModel, table=True):
    """An item of an evaluation the engine could not score (issue 11): why, and the engine's top
    tokens as evidence. Counts as done for progress and resume; not a verdict, so no metric
    includes it. At most one per (evaluation, item)."""

    __tablename__ = "evaluation_unscorable"
    __table_args__ = (UniqueConstraint("evaluation_id", "item_id", name="uq_unscorable_item"),)

    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    item_id: int = Field(foreign_key="pair_item.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    top_tokens: dict[str, object] = Field(default_factory=dict,
                                          sa_column=Column(JSON, nullable=False))
    record_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
