"""SL-CAI's critique → revision loop, batched over prompts, with every step in the critique log.

For each prompt: the model answers (unless a response is given); then for ``rounds`` rounds a
principle is sampled from (seed, the prompt's key, round) — the key is the caller's stable item
id (a prompt-set position), else a hash of the prompt, never its place in the batch — the model
critiques its last response against it, then revises. Each round is one batched ``generate``
call for all critiques and one for all revisions. In the raw layout every step stops at the
paper's turn markers (``prompts.RAW_STOPS``) and the text is cut there too, so an invented
``RevisionRequest:`` or ``Human:`` turn never becomes a fine-tuning target.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from backend.cai import prompts as P
from backend.cai.constitution import (
    ConstitutionContent,
    Principle,
    normalise_newlines,
    text_problem,
)
from backend.cai.sampling import eligible, item_key, round_principle
from backend.cai.steplog import StepKind, StepLogger, StepRecord, new_chain_id
from backend.engines.base import Engine, Generation, GenerationParams, Prompt
from backend.errors import ValidationError

MAX_PROMPT_CHARS = 20_000
MAX_ROUNDS = 16


@dataclass(frozen=True)
class LoopConfig:
    rounds: int = 4
    form: P.PromptForm = "chat"
    seed: int = 0
    principle_keys: tuple[str, ...] | None = None  # sample only among these
    use_few_shots: bool = True
    response_params: GenerationParams = field(default_factory=lambda: GenerationParams(256))
    critique_params: GenerationParams = field(default_factory=lambda: GenerationParams(256))
    revision_params: GenerationParams = field(default_factory=lambda: GenerationParams(256))

    def validate(self) -> None:
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ValidationError(f"rounds must be between 1 and {MAX_ROUNDS}.")

    def step_params(self, params: GenerationParams) -> GenerationParams:
        """``params`` with the raw layout's stop strings added (chat ends at the template's
        end-of-turn token)."""
        if self.form != "raw":
            return params
        return replace(params, stop=tuple(dict.fromkeys((*params.stop, *P.RAW_STOPS))))

    def trimmed(self, text: str) -> str:
        return P.cut_at_stops(text, P.RAW_STOPS) if self.form == "raw" else text


@dataclass(frozen=True)
class LoopContext:
    engine: Engine
    content: ConstitutionContent
    version_id: int | None
    logger: StepLogger


@dataclass(frozen=True)
class RoundResult:
    round: int
    principle: Principle
    critique: str
    revision: str
    critique_record: int
    revision_record: int


@dataclass(frozen=True)
class ChainResult:
    chain_id: str
    prompt: str
    response: str
    response_record: int | None
    rounds: tuple[RoundResult, ...]
    seed: int

    @property
    def final(self) -> str:
        return self.rounds[-1].revision if self.rounds else self.response


def clean_text(text: str, what: str, *, allow_empty: bool = False) -> str:
    """Normalise newlines and refuse text no model should get (clear message, no crash)."""
    if not isinstance(text, str):
        raise ValidationError(f"The {what} must be text.")
    text = normalise_newlines(text)
    if not allow_empty and not text.strip():
        raise ValidationError(f"The {what} is empty; type some text.")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValidationError(f"The {what} is {len(text):,} characters; the limit is "
                              f"{MAX_PROMPT_CHARS:,}.")
    problem = text_problem(text, multiline=True)
    if problem:
        raise ValidationError(f"The {what} {problem}.")
    return text


def _record(ctx: LoopContext, kind: StepKind, chain_id: str, gen: Generation,
            params: GenerationParams, *, round: int | None = None,
            principle_key: str | None = None, parent_id: int | None = None) -> StepRecord:
    return StepRecord(kind=kind, chain_id=chain_id, prompt_sent=gen.prompt_sent, output=gen.text,
                      engine=ctx.engine.info, params=params.as_dict(),
                      constitution_version_id=ctx.version_id, principle_key=principle_key,
                      round=round, parent_id=parent_id, seed=params.seed,
                      latency_s=gen.latency_s)


def _generate(ctx: LoopContext, config: LoopConfig, prompts: list[Prompt],
              params: GenerationParams) -> list[Generation]:
    gens = ctx.engine.generate(prompts, params)
    return [replace(g, text=config.trimmed(g.text)) for g in gens]


def run_critique_loop(ctx: LoopContext, prompts: Sequence[str], config: LoopConfig,
                      responses: Sequence[str] | None = None,
                      keys: Sequence[str | int] | None = None) -> list[ChainResult]:
    """``keys``: a stable id per prompt (e.g. its position in the prompt set); the principle of
    each round derives from (config.seed, key, round)."""
    config.validate()
    texts = [clean_text(p, "prompt") for p in prompts]
    if not texts:
        return []
    if keys is not None and len(keys) != len(texts):
        raise ValidationError("Give one key per prompt.")
    item_keys = list(keys) if keys is not None else [item_key(t) for t in texts]
    pool = eligible(ctx.content, config.principle_keys)
    chains = [new_chain_id() for _ in texts]
    response_params = config.step_params(config.response_params)
    critique_params = config.step_params(config.critique_params)
    revision_params = config.step_params(config.revision_params)
    if responses is None:
        gens = _generate(ctx, config, [P.response_prompt(t, config.form) for t in texts],
                         response_params)
        current = [g.text for g in gens]
        ids = ctx.logger.log([_record(ctx, "response", c, g, response_params)
                              for c, g in zip(chains, gens, strict=True)])
        response_ids: list[int | None] = list(ids)
    else:
        current = [clean_text(r, "response", allow_empty=True) for r in responses]
        response_ids = [None] * len(texts)
    parents = list(response_ids)
    first = list(current)
    rounds: list[list[RoundResult]] = [[] for _ in texts]
    for r in range(1, config.rounds + 1):
        chosen = [round_principle(pool, config.seed, key, r) for key in item_keys]
        crit_prompts = [P.critique_prompt(P.Exchange(t, cur), p, ctx.content.few_shots,
                                          config.form, use_few_shots=config.use_few_shots)
                        for t, cur, p in zip(texts, current, chosen, strict=True)]
        crits = _generate(ctx, config, crit_prompts, critique_params)
        crit_ids = ctx.logger.log([
            _record(ctx, "critique", chains[i], g, critique_params, round=r,
                    principle_key=chosen[i].key, parent_id=parents[i])
            for i, g in enumerate(crits)])
        rev_prompts = [P.revision_prompt(cp, g.text, p)
                       for cp, g, p in zip(crit_prompts, crits, chosen, strict=True)]
        revs = _generate(ctx, config, rev_prompts, revision_params)
        rev_ids = ctx.logger.log([
            _record(ctx, "revision", chains[i], g, revision_params, round=r,
                    principle_key=chosen[i].key, parent_id=crit_ids[i])
            for i, g in enumerate(revs)])
        for i in range(len(texts)):
            rounds[i].append(RoundResult(r, chosen[i], crits[i].text, revs[i].text,
                                         crit_ids[i], rev_ids[i]))
            current[i] = revs[i].text
            parents[i] = rev_ids[i]
    return [ChainResult(chains[i], texts[i], first[i], response_ids[i], tuple(rounds[i]),
                        config.seed) for i in range(len(texts))]


@dataclass(frozen=True)
class LoopEvent:
    """A streaming update: ``text`` is the step's text so far; ``record_id`` is set when done."""

    kind: StepKind
    round: int | None
    principle: Principle | None
    text: str
    done: bool
    record_id: int | None = None


