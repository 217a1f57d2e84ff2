"""Human-labelled preference pairs: datasets and their items (append-only items)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.base_models import PromptPair, utcnow


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


class PairItemRow(PromptPair, table=True):
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
    human_label: float
    swapped: bool = False
    meta: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
