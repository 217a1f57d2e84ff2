"""Golden cases: pairs pinned to a constitution with the verdict they should get, and the
impact preview that re-judges them under an unsaved draft before the author saves it.

The preview judges the same items with the same engine and LabelConfig (seed included) under the
base version and under the draft, so any change in a verdict comes from the edit alone. Both
passes are written to the critique log; the draft's records carry no constitution version id,
because the draft is not saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from backend.access import Action, Principal, require
from backend.cai.constitution import ConstitutionContent
from backend.cai.critique_loop import clean_text
from backend.cai.labeling import LabelConfig, PairItem, Verdict, label_pairs
from backend.engines.base import EngineInfo
from backend.errors import NotFoundError, ValidationError
from backend.services.constitutions import ConstitutionService, prepare_content
from backend.services.critique_log import CritiqueLogService
from backend.services.engines import EngineManager
from db import constitution_repo, golden_repo
from db.audit_chain import append_event
from db.ci_models import GoldenCase
from db.engine import Database

MAX_CASES = 200  # per constitution: every impact preview judges all of them, twice
MAX_SAMPLE = 500
MAX_NOTE_CHARS = 1000


@dataclass(frozen=True)
class GoldenCaseInfo:
    id: int
    constitution_id: int
    prompt: str
    response_a: str
    response_b: str
    expected: str
    note: str
    created_by: str
    created_at: datetime

    @staticmethod
    def of(row: GoldenCase) -> GoldenCaseInfo:
        assert row.id is not None
        return GoldenCaseInfo(row.id, row.constitution_id, row.prompt, row.response_a,
                              row.response_b, row.expected, row.note, row.created_by,
                              row.created_at)


@dataclass(frozen=True)
class CaseImpact:
    """One item judged before (base version) and after (draft). Sample items have no
    ``case_id`` and no ``expected``, so they can flip but are never right or wrong."""

    source: Literal["golden", "sample"]
    case_id: int | None
    item: PairItem
    expected: str | None
    note: str
    p_a_before: float
    p_a_after: float
    before: str  # "A", "B" or "tie"
    after: str
    chain_before: str
    chain_after: str

    @property
    def flipped(self) -> bool:
        return self.before != self.after

    @property
    def now_right(self) -> bool:
        return self.expected is not None and self.before != self.expected == self.after

    @property
    def now_wrong(self) -> bool:
        return self.expected is not None and self.before == self.expected != self.after


@dataclass(frozen=True)
class ImpactPreview:
    constitution_id: int
    base_version_id: int
    base_number: int
    draft_hash: str
    engine: EngineInfo | None  # None when there was nothing to judge
    config: LabelConfig
    cases: tuple[CaseImpact, ...]

    @property
    def flips(self) -> int:
        return sum(c.flipped for c in self.cases)

    @property
    def now_right(self) -> int:
        return sum(c.now_right for c in self.cases)

    @property
    def now_wrong(self) -> int:
        return sum(c.now_wrong for c in self.cases)

    @property
    def summary(self) -> str:
        return f"{self.flips} flips: {self.now_right} now right, {self.now_wrong} now wrong"


def _pair_hash(prompt: str, response_a: str, response_b: str) -> str:
    return hashlib.sha256("\x00".join((prompt, response_a, response_b)).encode()).hexdigest()


def _expected(value: str) -> str:
    choice = value.strip().upper() if isinstance(value, str) else ""
    if choice not in ("A", "B"):
        raise ValidationError("The expected verdict must be A or B.")
    return choice


class GoldenCaseService:
    def __init__(self, db: Database, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService) -> None:
        self._db = db
        self._constitutions = constitutions
        self._engines = engines
        self._log = critique_log

    def add(self, constitution_id: int, prompt: str, response_a: str, response_b: str,
            expected: str, note: str = "", *, actor: Principal) -> GoldenCaseInfo:
        require(actor, Action.RUN_EVALUATION)
        prompt = clean_text(prompt, "prompt")
        response_a = clean_text(response_a, "response A")
        response_b = clean_text(response_b, "response B")
        choice = _expected(expected)
        note = clean_text(note or "", "note", allow_empty=True).strip()
        if len(note) > MAX_NOTE_CHARS:
            raise ValidationError(f"The note is {len(note):,} characters; the limit is "
                                  f"{MAX_NOTE_CHARS:,}.")
        pair_hash = _pair_hash(prompt, response_a, response_b)
        with self._db.write() as s:
            if constitution_repo.get_constitution(s, constitution_id=constitution_id) is None:
                raise NotFoundError(f"No constitution with id {constitution_id}.")
            existing = golden_repo.list_cases(s, constitution_id=constitution_id)
            if len(existing) >= MAX_CASES:
                raise ValidationError(f"This constitution already has {MAX_CASES} golden cases; "
                                      "delete some before pinning more.")
            for old in existing:
                if _pair_hash(old.prompt, old.response_a, old.response_b) == pair_hash:
                    raise ValidationError(f"This pair is already pinned as case #{old.id}.")
            row = golden_repo.add_case(s, constitution_id=constitution_id, prompt=prompt,
                                       response_a=response_a, response_b=response_b,
                                       expected=choice, note=note, created_by=actor.name)
            assert row.id is not None
            append_event(s, actor=actor.name, action="golden.add", entity_type="golden_case",
                         entity_id=str(row.id),
                         payload={"constitution_id": constitution_id, "expected": choice,
                                  "note": note, "pair_sha256": pair_hash})
            return GoldenCaseInfo.of(row)

    def list_all(self, constitution_id: int) -> list[GoldenCaseInfo]:
        with self._db.read() as s:
            return [GoldenCaseInfo.of(r)
                    for r in golden_repo.list_cases(s, constitution_id=constitution_id)]

    def delete(self, case_id: int, *, actor: Principal) -> GoldenCaseInfo:
        require(actor, Action.RUN_EVALUATION)
        with self._db.write() as s:
            row = golden_repo.delete_case(s, case_id=case_id)
            if row is None:
                raise NotFoundError(f"No golden case with id {case_id}.")
            info = GoldenCaseInfo.of(row)
            append_event(s, actor=actor.name, action="golden.delete", entity_type="golden_case",
                         entity_id=str(case_id),
                         payload={"constitution_id": info.constitution_id,
                                  "expected": info.expected,
                                  "pair_sha256": _pair_hash(info.prompt, info.response_a,
                                                            info.response_b)})
        return info

    def impact(self, constitution_id: int, base_version_id: int,
               draft_content: ConstitutionContent, *, actor: Principal,
               sample: Sequence[PairItem] | None = None, config: LabelConfig | None = None
               ) -> ImpactPreview:
        """Judge the golden cases (then ``sample``) under the base version and the draft."""
        require(actor, Action.RUN_PREVIEW)
        base = self._constitutions.version(base_version_id)
        if base.info.constitution_id != constitution_id:
            raise ValidationError("The base version belongs to another constitution.")
        draft = prepare_content(draft_content)
        config = config or LabelConfig()
        extra = list(sample or [])
        if len(extra) > MAX_SAMPLE:
            raise ValidationError(f"The sample has {len(extra)} pairs; the limit is {MAX_SAMPLE}.")
        golden = self.list_all(constitution_id)
        items = [PairItem(c.prompt, c.response_a, c.response_b) for c in golden] + extra
        cases: list[CaseImpact] = []
        engine_info: EngineInfo | None = None
        if items:
            engine = self._engines.get()
            engine_info = engine.info
            logger = self._log.logger(actor.name)
            before = label_pairs(engine, base.content, base.info.id, items, config, logger)
            after = label_pairs(engine, draft, None, items, config, logger)
            refs: list[tuple[int | None, str | None, str]] = (
                [(c.id, c.expected, c.note) for c in golden] + [(None, None, "")] * len(extra))
            cases = [_case(ref, item, b, a)
                     for ref, item, b, a in zip(refs, items, before, after, strict=True)]
        return ImpactPreview(constitution_id, base.info.id, base.info.number,
                             draft.content_hash(), engine_info, config, tuple(cases))


def _case(ref: tuple[int | None, str | None, str], item: PairItem, before: Verdict,
          after: Verdict) -> CaseImpact:
    case_id, expected, note = ref
    return CaseImpact("golden" if case_id is not None else "sample", case_id, item, expected,
                      note, before.p_a, after.p_a, before.winner, after.winner,
                      before.chain_id, after.chain_id)