def stream_critique_loop(ctx: LoopContext, prompt: str, config: LoopConfig,
                         response: str | None = None) -> Iterator[LoopEvent]:
    """One prompt, token by token: the response, then each round's critique and revision."""
    config.validate()
    text = clean_text(prompt, "prompt")
    pool = eligible(ctx.content, config.principle_keys)
    chain = new_chain_id()
    last = _StepOutcome()
    if response is None:
        step = P.response_prompt(text, config.form)
        yield from _stream_step(ctx, step, config.step_params(config.response_params),
                                "response", chain, None, None, last)
    else:
        last.text = clean_text(response, "response", allow_empty=True)
    for r in range(1, config.rounds + 1):
        current = last.text
        principle = round_principle(pool, config.seed, item_key(text), r)
        crit_prompt = P.critique_prompt(P.Exchange(text, current), principle,
                                        ctx.content.few_shots, config.form,
                                        use_few_shots=config.use_few_shots)
        yield from _stream_step(ctx, crit_prompt, config.step_params(config.critique_params),
                                "critique", chain, r, principle, last)
        rev_prompt = P.revision_prompt(crit_prompt, last.text, principle)
        yield from _stream_step(ctx, rev_prompt, config.step_params(config.revision_params),
                                "revision", chain, r, principle, last)


@dataclass
class _StepOutcome:
    """The text and record id of the step that finished last (the next step's parent)."""

    text: str = ""
    record_id: int | None = None


def _stream_step(ctx: LoopContext, prompt: Prompt, params: GenerationParams, kind: StepKind,
                 chain: str, round_: int | None, principle: Principle | None,
                 last: _StepOutcome) -> Iterator[LoopEvent]:
    start = time.perf_counter()
    text = ""
    for delta in ctx.engine.stream(prompt, params):
        text += delta
        yield LoopEvent(kind, round_, principle, text, False)
    text = P.cut_at_stops(text, params.stop)  # what an engine honouring the stops returns
    gen = Generation(text=text, prompt_sent=P.sent_text(ctx.engine, prompt),
                     latency_s=time.perf_counter() - start)
    [record_id] = ctx.logger.log([_record(ctx, kind, chain, gen, params, round=round_,
                                          principle_key=principle.key if principle else None,
                                          parent_id=last.record_id)])
    last.text, last.record_id = text, record_id
    yield LoopEvent(kind, round_, principle, text, True, record_id)
