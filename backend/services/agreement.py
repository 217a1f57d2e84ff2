"""Agreement reports over stored verdicts: metrics, the disagreement browser, run comparison."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from backend.cai import metrics
from backend.cai.parsed_judge import hard_counts
from backend.errors import NotFoundError, ValidationError
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


def _single_principle_arrays(item_ids: list[int], p_a: list[float], p_ab: list[float | None],
                             p_ba: list[float | None], human: list[float], keys: list[str]
                             ) -> EvaluationArrays:
    """Arrays of a run with one principle per verdict: that principle's p(A) is the verdict's."""
    p = np.array(p_a, dtype=np.float64)
    h = np.array(human, dtype=np.float64)
    ab = np.array(p_ab, dtype=np.float64)
    ba = np.array(p_ba, dtype=np.float64)
    both = not (np.isnan(ab).any() or np.isnan(ba).any())
    return EvaluationArrays(item_ids=item_ids, p_a=p, human=h, p_ab=ab if both else None,
                            p_ba=ba if both else None, principle_item=item_ids,
                            principle_key=keys, principle_p=p, principle_human=h)


@dataclass(frozen=True)
class Report:
    evaluation_id: int
    summary: metrics.AgreementReport
    per_principle: tuple[metrics.PrincipleAccuracy, ...]
    position_consistency: metrics.Estimate | None
    # verdicts whose p(A) rests on a bounded estimate (a choice absent from a server's top-k)
    bounded_verdicts: int = 0
    judge: str = "scored"  # parsed: hard labels read from written answers (no logprobs)
    unparsed_verdicts: int = 0  # parsed judge: verdicts with an answer naming neither choice


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
    hard: bool = False  # a parsed judge's hard label
    unparsed: int = 0  # its variants whose answer named neither choice (counted as a tie)

    @property
    def confidence(self) -> float:
        return max(self.p_a, 1.0 - self.p_a)


class AgreementService:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Disagreement-browser match counts by (run, filters, the run's progress): a finished
        # run's verdicts never change, so paging through one filter counts once.
        self._totals: OrderedDict[tuple[object, ...], int] = OrderedDict()
        self._totals_lock = threading.Lock()

    def arrays(self, evaluation_id: int) -> EvaluationArrays:
        with self._db.read() as s:
            if repo.get_evaluation(s, evaluation_id=evaluation_id) is None:
                raise NotFoundError(f"No evaluation with id {evaluation_id}.")
            single = repo.single_principle_columns(s, evaluation_id=evaluation_id)
            if single is not None:  # k = 1: no JSON to read
                return _single_principle_arrays(*single)
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
        """Every metric with its interval from one bootstrap: the summary, position consistency
        (an extra column of the same resamples) and, when each verdict has one principle (the
        default), the per-principle accuracies too."""
        a = self.arrays(evaluation_id)
        orders = (a.p_ab, a.p_ba) if a.p_ab is not None and a.p_ba is not None else None
        if a.principle_item == a.item_ids:
            summary = metrics.agreement_report(a.p_a, a.human, a.principle_key, n_boot=n_boot,
                                               seed=seed, position=orders)
            per_principle = summary.per_principle
        else:
            summary = metrics.agreement_report(a.p_a, a.human, n_boot=n_boot, seed=seed,
                                               position=orders)
            per_principle = metrics.agreement_report(
                a.principle_p, a.principle_human, a.principle_key, n_boot=n_boot, seed=seed
            ).per_principle
        with self._db.read() as s:
            bounded = repo.count_bounded_verdicts(s, evaluation_id=evaluation_id)
            row = repo.get_evaluation(s, evaluation_id=evaluation_id)
            judge = str(row.config.get("judge", "scored")) if row is not None else "scored"
            unparsed = 0
            if judge == "parsed":
                cols = repo.verdict_columns(s, evaluation_id=evaluation_id)
                unparsed = sum(1 for v in cols.variants if hard_counts(v)[1])
        return Report(evaluation_id, summary, per_principle, summary.position_consistency,
                      bounded, judge, unparsed)

    def disagreements(self, evaluation_id: int, *, principle: str | None = None,
                      min_confidence: float = 0.5, max_confidence: float = 1.0,
                      human_label: float | None = None, only_disagreements: bool = True,
                      limit: int = 20, offset: int = 0) -> tuple[list[DisagreementRow], int]:
        """Items (optionally only those the AI got wrong), filtered, most confident first (ties
        by item id, newest first); filtered, sorted and paged in the database."""
        with self._db.read() as s:
            progress = repo.evaluation_progress(s, evaluation_id=evaluation_id)
            if progress is None:
                raise NotFoundError(f"No evaluation with id {evaluation_id}.")
            key = (evaluation_id, *progress, principle or None,
                   min_confidence, max_confidence, human_label, only_disagreements)
            with self._totals_lock:
                known = self._totals.get(key)
            page, total = repo.disagreement_page(
                s, evaluation_id=evaluation_id, principle=principle or None,
                min_confidence=min_confidence, max_confidence=max_confidence,
                human_label=human_label, only_disagreements=only_disagreements,
                limit=limit, offset=offset, known_total=known)
        with self._totals_lock:
            self._totals[key] = total
            self._totals.move_to_end(key)
            while len(self._totals) > 256:
                self._totals.popitem(last=False)
        return [DisagreementRow(r.item_id, r.prompt, r.response_a, r.response_b, r.human_label,
                                r.p_a, list(r.principle_keys),
                                [str(x["cot"]) for x in r.variants if x.get("cot")],
                                list(r.record_ids), *hard_counts(r.variants))
                for r in page], total

    def compare(self, evaluation_a: int, evaluation_b: int, *, n_boot: int = 1000
                ) -> metrics.RunComparison:
        a, b = self.arrays(evaluation_a), self.arrays(evaluation_b)
        return metrics.compare_runs(metrics.RunVerdicts(a.item_ids, a.p_a, a.human),
                                    metrics.RunVerdicts(b.item_ids, b.p_a, b.human),
                                    n_boot=n_boot)
