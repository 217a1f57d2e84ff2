"""SQLModel tables. Versions, principles, few-shot examples and audit events are never updated
or deleted once written (the migrations add triggers that refuse it on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, event, select
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC with microseconds (SQLModel stores aware datetimes and reads them back as UTC)."""
    return datetime.now(UTC)


class Constitution(SQLModel, table=True):
    __tablename__ = "constitution"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class ConstitutionVersion(SQLModel, table=True):
    """One immutable saved state. The head is the version with the highest ``number``; the
    unique (constitution, number) pair makes a save on a stale head fail instead of forking."""

    __tablename__ = "constitution_version"
    __table_args__ = (UniqueConstraint("constitution_id", "number", name="uq_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    number: int
    parent_id: int | None = Field(default=None, foreign_key="constitution_version.id")
    content_hash: str = Field(max_length=64, index=True)
    author: str = Field(max_length=120)
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class PrincipleRow(SQLModel, table=True):
    __tablename__ = "principle"
    __table_args__ = (
        UniqueConstraint("version_id", "position", name="uq_principle_position"),
        UniqueConstraint("version_id", "key", name="uq_principle_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True)
    position: int
    key: str = Field(max_length=64, index=True)
    title: str = Field(max_length=200)
    critique_request: str = Field(sa_column=Column(Text, nullable=False))
    revision_request: str = Field(sa_column=Column(Text, nullable=False))
    choice_instruction: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True


class FewShotRow(SQLModel, table=True):
    __tablename__ = "few_shot_example"
    __table_args__ = (UniqueConstraint("version_id", "position", name="uq_few_shot_position"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True)
    position: int
    kind: str = Field(max_length=40)
    data: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditEvent(SQLModel, table=True):
    """Append-only; ``hash`` = sha256(prev_hash, canonical JSON of the row) (see audit_chain)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id"),)

    id: int = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=80, index=True)
    entity_type: str = Field(max_length=80)
    entity_id: str = Field(max_length=120)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class CritiqueLogRecord(SQLModel, table=True):
    """One model call of the CAI core: a response, critique, revision, CoT or verdict.

    Append-only. ``record_hash`` is sha256 of the row's canonical JSON (see critique_log_repo),
    so an edited row can be detected. ``chain_id`` groups the steps of one critique→revision
    chain or one A/B verdict; ``parent_id`` points at the step it continued from.
    """

    __tablename__ = "critique_log"
    __table_args__ = (Index("ix_critique_log_chain", "chain_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=20, index=True)
    chain_id: str = Field(max_length=40)
    parent_id: int | None = Field(default=None, foreign_key="critique_log.id")
    round: int | None = None
    constitution_version_id: int | None = Field(
        default=None, foreign_key="constitution_version.id", index=True)
    principle_key: str | None = Field(default=None, max_length=64, index=True)
    engine_kind: str = Field(max_length=40)
    model: str = Field(max_length=300)
    params: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seed: int | None = None
    prompt_sent: str = Field(sa_column=Column(Text, nullable=False))
    output: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    probabilities: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    latency_s: float = 0.0
    actor: str = Field(max_length=120)
    record_hash: str = Field(max_length=64)


class PairDataset(SQLModel, table=True):
    """A set of human-labelled preference pairs imported from one source."""

    __tablename__ = "pair_dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    source_format: str = Field(max_length=40)  # hh_rlhf | hhh_eval | harmful_vs_ethical | ...
    source_name: str = Field(max_length=300)
    source_sha256: str = Field(max_length=64)
    item_count: int = 0
    skipped_duplicates: int = 0
    swap_seed: int = 0
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class PairItemRow(SQLModel, table=True):
    """One pair as shown to the labeller: ``human_label`` is 1.0 if humans preferred the
    response shown as A, 0.0 for B, 0.5 for a tie. ``swapped`` records that the source's
    preferred response was placed as B (sides are randomised on import)."""

    __tablename__ = "pair_item"
    __table_args__ = (
        UniqueConstraint("dataset_id", "position", name="uq_pair_item_position"),
        UniqueConstraint("dataset_id", "content_hash", name="uq_pair_item_content"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="pair_dataset.id", index=True)
    position: int
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    human_label: float
    swapped: bool = False
    meta: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)


class Evaluation(SQLModel, table=True):
    """An agreement run: a dataset (or a sample) judged under one constitution version."""

    __tablename__ = "evaluation"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    dataset_id: int = Field(foreign_key="pair_dataset.id", index=True)
    constitution_version_id: int = Field(foreign_key="constitution_version.id", index=True)
    engine_kind: str = Field(max_length=40)
    model: str = Field(max_length=300)
    config: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=20, index=True)
    done_count: int = 0
    total_count: int = 0
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


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


class GoldenCase(SQLModel, table=True):
    """A pair pinned to a constitution with the verdict it should get (a regression case)."""

    __tablename__ = "golden_case"

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response_a: str = Field(sa_column=Column(Text, nullable=False))
    response_b: str = Field(sa_column=Column(Text, nullable=False))
    expected: str = Field(max_length=1)  # "A" or "B"
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


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
