"""A judge for engines that give no logprobs: ask the A/B question, let the model write a short
answer, and read ``(A)`` or ``(B)`` from it. The result is a HARD label (p(A) = 1 or 0); an
answer that names neither choice, or both, is *unparsed*: it counts as a tie (0.5) and is
marked as such wherever verdicts are shown, never a silent 0.5."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from backend.engines.base import ChoiceScores, Engine, GenerationParams, Prompt

JudgeMode = Literal["scored", "parsed"]
JUDGE_MODES: tuple[str, ...] = ("scored", "parsed")
ANSWER_PARAMS = GenerationParams(max_tokens=8, temperature=0.0)
# the question ends in "The answer is: (", so the answer usually starts with the letter
_LEADING = re.compile(r"^\s*\(?\s*([AB])\s*(?:\)|\]|$|[\s.,:;!])")
_BRACKETED = re.compile(r"\(\s*([AB])\s*\)")


def parse_choice(answer: str) -> str | None:
    """``A`` or ``B`` as the answer states it, or None when it names neither (or both)."""
    head = _LEADING.match(answer)
    if head:
        return head.group(1)
    found = set(_BRACKETED.findall(answer))
    return found.pop() if len(found) == 1 else None


def hard_scores(answer: str, prompt_sent: str, latency_s: float = 0.0) -> ChoiceScores:
    """The parsed answer as choice scores: 1/0, or 0.5/0.5 when unparsed (no logprobs)."""
    choice = parse_choice(answer)
    p_a = 0.5 if choice is None else 1.0 if choice == "A" else 0.0
    return ChoiceScores({"A": p_a, "B": 1.0 - p_a}, {"A": None, "B": None}, prompt_sent,
                        latency_s)


def parsed_choices(engine: Engine, prompts: Sequence[Prompt],
                   params: GenerationParams = ANSWER_PARAMS
                   ) -> tuple[list[ChoiceScores], list[str | None]]:
    """One short greedy answer per question, parsed; returns the scores and the answers."""
    gens = engine.generate(list(prompts), params)
    scores = [hard_scores(g.text, g.prompt_sent, g.latency_s) for g in gens]
    return scores, [g.text for g in gens]


class _Hard(Protocol):
    @property
    def judge(self) -> str: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def unparsed(self) -> bool: ...


def hard_label_fields(variant: _Hard) -> dict[str, object]:
    """What a stored verdict variant adds for the parsed judge (nothing for soft labels)."""
    if variant.judge != "parsed":
        return {}
    return {"judge": "parsed", "hard": True, "answer": (variant.answer or "")[:500],
            "unparsed": variant.unparsed}


def hard_counts(variants: Sequence[dict[str, object]]) -> tuple[bool, int]:
    """(any variant a hard parsed label, how many were unparsed) of stored variant dicts."""
    hard = any(v.get("hard") for v in variants)
    return hard, sum(1 for v in variants if v.get("unparsed"))
