"""What the CAI core reports about each model call, and the sink it reports to.

The core stays free of SQL: it hands a ``StepRecord`` to a ``StepLogger`` (the services layer
writes it to the append-only critique log) and gets back the record id, which it links to.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from backend.engines.base import EngineInfo

StepKind = Literal["response", "critique", "revision", "cot", "verdict", "rollout"]


@dataclass(frozen=True)
class StepRecord:
    kind: StepKind
    chain_id: str
    prompt_sent: str
    output: str
    engine: EngineInfo
    params: dict[str, object]
    constitution_version_id: int | None
    principle_key: str | None = None
    round: int | None = None
    parent_id: int | None = None
    seed: int | None = None
    probabilities: dict[str, object] | None = None
    latency_s: float = 0.0


class StepLogger(Protocol):
    def log(self, records: list[StepRecord]) -> list[int]:
        """Store the records (in one transaction) and return their ids, in order."""
        ...


@dataclass
class MemoryLogger:
    """Keeps records in a list; for tests and for callers that do not persist."""

    records: list[StepRecord] = field(default_factory=list)

    def log(self, records: list[StepRecord]) -> list[int]:
        start = len(self.records)
        self.records.extend(records)
        return list(range(start + 1, start + 1 + len(records)))


def new_chain_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits (as in UUIDv7, ids made
    later sort later). The log's chain index then grows at its end instead of at random places
    (uuid4): an agreement run writes two chains per verdict, and random index inserts were a
    large part of its SQLite time."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"
