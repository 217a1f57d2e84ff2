"""Human votes on compared pairs, and the human-labelled pair dataset they make (issue 16).

Editors vote A / B / tie on a judged pair of a comparison. Votes are append-only; each voter's
newest vote on a pair counts. ``agreement`` gives the inter-annotator agreement (Krippendorff's
α, and the plain agreement of two people) next to the AI judge's agreement with the votes, its
ceiling. ``make_dataset`` turns the voted pairs into an ordinary
human-labelled pair dataset (through the dataset importer, so it is validated and hashed like an
uploaded file), which the Agreement lab then evaluates like any other: the pair's label is the
mean of its voters' labels, rounded to A, B or tie.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from backend.access import Action, Principal, require
from backend.errors import NotFoundError, ValidationError
from backend.services.comparisons import ComparisonService
from backend.services.datasets import DatasetInfo, DatasetService
from db import comparison_repo as repo
from db.audit_chain import append_event
from db.engine import Database

LABELS = {"A": 1.0, "B": 0.0, "tie": 0.5}
MAPPING = {"prompt": "prompt", "response_a": "response_a", "response_b": "response_b",
           "label": "label"}


@dataclass(frozen=True)
class VoteAgreement:
    """How well people agree with each other on a comparison's pairs (the ceiling), next to
    how well the AI judge agrees with them. Agreement scores 1 for the same side, ½ when one
    of the two says tie and the other not, 0 for opposite sides."""

    pairs: int  # voted pairs
    multi_voted: int  # pairs with two or more voters
    alpha: float | None  # Krippendorff's α (ordinal B < tie < A); None below two voters a pair
    human_vs_human: float | None  # mean agreement of two voters on the same pair
    ai_vs_human: float | None  # mean agreement of the AI verdict with each vote


def _agree(x: float, y: float) -> float:
    sx, sy = (x > 0.5) - (x < 0.5), (y > 0.5) - (y < 0.5)
    return 1.0 if sx == sy else 0.0 if sx == -sy else 0.5


@dataclass(frozen=True)
class VoteSummary:
    pairs_voted: int
    votes: int
    voters: int


class ComparisonVotes:
    def __init__(self, db: Database, comparisons: ComparisonService,
                 datasets: DatasetService) -> None:
        self._db = db
        self._comparisons = comparisons
        self._datasets = datasets

    def vote(self, comparison_id: int, verdict_id: int, label: str, *,
             actor: Principal) -> None:
        require(actor, Action.RUN_EVALUATION)
        if label not in LABELS:
            raise ValidationError(f"Vote A, B or tie, not {label!r}.")
        with self._db.write() as s:
            verdict = repo.get_verdict(s, verdict_id=verdict_id)
            if verdict is None or verdict.comparison_id != comparison_id:
                raise NotFoundError(f"Comparison {comparison_id} has no judged pair "
                                    f"#{verdict_id}; pick one shown in the browser.")
            repo.add_vote(s, comparison_id=comparison_id, verdict_id=verdict_id,
                          voter=actor.name, label=LABELS[label])
            append_event(s, actor=actor.name, action="comparison.vote",
                         entity_type="comparison", entity_id=str(comparison_id),
                         payload={"pair": verdict_id, "label": label})

    def summary(self, comparison_id: int) -> VoteSummary:
        with self._db.read() as s:
            votes = repo.current_votes(s, comparison_id=comparison_id)
        return VoteSummary(len({v for v, _ in votes}), len(votes), len({u for _, u in votes}))

    def agreement(self, comparison_id: int) -> VoteAgreement:
        import krippendorff
        import numpy as np

        with self._db.read() as s:
            votes = repo.current_votes(s, comparison_id=comparison_id)
            ai = {r.id: r.p_a for r in repo.verdicts(s, comparison_id=comparison_id)}
        pairs = sorted({v for v, _ in votes})
        voters = sorted({u for _, u in votes})
        by_pair = {p: [votes[(p, u)] for u in voters if (p, u) in votes] for p in pairs}
        multi = [p for p in pairs if len(by_pair[p]) > 1]
        human = [_agree(a, b) for p in multi for i, a in enumerate(by_pair[p])
                 for b in by_pair[p][i + 1:]]
        machine = [_agree(ai[p], v) for p in pairs for v in by_pair[p]]
        alpha: float | None = None
        if multi:
            data = np.array([[votes.get((p, u), np.nan) for p in pairs] for u in voters])
            try:
                with np.errstate(all="ignore"):  # one value only: α is undefined (NaN)
                    value = float(krippendorff.alpha(reliability_data=data,
                                                     level_of_measurement="ordinal",
                                                     value_domain=[0.0, 0.5, 1.0]))
                alpha = None if np.isnan(value) else value
            except ValueError:  # every vote the same: α is undefined
                alpha = None
        return VoteAgreement(len(pairs), len(multi), alpha,
                             sum(human) / len(human) if human else None,
                             sum(machine) / len(machine) if machine else None)

    def labels(self, comparison_id: int) -> dict[int, float]:
        """Pair (verdict id) -> the mean of its voters' newest labels."""
        with self._db.read() as s:
            votes = repo.current_votes(s, comparison_id=comparison_id)
        by_pair: dict[int, list[float]] = {}
        for (verdict_id, _), label in votes.items():
            by_pair.setdefault(verdict_id, []).append(label)
        return {k: sum(v) / len(v) for k, v in by_pair.items()}

    def make_dataset(self, comparison_id: int, *, actor: Principal,
                     name: str = "") -> DatasetInfo:
        """A human-labelled pair dataset of the voted pairs (for the Agreement lab)."""
        require(actor, Action.RUN_EVALUATION)
        info = self._comparisons.get(comparison_id)
        labels = self.labels(comparison_id)
        if not labels:
            raise ValidationError(f"No votes on comparison {comparison_id} yet; vote A, B or "
                                  "tie on some pairs first.")
        with self._db.read() as s:
            texts = {(r.policy_index, r.prompt_index): r.response
                     for r in repo.responses(s, comparison_id=comparison_id)}
            verdicts = {r.id: r for r in repo.verdicts(s, comparison_id=comparison_id)}
        lines = []
        for verdict_id in sorted(labels):
            v = verdicts[verdict_id]
            mean = labels[verdict_id]
            label = "A" if mean > 0.5 else "B" if mean < 0.5 else "tie"
            lines.append(json.dumps({"prompt": info.prompts[v.prompt_index].text,
                                     "response_a": texts[(v.policy_a, v.prompt_index)],
                                     "response_b": texts[(v.policy_b, v.prompt_index)],
                                     "label": label}))
        raw = ("\n".join(lines) + "\n").encode("utf-8")
        return self._datasets.import_file(
            f"comparison-{comparison_id}-votes.jsonl", raw, "jsonl", actor=actor,
            name=name.strip() or f"Votes on comparison #{comparison_id}", mapping=MAPPING)
