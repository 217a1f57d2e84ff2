"""The parse-the-answer judge (issue 16 point 9): hard labels from a short written answer,
unparseable answers recorded as such (a marked tie, never a silent 0.5), no CoT clamp."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from backend.cai.constitution import ConstitutionContent, Principle
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.parsed_judge import hard_counts, hard_label_fields, parse_choice
from backend.cai.prompts import render
from backend.cai.steplog import MemoryLogger
from backend.engines.base import Generation, GenerationParams, Prompt
from backend.engines.scripted import ScriptedEngine
from backend.errors import ValidationError


@pytest.mark.parametrize(("answer", "choice"), [
    ("A) is better", "A"), ("B", "B"), (" B).", "B"), ("(A)", "A"), ("A", "A"),
    ("I think the answer is (B) here", "B"), ("Both (A) and (B)", None), ("Neither", None),
    ("", None), ("Absolutely", None), ("Because", None)])
def test_parse_choice(answer: str, choice: str | None) -> None:
    assert parse_choice(answer) == choice


@dataclass
class AnsweringEngine(ScriptedEngine):
    """Writes ``A)`` when the response shown first contains ``word``, ``B)`` when the second
    does, and "hmm" otherwise (or when the question contains ``mumble``); score_choices is
    never used."""

    word: str = "good"
    mumble: str = "\x00"

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        self.generate_calls.append(list(prompts))
        out = []
        for p in prompts:
            text = render(p)
            a = text.rsplit("(A) [[[", 1)[1].split("]]]", 1)[0]
            b = text.rsplit("(B) [[[", 1)[1].split("]]]", 1)[0]
            answer = "A) clearly" if self.word in a else "B)" if self.word in b else "hmm"
            out.append(Generation("hmm" if self.mumble in text else answer, text))
        return out

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list:  # type: ignore[type-arg]
        raise AssertionError("the parsed judge must not ask for logprobs")


def _content() -> ConstitutionContent:
    return ConstitutionContent(principles=(Principle(
        key="p1", title="Harmless", critique_request="c", revision_request="r",
        choice_instruction="Which is more harmless?"),))


def test_parsed_judge_gives_hard_labels_and_marks_unparsed() -> None:
    logger = MemoryLogger()
    items = [PairItem("q", "a good answer", "bad"), PairItem("q", "bad", "a good one"),
             PairItem("q", "meh", "meh too")]
    config = LabelConfig(judge="parsed", cot=False, both_orders=True)
    verdicts = label_pairs(AnsweringEngine(), _content(), 1, items, config, logger)
    assert [v.p_a for v in verdicts] == [1.0, 0.0, 0.5]
    assert all(v.judge == "parsed" and v.scored for v in verdicts)
    assert [v.unparsed for v in verdicts] == [0, 0, 2]  # the tie says it is unparseable
    assert all(x.p_first in (0.0, 1.0) for x in verdicts[0].variants)
    stored = [hard_label_fields(x) for x in verdicts[2].variants]
    assert stored[0] == {"judge": "parsed", "hard": True, "answer": "hmm", "unparsed": True}
    assert hard_counts(stored) == (True, 2)
    outputs = [r.output for r in logger.records if r.kind == "verdict"]
    assert "A) clearly\n[parsed: A]" in outputs
    assert "hmm\n[parsed: unparseable (counted as a tie)]" in outputs
    assert all((r.probabilities or {}).get("hard") for r in logger.records)


def test_parsed_hard_labels_are_not_clamped_and_mode_is_checked() -> None:
    items = [PairItem("q", "a good answer", "bad")]
    config = LabelConfig(judge="parsed", cot=True, both_orders=False, cot_clamp=(0.4, 0.6))
    [verdict] = label_pairs(AnsweringEngine(), _content(), 1, items, config, MemoryLogger())
    assert verdict.p_a == 1.0 and not verdict.clamped
    assert hard_label_fields(verdict.variants[0])["hard"] is True
    with pytest.raises(ValidationError, match=r"scored .* or parsed"):
        LabelConfig(judge="guess").validate()  # type: ignore[arg-type]


def test_scored_judge_stores_nothing_extra() -> None:
    [verdict] = label_pairs(ScriptedEngine(), _content(), 1, [PairItem("q", "good", "bad")],
                            LabelConfig(both_orders=False), MemoryLogger())
    assert verdict.judge == "scored" and hard_label_fields(verdict.variants[0]) == {}
