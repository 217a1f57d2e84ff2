"""The ``scripted`` engine: deterministic answers without a model, for tests, benchmarks and
dry runs of a pipeline (like Inspect's ``mockllm``).

``generate`` answers ``out<n>`` (a counter over every prompt it has answered); ``score_choices``
prefers the option whose text contains ``good`` (p(A) = 0.8 when it is option A, 0.2 when it is
option B, else 0.5), shifted by ``bias_first`` to model position bias. Every call is recorded
(``generate_calls``, ``score_calls``) unless ``record_calls`` is off (long benchmark runs).

Tests and benchmarks change one behaviour by subclassing and overriding a hook: ``answer``
(the text of one generation), ``preferred_word`` (what makes an option preferred), ``p_a``
(p(A) for one rendered prompt) or ``score_one`` (the whole ``ChoiceScores``).

It is an engine kind of the product (``CSTUDIO_ENGINE=scripted``), chosen only explicitly:
``auto`` never picks it. Its outputs are meaningless, so it is marked as a demo engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backend.engines.base import ChoiceScores, EngineInfo, Generation, Health

if TYPE_CHECKING:
    from backend.engines.base import GenerationParams, Prompt

MODEL_NAME = "scripted"


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one text (the same rendering the CAI core logs for engines that do not
    report their own)."""
    if prompt.text is not None:
        return prompt.text
    assert prompt.messages is not None
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in prompt.messages)


def choice_scores(p_a: float, sent: str) -> ChoiceScores:
    """Scores of the two choices A and B with p(A) = ``p_a`` (kept within 0.01 … 0.99)."""
    p_a = min(max(p_a, 0.01), 0.99)
    return ChoiceScores({"A": p_a, "B": 1 - p_a}, {"A": math.log(p_a), "B": math.log(1 - p_a)},
                        sent)


@dataclass
class ScriptedEngine:
    """A deterministic engine without a model (see the module docstring)."""

    bias_first: float = 0.0
    info: EngineInfo = field(
        default_factory=lambda: EngineInfo("scripted", MODEL_NAME, is_demo=True))
    record_calls: bool = True
    generate_calls: list[list[Prompt]] = field(default_factory=list)
    score_calls: list[list[Prompt]] = field(default_factory=list)
    counter: int = 0

    # --- the engine protocol ------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        if self.record_calls:
            self.generate_calls.append(list(prompts))
        out = []
        for p in prompts:
            self.counter += 1
            sent = prompt_text(p)
            out.append(Generation(text=self.answer(self.counter, sent), prompt_sent=sent))
        return out

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        [gen] = self.generate([prompt], params)
        yield from (gen.text[:3], gen.text[3:])

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        if self.record_calls:
            self.score_calls.append(list(prompts))
        return [self.score_one(prompt_text(p)) for p in prompts]

    def health(self) -> Health:
        return Health(True, "scripted", (self.info.model,))

    def close(self) -> None:
        pass

    # --- hooks ----------------------------------------------------------------------------

    def answer(self, n: int, prompt_text: str) -> str:
        """The text of the ``n``-th generation."""
        return f"out{n}"

    def score_one(self, text: str) -> ChoiceScores:
        return choice_scores(self.p_a(text) + self.bias_first, text)

    def p_a(self, text: str) -> float:
        """p(A) before position bias: 0.8 when option A holds the preferred word, 0.2 when
        option B does, else 0.5. The question asked is the last one in the prompt (few-shot
        examples come first)."""
        word = self.preferred_word(text)
        a_part = _option(text, "A")
        b_part = _option(text, "B")
        return 0.8 if word in a_part else 0.2 if word in b_part else 0.5

    def preferred_word(self, prompt_text: str) -> str:
        """The word that makes an option preferred; subclasses vary it with the prompt."""
        return "good"


def _option(text: str, letter: str) -> str:
    """The text of option ``(A) [[[…]]]`` or ``(B) …`` of the last question ("" if none)."""
    _, sep, tail = text.rpartition(f"({letter}) [[[")
    return tail.split("]]]", 1)[0] if sep else ""
