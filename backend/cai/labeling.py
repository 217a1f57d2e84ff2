"""AI preference labels (RLAIF) for (prompt, response A, response B).

Without CoT, a verdict is one scoring pass: the normalised probabilities of the next token
``A`` vs ``B`` after ``The answer is: (``. With CoT the labeller first writes its reasoning
(one batched generation), then the same probability is read after it. Beyond the paper: both
orders (A,B) and (B,A) are scored and averaged, and k sampled principles can be ensembled. With
CoT the *final* label (after averaging) is clamped (the paper: 40–60 %). The constitution's
``choice`` / ``choice_cot`` few-shot examples come first unless switched off. An item's
principles are derived from (seed, item key) only (see ``sampling``). A prompt the engine could
not score (``ChoiceScores.unscorable``) leaves that variant out; an item with no scored variant
is returned with ``unscorable`` set. Every variant is recorded in the critique log.

For engines that give no logprobs, ``judge="parsed"`` asks the same question, lets the model
write a short answer and parses ``(A)``/``(B)`` from it (``backend.cai.parsed_judge``): a HARD
label (p = 1 or 0). An answer that names neither is recorded as ``unparsed`` and counts as a
tie (0.5) that every view marks as such. Hard labels are never clamped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from backend.cai import prompts as P
from backend.cai.constitution import ConstitutionContent, Principle
from backend.cai.critique_loop import clean_text
from backend.cai.parsed_judge import JUDGE_MODES, JudgeMode, parsed_choices
from backend.cai.sampling import eligible, item_key, label_principles
from backend.cai.steplog import StepLogger, StepRecord, new_chain_id
from backend.engines.base import ChoiceScores, Engine, GenerationParams, Prompt
from backend.errors import ValidationError

Order = Literal["AB", "BA"]
CHOICES: tuple[str, str] = ("A", "B")


@dataclass(frozen=True)
class PairItem:
    prompt: str
    response_a: str
    response_b: str
    key: str | int | None = None  # the dataset item id / prompt position; default: a hash

    def stable_key(self) -> str | int:
        return self.key if self.key is not None else item_key(self.prompt, self.response_a,
                                                              self.response_b)


@dataclass(frozen=True)
class LabelConfig:
    cot: bool = False
    both_orders: bool = True
    k_principles: int = 1
    principle_keys: tuple[str, ...] | None = None
    cot_clamp: tuple[float, float] | None = (0.4, 0.6)
    form: P.PromptForm = "chat"
    seed: int = 0
    use_few_shots: bool = True  # the constitution's choice / choice_cot examples, if any
    judge: JudgeMode = "scored"  # scored: soft labels from logprobs; parsed: hard labels
    cot_params: GenerationParams = field(
        default_factory=lambda: GenerationParams(max_tokens=192, stop=P.COT_STOPS))

    def validate(self) -> None:
        if self.cot_clamp is not None:
            lo, hi = self.cot_clamp
            if not 0.0 <= lo <= 0.5 <= hi <= 1.0:
                raise ValidationError("The CoT clamp must satisfy 0 ≤ low ≤ 0.5 ≤ high ≤ 1.")
        if not 1 <= self.k_principles <= 64:
            raise ValidationError("The number of principles to ensemble must be 1 to 64.")
        if self.judge not in JUDGE_MODES:
            raise ValidationError(f"Judge mode {self.judge!r}: use scored (logprobs) or parsed "
                                  "(a short answer, parsed for (A) or (B)).")


@dataclass(frozen=True)
class VariantVerdict:
    """One scored question: a principle and an order. ``p_a`` is always about the original A."""

    principle_key: str
    order: Order
    p_a: float
    p_first: float  # probability of the response shown first, as the model gave it
    clamped: bool
    cot: str | None
    record_id: int
    cot_record_id: int | None
    bounded: tuple[str, ...] = ()  # choices only estimated (absent from a server's top-k)
    judge: JudgeMode = "scored"  # parsed: a hard label read from the model's written answer
    answer: str | None = None  # the parsed judge's written answer
    unparsed: bool = False  # the answer named neither (A) nor (B): counted as a tie (0.5)


@dataclass(frozen=True)
class Verdict:
    chain_id: str
    p_a: float  # after the CoT clamp; nan when unscorable
    variants: tuple[VariantVerdict, ...]
    seed: int
    clamped: bool = False  # the CoT clamp moved the averaged label
    unscorable: str | None = None  # why no variant of this item could be scored
    # the engine's top tokens as evidence when unscorable
    top_tokens: dict[str, float] = field(default_factory=dict)
    judge: JudgeMode = "scored"

    @property
    def scored(self) -> bool:
        return self.unscorable is None

    @property
    def unparsed(self) -> int:
        """Variants whose written answer named neither choice (parsed judge only)."""
        return sum(1 for v in self.variants if v.unparsed)

    @property
    def winner(self) -> str:
        return "A" if self.p_a > 0.5 else "B" if self.p_a < 0.5 else "tie"

    @cached_property  # read several times per verdict when it is stored
    def per_principle(self) -> dict[str, float]:
        groups: dict[str, list[float]] = {}
        for v in self.variants:
            groups.setdefault(v.principle_key, []).append(v.p_a)
        return {k: _mean(ps) for k, ps in groups.items()}

    @property
    def position_consistent(self) -> bool | None:
        """Whether swapping A and B left every principle's verdict on the same side."""
        results = []
        for key in self.per_principle:
            sides = {v.order: v.p_a > 0.5 for v in self.variants if v.principle_key == key}
            if len(sides) == 2:
                results.append(sides["AB"] == sides["BA"])
        return all(results) if results else None


