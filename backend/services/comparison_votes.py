"""Human votes on compared pairs, and the human-labelled pair dataset they make (issue 16).

Editors vote A / B / tie on a judged pair of a comparison. Votes are append-only; each voter's
newest vote on a pair counts. ``agreement`` gives the inter-annotator agreement (Krippendorff's
α, and the plain agreement of two people) next to the AI judge's agreement with the votes, its
ceiling. ``make_dataset`` turns the voted pairs into an ordinary
human-labelled pair dataset (through the dataset importer, so it is validated and hashed like an
uploaded file), which the Agreement lab then evaluates like any other: the pair's label is its
adjudicated label where an editor ruled on a disagreement (``adjudicate``), else the mean of its
voters' labels, rounded to A, B or tie.
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
class PairVotes:
    """Who voted what on one pair, and the ruling on it if any."""

    verdict_id: int
    votes: dict[str, float]  # voter -> newest label
    ruling: float | None  # the adjudicated label
    adjudicator: str | None
    reason: str

    @property
    def disputed(self) -> bool:
        """Voters disagree (different labels)."""
        return len(set(self.votes.values())) > 1

    @property
    def label(self) -> float:
        """The pair's label in the dataset: the ruling, else the mean of the votes."""
        if self.ruling is not None:
            return self.ruling
        return sum(self.votes.values()) / len(self.votes)


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

    def pair_votes(self, comparison_id: int) -> list[PairVotes]:
        """Every voted pair with its voters' newest labels and its ruling, by pair id."""
        with self._db.read() as s:
            votes = repo.current_votes(s, comparison_id=comparison_id)
            rulings = repo.current_adjudications(s, comparison_id=comparison_id)
        by_pair: dict[int, dict[str, float]] = {}
        for (verdict_id, voter), label in votes.items():
            by_pair.setdefault(verdict_id, {})[voter] = label
        out = []
        for verdict_id in sorted(by_pair):
            r = rulings.get(verdict_id)
            out.append(PairVotes(verdict_id, by_pair[verdict_id], r.label if r else None,
                                 r.adjudicator if r else None, r.reason if r else ""))
        return out

    def labels(self, comparison_id: int) -> dict[int, float]:
        """Pair (verdict id) -> its adjudicated label, else the mean of its voters' newest
        labels."""
        return {p.verdict_id: p.label for p in self.pair_votes(comparison_id)}

    def adjudicate(self, comparison_id: int, verdict_id: int, label: str, *,
                   actor: Principal, reason: str = "") -> PairVotes:
        """Record the label of a pair whose voters disagreed (editors and admins); it becomes
        the pair's label in the votes dataset. Audited; a later ruling replaces it."""
        require(actor, Action.EDIT_CONSTITUTION)
        if label not in LABELS:
            raise ValidationError(f"Adjudicate A, B or tie, not {label!r}.")
        reason = reason.strip()[:2000]
        found = {p.verdict_id: p for p in self.pair_votes(comparison_id)}
        pair = found.get(verdict_id)
        if pair is None or not pair.disputed:
            disputed = ", ".join(f"#{p.verdict_id}" for p in found.values() if p.disputed)
            raise ValidationError(
                f"Pair #{verdict_id} of comparison {comparison_id} has no disagreement to "
                f"adjudicate (disputed pairs: {disputed or 'none'}).")
        with self._db.write() as s:
            repo.add_adjudication(s, comparison_id=comparison_id, verdict_id=verdict_id,
                                  adjudicator=actor.name, label=LABELS[label], reason=reason)
            append_event(s, actor=actor.name, action="comparison.adjudicate",
                         entity_type="comparison", entity_id=str(comparison_id),
                         payload={"pair": verdict_id, "label": label, "reason": reason,
                                  "votes": pair.votes})
        return PairVotes(verdict_id, pair.votes, LABELS[label], actor.name, reason)

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
