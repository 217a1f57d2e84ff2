"""Agreement reports over stored verdicts: metrics, the disagreement browser, run comparison."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.cai import metrics
from backend.errors import NotFoundError, ValidationError
from db import dataset_repo
from db import evaluation_repo as repo
from db.engine import Database


@dataclass(frozen=True)
class EvaluationArrays:
    item_ids: list[int]
    p_a: np.ndarray
    human: np.ndarray
    p_ab: np.ndarray | None  # both orders were scored: each order's p(A)
    p_ba: np.ndarray | None
    principle_item: list[int]  # expanded: one entry per (item, principle)
    principle_key: list[str]
    principle_p: np.ndarray
    principle_human: np.ndarray


@dataclass(frozen=True)
class Report:
    evaluation_id: int
    summary: metrics.AgreementReport
    per_principle: tuple[metrics.PrincipleAccuracy, ...]
    position_consistency: metrics.Estimate | None
    # verdicts whose p(A) rests on a bounded estimate (a choice absent from a server's top-k)
    bounded_verdicts: int = 0


@dataclass(frozen=True)
class DisagreementRow:
    item_id: int
    prompt: str
    response_a: str
    response_b: str
    human_label: float
    p_a: float
    principles: list[str]
    cot: list[str]
    record_ids: list[int]

    @property
    def confidence(self) -> float:
        return max(self.p_a, 1.0 - self.p_a)


class AgreementService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def arrays(self, evaluation_id: int) -> EvaluationArrays:
        with self._db.read() as s:
            if repo.get_evaluation(s, evaluation_id=evaluation_id) is None:
                raise NotFoundError(f"No evaluation with id {evaluation_id}.")
            cols = repo.verdict_columns(s, evaluation_id=evaluation_id)
        if not cols.item_ids:
            raise ValidationError("This evaluation has no verdicts yet; wait for it to run.")
        human = np.array(cols.human_label, dtype=np.float64)
        p_ab = np.array(cols.p_a_ab, dtype=np.float64)  # a missing order (None) becomes nan
        p_ba = np.array(cols.p_a_ba, dtype=np.float64)
        both = not (np.isnan(p_ab).any() or np.isnan(p_ba).any())
        p_item, p_key, p_val, p_hum = [], [], [], []
        for item_id, keys, variants, h in zip(cols.item_ids, cols.principle_keys, cols.variants,
                                              cols.human_label, strict=True):
            for key in keys:
                values = [float(x["p_a"]) for x in variants if x.get("principle") == key]
                p_item.append(item_id)
                p_key.append(key)
                p_val.append(sum(values) / len(values))
                p_hum.append(h)
        return EvaluationArrays(
            item_ids=cols.item_ids,
            p_a=np.array(cols.p_a, dtype=np.float64),
            human=human,
            p_ab=p_ab if both else None,
            p_ba=p_ba if both else None,
            principle_item=p_item, principle_key=p_key,
            principle_p=np.array(p_val, dtype=np.float64),
            principle_human=np.array(p_hum, dtype=np.float64),
        )

    def report(self, evaluation_id: int, *, n_boot: int = 1000, seed: int = 0) -> Report:
        a = self.arrays(evaluation_id)
        if a.principle_item == a.item_ids:
            # One principle per verdict (the default): its p(A) is the verdict's, so one
            # bootstrap serves the summary and the per-principle intervals.
            summary = metrics.agreement_report(a.p_a, a.human, a.principle_key, n_boot=n_boot,
                                               seed=seed)
            per_principle = summary.per_principle
        else:
            summary = metrics.agreement_report(a.p_a, a.human, n_boot=n_boot, seed=seed)
            per_principle = metrics.agreement_report(
                a.principle_p, a.principle_human, a.principle_key, n_boot=n_boot, seed=seed
            ).per_principle
        position = None
        if a.p_ab is not None and a.p_ba is not None:
            position = metrics.agreement_report(a.p_ab, a.human, None, a.p_ba, n_boot=n_boot,
                                                seed=seed).position_consistency
        with self._db.read() as s:
            bounded = repo.count_bounded_verdicts(s, evaluation_id=evaluation_id)
        return Report(evaluation_id, summary, per_principle, position, bounded)

    def disagreements(self, evaluation_id: int, *, principle: str | None = None,
                      min_confidence: float = 0.5, max_confidence: float = 1.0,
                      human_label: float | None = None, only_disagreements: bool = True,
                      limit: int = 20, offset: int = 0) -> tuple[list[DisagreementRow], int]:
        """Items (optionally only those the AI got wrong), filtered, most confident first."""
        with self._db.read() as s:
            verdicts = repo.evaluation_verdicts(s, evaluation_id=evaluation_id)
            selected = []
            for v in verdicts:
                confidence = max(v.p_a, 1.0 - v.p_a)
                if principle and principle not in v.principle_keys:
                    continue
                if not min_confidence <= confidence <= max_confidence:
                    continue
                selected.append((confidence, v))
            items = {r.id: r for r in dataset_repo.items_by_ids(
                s, ids=[v.item_id for _, v in selected])}
        rows = []
        for _, v in sorted(selected, key=lambda cv: -cv[0]):
            item = items[v.item_id]
            if human_label is not None and item.human_label != human_label:
                continue
            agrees = metrics.item_scores([v.p_a], [item.human_label])[0] == 1.0
            if only_disagreements and agrees:
                continue
            rows.append(DisagreementRow(
                v.item_id, item.prompt, item.response_a, item.response_b, item.human_label,
                v.p_a, list(v.principle_keys),
                [str(x["cot"]) for x in v.variants if x.get("cot")],
                list(v.record_ids)))
        return rows[offset:offset + limit], len(rows)

    def compare(self, evaluation_a: int, evaluation_b: int, *, n_boot: int = 1000
                ) -> metrics.RunComparison:
        a, b = self.arrays(evaluation_a), self.arrays(evaluation_b)
        return metrics.compare_runs(metrics.RunVerdicts(a.item_ids, a.p_a, a.human),
                                    metrics.RunVerdicts(b.item_ids, b.p_a, b.human),
                                    n_boot=n_boot)