@dataclass(frozen=True)
class _Job:
    item: int
    principle: Principle
    order: Order


def _shown(item: PairItem, order: Order) -> tuple[str, str]:
    return (item.response_a, item.response_b) if order == "AB" else (item.response_b,
                                                                      item.response_a)


def label_pairs(engine: Engine, content: ConstitutionContent, version_id: int | None,
                items: Sequence[PairItem], config: LabelConfig, logger: StepLogger
                ) -> list[Verdict]:
    config.validate()
    clean = [PairItem(clean_text(i.prompt, "prompt"), clean_text(i.response_a, "response A"),
                      clean_text(i.response_b, "response B"), i.key) for i in items]
    if not clean:
        return []
    pool = eligible(content, config.principle_keys)
    orders: tuple[Order, ...] = ("AB", "BA") if config.both_orders else ("AB",)
    jobs = [_Job(i, p, o) for i, item in enumerate(clean)
            for p in label_principles(pool, config.k_principles, config.seed, item.stable_key())
            for o in orders]
    shot_kind = "choice_cot" if config.cot else "choice"
    used = P.shots_of(content.few_shots, shot_kind) if config.use_few_shots else []
    shots = [f for _, f in used]
    memo: P.ShotMemo = {}  # the examples are built once per principle, not once per question
    chains = [new_chain_id() for _ in clean]
    reasoning: list[str | None] = [None] * len(jobs)
    cot_ids: list[int | None] = [None] * len(jobs)
    params: dict[str, object] = {
        "cot": config.cot, "both_orders": config.both_orders,
        "k_principles": config.k_principles, "form": config.form,
        "cot_clamp": list(config.cot_clamp) if config.cot_clamp else None,
        "clamp_applies_to": "the averaged label", "seed": config.seed,
        "use_few_shots": config.use_few_shots, "judge": config.judge,
        "few_shots": {"kind": shot_kind, "positions": [i for i, _ in used]}}
    if config.cot:
        cot_prompts = [P.cot_prompt(clean[j.item].prompt, *_shown(clean[j.item], j.order),
                                    j.principle, config.form, shots=shots, memo=memo)
                       for j in jobs]
        gens = engine.generate(cot_prompts, config.cot_params)
        reasoning = [_trim_reasoning(g.text) for g in gens]
        cot_ids = list(logger.log([
            _step(engine, "cot", chains[j.item], g.prompt_sent, g.text, version_id, j,
                  {**config.cot_params.as_dict(), **params}, g.latency_s, None, None)
            for j, g in zip(jobs, gens, strict=True)]))
    score_prompts: list[Prompt] = [
        P.choice_prompt(clean[j.item].prompt, *_shown(clean[j.item], j.order), j.principle,
                        config.form, reasoning=r, shots=shots, memo=memo)
        for j, r in zip(jobs, reasoning, strict=True)]
    answers: list[str | None] = [None] * len(jobs)
    if config.judge == "parsed":
        scores, answers = parsed_choices(engine, score_prompts)
    else:
        scores = engine.score_choices(score_prompts, CHOICES)
    ids = logger.log([
        _step(engine, "verdict", chains[j.item], s.prompt_sent, _verdict_output(s, a),
              version_id, j, params, s.latency_s, cot_id, _probabilities(s, j.order, a))
        for j, s, cot_id, a in zip(jobs, scores, cot_ids, answers, strict=True)])
    by_item: list[list[VariantVerdict]] = [[] for _ in clean]
    why: list[ChoiceScores | None] = [None] * len(clean)
    for j, s, r, cot_id, rid, a in zip(jobs, scores, reasoning, cot_ids, ids, answers,
                                       strict=True):
        if not s.scored:
            why[j.item] = why[j.item] or s
            continue
        p_first = s.probs["A"]
        p_a = p_first if j.order == "AB" else 1.0 - p_first
        by_item[j.item].append(VariantVerdict(j.principle.key, j.order, p_a, p_first, False,
                                              r, rid, cot_id, s.bounded, config.judge, a,
                                              a is not None and p_first == 0.5))
    return [_verdict(chains[i], vs, why[i], config) for i, vs in enumerate(by_item)]


