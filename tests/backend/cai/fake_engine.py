"""A scripted engine for CAI-core unit tests: deterministic, records every call."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from backend.cai.prompts import render
from backend.engines.base import (
    ChoiceScores,
    EngineInfo,
    Generation,
    GenerationParams,
    Health,
    Prompt,
)


@dataclass
class ScriptedEngine:
    """generate(): "<n>:<last words of the prompt>"; score_choices(): prefers the option whose
    text contains ``good`` (p = 0.8), else 0.5 — unless ``bias_first`` adds position bias."""

    bias_first: float = 0.0
    info: EngineInfo = field(default_factory=lambda: EngineInfo("tiny", "scripted", True))
    generate_calls: list[list[Prompt]] = field(default_factory=list)
    score_calls: list[list[Prompt]] = field(default_factory=list)
    counter: int = 0

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        self.generate_calls.append(list(prompts))
        out = []
        for p in prompts:
            self.counter += 1
            out.append(Generation(text=f"out{self.counter}", prompt_sent=render(p)))
        return out

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        [gen] = self.generate([prompt], params)
        yield from (gen.text[:3], gen.text[3:])

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        self.score_calls.append(list(prompts))
        out = []
        for p in prompts:
            text = render(p)
            word = self.preferred_word(text)
            # the question asked is the last one (few-shot examples come first)
            a_part = text.rsplit("(A) [[[", 1)[1].split("]]]", 1)[0]
            b_part = text.rsplit("(B) [[[", 1)[1].split("]]]", 1)[0]
            p_a = 0.8 if word in a_part else 0.2 if word in b_part else 0.5
            p_a = min(max(p_a + self.bias_first, 0.01), 0.99)
            out.append(ChoiceScores({"A": p_a, "B": 1 - p_a},
                                    {"A": math.log(p_a), "B": math.log(1 - p_a)}, text))
        return out

    def preferred_word(self, prompt_text: str) -> str:
        """The word that makes an option preferred; subclasses vary it with the prompt."""
        return "good"

    def health(self) -> Health:
        return Health(True, "scripted")

    def close(self) -> None:
        pass
