"""What a comparison found: win rates, Bradley–Terry and Elo ratings with bootstrap intervals
(over all prompts, per prompt tag such as harmless/helpful, and per principle), and the judged
pairs for the side-by-side browser (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.cai.parsed_judge import hard_counts
from backend.cai.ratings import Interval, Match, Ratings, mean_interval, rate
from backend.errors import ValidationError
from backend.services.comparisons import ComparisonInfo, ComparisonService
from db import comparison_repo as repo
from db.comparison_models import ComparisonVerdict
from db.engine import Database

HARMLESS_TAGS = ("harmless", "harmlessness", "harmful", "red-team", "red_team")
HELPFUL_TAGS = ("helpful", "helpfulness")


@dataclass(frozen=True)
class PolicyRating:
    index: int
    ref: str
    label: str
    win_rate: Interval
    bt: Interval
    elo: Interval


@dataclass(frozen=True)
class PairwiseRate:
    a: int
    b: int
    win_rate: Interval  # a's mean score against b


@dataclass(frozen=True)
class ComparisonReport:
    comparison: ComparisonInfo
    verdicts: int
    ratings: list[PolicyRating]
    pairwise: list[PairwiseRate]
    # "harmless" / "helpful" -> each policy's Elo on the prompts of that kind
    by_axis: dict[str, list[Interval]]
    # principle key -> each policy's Elo from that principle's verdicts
    by_principle: dict[str, list[Interval]]
    n_boot: int
    # reward model reference -> each policy's mean score of its responses
    rewards: dict[str, list[Interval]] = field(default_factory=dict)
    judge: str = "scored"  # parsed: hard labels read from written answers (no logprobs)
    unparsed: int = 0  # parsed judge: verdicts with an answer naming neither choice

    @property
    def judge_note(self) -> str:
        return judge_note(self.judge, self.unparsed, self.verdicts)


def judge_note(judge: str, unparsed: int, verdicts: int) -> str:
    """How the verdicts were made, in one plain-text line (UI, CLI and exports say the same)."""
    if judge != "parsed":
        return "soft labels (p(A) from the judge's logprobs)"
    return (f"HARD labels parsed from the judge's written answer (no logprobs): p(A) is 1 or 0; "
            f"{unparsed} of {verdicts} verdicts had an unparseable answer, counted as a tie "
            "(0.5)")


@dataclass(frozen=True)
class RatingChange:
    ref: str
    label: str
    before: Interval | None  # None: the policy was not in the earlier comparison
    after: Interval
    win_rate_before: Interval | None
    win_rate_after: Interval

    @property
    def elo_delta(self) -> float | None:
        return None if self.before is None else self.after.value - self.before.value


@dataclass(frozen=True)
class JudgedPair:
    verdict_id: int  # the pair's id (votes name it)
    prompt_index: int
    prompt: str
    tags: tuple[str, ...]
    policy_a: str
    policy_b: str
    response_a: str
    response_b: str
    p_a: float
    per_principle: dict[str, float]
    variants: list[dict[str, object]]
    chain_id: str
    record_ids: list[int]

    @property
    def hard(self) -> bool:
        return hard_counts(self.variants)[0]

    @property
    def unparsed(self) -> int:
        return hard_counts(self.variants)[1]


def _axis(tags: tuple[str, ...]) -> str | None:
    if any(t in HARMLESS_TAGS for t in tags):
        return "harmless"
    if any(t in HELPFUL_TAGS for t in tags):
        return "helpful"
    return None


def _ratings(n: int, matches: list[Match], n_boot: int, seed: int) -> Ratings | None:
    try:
        return rate(n, matches, n_boot=n_boot, seed=seed, anchor=0)
    except ValidationError:
        return None


class ComparisonReports:
    def __init__(self, db: Database, comparisons: ComparisonService) -> None:
        self._db = db
        self._comparisons = comparisons

    def report(self, comparison_id: int, *, n_boot: int = 1000, seed: int = 0
               ) -> ComparisonReport:
        info = self._comparisons.get(comparison_id)
        with self._db.read() as s:
            rows = list(repo.verdicts(s, comparison_id=comparison_id))
            scored = [(r.policy_index, dict(r.reward_scores))
                      for r in repo.responses(s, comparison_id=comparison_id)]
        n = len(info.policies)
        rewards = {ref: [mean_interval([sc[ref] for p, sc in scored if p == i and ref in sc],
                                       n_boot=n_boot, seed=seed) for i in range(n)]
                   for ref in info.config.reward_models}
        matches = [Match(r.policy_a, r.policy_b, r.p_a, r.prompt_index) for r in rows]
        overall = _ratings(n, matches, n_boot, seed)
        if overall is None:
            raise ValidationError(f"Comparison {comparison_id} has no verdicts yet; run it "
                                  "(or wait for its judging phase).")
        ratings = [PolicyRating(i, p.ref, p.label, overall.win_rate[i], overall.bt[i],
                                overall.elo[i]) for i, p in enumerate(info.policies)]
        pairwise = [PairwiseRate(a, b, overall.pairwise[(a, b)])
                    for a, b in info.pairs if (a, b) in overall.pairwise]
        by_axis: dict[str, list[Interval]] = {}
        for axis in ("harmless", "helpful"):
            subset = [m for m in matches if _axis(info.prompts[m.group].tags) == axis]
            found = _ratings(n, subset, n_boot, seed) if subset else None
            if found is not None:
                by_axis[axis] = list(found.elo)
        unparsed = sum(1 for r in rows if hard_counts(list(r.variants))[1])
        return ComparisonReport(info, len(rows), ratings, pairwise, by_axis,
                                self._by_principle(n, rows, min(n_boot, 300), seed), n_boot,
                                rewards, info.config.judge, unparsed)

    def changes(self, comparison_id: int, earlier_id: int, *, n_boot: int = 1000
                ) -> list[RatingChange]:
        """Each policy's Elo and win rate now and in an earlier comparison (policies matched by
        reference; both rated against their own first policy)."""
        now = self.report(comparison_id, n_boot=n_boot)
        then = self.report(earlier_id, n_boot=n_boot)
        old = {r.ref: r for r in then.ratings}
        return [RatingChange(r.ref, r.label, old[r.ref].elo if r.ref in old else None, r.elo,
                             old[r.ref].win_rate if r.ref in old else None, r.win_rate)
                for r in now.ratings]

    @staticmethod
    def _by_principle(n: int, rows: list[ComparisonVerdict], n_boot: int, seed: int
                      ) -> dict[str, list[Interval]]:
        per: dict[str, list[Match]] = {}
        for r in rows:
            for key, p in r.per_principle.items():
                per.setdefault(key, []).append(Match(r.policy_a, r.policy_b, float(p),
                                                     r.prompt_index))
        out: dict[str, list[Interval]] = {}
        for key in sorted(per):
            found = _ratings(n, per[key], n_boot, seed)
            if found is not None:
                out[key] = list(found.elo)
        return out

    def pairs(self, comparison_id: int, *, offset: int = 0, limit: int = 10,
              policy: int | None = None) -> tuple[list[JudgedPair], int]:
        """Judged pairs in prompt order (optionally only those involving ``policy``), and how
        many there are in all."""
        info = self._comparisons.get(comparison_id)
        with self._db.read() as s:
            texts = {(r.policy_index, r.prompt_index): r.response
                     for r in repo.responses(s, comparison_id=comparison_id)}
            rows = [r for r in repo.verdicts(s, comparison_id=comparison_id)
                    if policy is None or policy in (r.policy_a, r.policy_b)]
        out = []
        for r in rows[offset:offset + limit]:
            prompt = info.prompts[r.prompt_index]
            assert r.id is not None
            out.append(JudgedPair(
                r.id, r.prompt_index, prompt.text, prompt.tags, info.policies[r.policy_a].label,
                info.policies[r.policy_b].label, texts.get((r.policy_a, r.prompt_index), ""),
                texts.get((r.policy_b, r.prompt_index), ""), r.p_a, dict(r.per_principle),
                list(r.variants), r.chain_id, list(r.record_ids)))
        return out, len(rows)