def _mean(values: list[float]) -> float:
    """statistics.fmean's value (fsum / n) without its per-item overhead."""
    return math.fsum(values) / len(values)


def _verdict(chain: str, variants: list[VariantVerdict], why: ChoiceScores | None,
             config: LabelConfig) -> Verdict:
    if not variants:
        return Verdict(chain, math.nan, (), config.seed,
                       unscorable=(why.unscorable if why else None) or "not scored",
                       top_tokens=dict(why.top_tokens) if why else {}, judge=config.judge)
    mean = _mean([v.p_a for v in variants])
    p_a = mean
    # the paper clamps the final CoT label (soft labels only: hard labels stay hard)
    if config.cot and config.cot_clamp is not None and config.judge == "scored":
        lo, hi = config.cot_clamp
        p_a = min(max(mean, lo), hi)
    return Verdict(chain, p_a, tuple(variants), config.seed, clamped=p_a != mean,
                   judge=config.judge)


def _verdict_output(s: ChoiceScores, answer: str | None = None) -> str:
    if not s.scored:
        return f"unscorable: {s.unscorable}"
    if answer is not None:  # the parsed judge: its own words, and what was read from them
        read = "unparseable (counted as a tie)" if s.probs["A"] == 0.5 else (
            "A" if s.probs["A"] > 0.5 else "B")
        return f"{answer}\n[parsed: {read}]"
    return "A" if s.probs["A"] >= 0.5 else "B"


def _probabilities(s: ChoiceScores, order: Order, answer: str | None = None
                   ) -> dict[str, object]:
    out: dict[str, object] = {"probs": s.probs, "logprobs": s.logprobs, "order": order}
    if answer is not None:
        out.update(judge="parsed", hard=True, answer=answer, unparsed=s.probs.get("A") == 0.5)
    if s.scored:
        p_first = s.probs["A"]
        out.update(p_first=p_first, p_a=p_first if order == "AB" else 1.0 - p_first)
    else:
        out["unscorable"] = s.unscorable
    if s.bounded:
        out["bounded"] = list(s.bounded)
    if s.top_tokens:
        out["top_tokens"] = s.top_tokens
    return out


def _trim_reasoning(text: str) -> str:
    """Cut the reasoning where it starts announcing an answer; we append our own prefix."""
    cut = len(text)
    for stop in P.COT_STOPS:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut].strip()


def _step(engine: Engine, kind: Literal["cot", "verdict"], chain: str, prompt_sent: str,
          output: str, version_id: int | None, job: _Job, params: dict[str, object],
          latency_s: float, parent: int | None, probabilities: dict[str, object] | None
          ) -> StepRecord:
    return StepRecord(kind=kind, chain_id=chain, prompt_sent=prompt_sent, output=output,
                      engine=engine.info, params=params, constitution_version_id=version_id,
                      principle_key=job.principle.key, parent_id=parent,
                      probabilities=probabilities, latency_s=latency_s)

