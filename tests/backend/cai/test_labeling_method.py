"""Issue 12: principle assignment independent of batching, clamp after averaging, few-shot
labelling, unscorable prompts, and the A/B question's layout."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from scipy.stats import chisquare

from backend.cai.constitution import ConstitutionContent, FewShotExample, Principle
from backend.cai.default_constitution import default_constitution
from backend.cai.formats import parse_paper_files
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.sampling import label_principles
from backend.cai.steplog import MemoryLogger
from backend.engines.base import ChoiceScores, Prompt
from backend.engines.scripted import ScriptedEngine
from tests.conftest import PAPER_DIR


def sixteen() -> ConstitutionContent:
    return ConstitutionContent(tuple(
        Principle(f"p{i}", f"Principle {i}", f"critique {i}", f"revise {i}", f"choose {i}")
        for i in range(16)))


def items(n: int) -> list[PairItem]:
    return [PairItem(f"q{i}", f"a good {i}", f"b {i}", key=1000 + i) for i in range(n)]


def assignments(batch: int, pairs: list[PairItem], seed: int = 9,
                content: ConstitutionContent | None = None) -> dict[int | str, str]:
    out: dict[int | str, str] = {}
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        verdicts = label_pairs(ScriptedEngine(), content or sixteen(), 1, chunk,
                               LabelConfig(seed=seed), MemoryLogger())
        for item, v in zip(chunk, verdicts, strict=True):
            assert item.key is not None
            out[item.key] = v.variants[0].principle_key
    return out


def test_principles_are_uniform_over_1000_items() -> None:
    counts = Counter(label_principles(sixteen().principles, 1, 9, 1000 + i)[0].key
                     for i in range(1000))
    assert len(counts) == 16
    assert chisquare([counts[f"p{i}"] for i in range(16)]).pvalue > 0.01


def test_label_pairs_assignment_is_uniform_in_batches_of_32() -> None:
    """The old rule (position in the batch) repeated every 32 items: χ² failed."""
    counts = Counter(assignments(32, items(1000)).values())
    assert chisquare([counts[f"p{i}"] for i in range(16)]).pvalue > 0.01


def test_batch_size_and_resume_do_not_change_assignments() -> None:
    pairs = items(96)
    by_8, by_32 = assignments(8, pairs), assignments(32, pairs)
    assert by_8 == by_32
    # a resumed run: the first 40 items are done; the rest are judged in new batches
    resumed = {**assignments(32, pairs[:40]), **assignments(32, pairs[40:])}
    assert resumed == by_32
    assert assignments(32, pairs, seed=10) != by_32  # the run seed matters


def test_items_without_ids_are_keyed_by_content_not_position() -> None:
    plain = [PairItem(f"q{i}", f"a {i}", f"b {i}") for i in range(40)]
    first = label_pairs(ScriptedEngine(), sixteen(), 1, plain, LabelConfig(), MemoryLogger())
    later = label_pairs(ScriptedEngine(), sixteen(), 1, plain[20:], LabelConfig(),
                        MemoryLogger())
    assert [v.variants[0].principle_key for v in first[20:]] == \
        [v.variants[0].principle_key for v in later]


@dataclass
class FixedFirst(ScriptedEngine):
    """p(first slot = A) is taken from ``p_first`` call by call."""

    p_first: list[float] = field(default_factory=list)

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        self.score_calls.append(list(prompts))
        return [ChoiceScores({"A": p, "B": 1 - p}, {"A": math.log(p), "B": math.log(1 - p)}, "")
                for p in self.p_first[:len(prompts)]]


def test_cot_clamp_applies_to_the_averaged_label() -> None:
    """0.9 and 0.6 for the first slot: clamping each gave 0.6 / 0.4 → a tie; the paper's
    clamp of the final label gives 0.6."""
    engine = FixedFirst(p_first=[0.9, 0.6])
    [verdict] = label_pairs(engine, default_constitution(), 1, [PairItem("q", "a", "b")],
                            LabelConfig(cot=True), MemoryLogger())
    assert [v.p_a for v in verdict.variants] == pytest.approx([0.9, 0.4])
    assert verdict.p_a == pytest.approx(0.6) and verdict.winner == "A" and verdict.clamped


def test_unscorable_prompts_are_reported_not_crashed_on() -> None:
    class NoLogprobs(ScriptedEngine):
        def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                          ) -> list[ChoiceScores]:
            return [ChoiceScores({}, {}, "sent", unscorable="no choice in the top-k",
                                 top_tokens={"Sure": -0.1}) for _ in prompts]

    log = MemoryLogger()
    [verdict] = label_pairs(NoLogprobs(), default_constitution(), 1, [PairItem("q", "a", "b")],
                            LabelConfig(), log)
    assert not verdict.scored and verdict.unscorable == "no choice in the top-k"
    assert math.isnan(verdict.p_a) and verdict.variants == ()
    assert log.records[0].probabilities is not None
    assert log.records[0].probabilities["unscorable"] == "no choice in the top-k"


# --- few-shot labelling -------------------------------------------------------------------


def test_choice_examples_of_the_constitution_come_first_and_are_logged() -> None:
    content = default_constitution()
    shots = [(i, f) for i, f in enumerate(content.few_shots) if f.kind == "choice"]
    assert shots
    engine, log = ScriptedEngine(), MemoryLogger()
    [verdict] = label_pairs(engine, content, 1, [PairItem("How?", "a good one", "b")],
                            LabelConfig(both_orders=False), log)
    text = log.records[0].prompt_sent
    for _, shot in shots:
        assert shot.data["corrects"][0] in text and shot.data["prompt"] in text
    assert text.index(shots[-1][1].data["prompt"]) < text.index("How?")
    params = log.records[0].params
    assert params["few_shots"] == {"kind": "choice", "positions": [i for i, _ in shots]}
    assert verdict.p_a == pytest.approx(0.8)  # the question asked is still the last one
    # the examples solve A and B alternately: they teach no position
    prompt = engine.score_calls[0][0]
    assert prompt.messages is not None
    answers = [m.content for m in prompt.messages[:-1] if m.role == "assistant"]
    assert answers == ["The answer is: (A)", "The answer is: (B)"]


def test_author_can_switch_labelling_examples_off() -> None:
    content = default_constitution()
    log = MemoryLogger()
    label_pairs(ScriptedEngine(), content, 1, [PairItem("How?", "a", "b")],
                LabelConfig(both_orders=False, use_few_shots=False), log)
    shot = next(f for f in content.few_shots if f.kind == "choice")
    assert shot.data["corrects"][0] not in log.records[0].prompt_sent
    assert log.records[0].params["few_shots"] == {"kind": "choice", "positions": []}


def paper_content() -> ConstitutionContent:
    if not PAPER_DIR.is_dir():
        pytest.skip(f"shared paper data not found at {PAPER_DIR}")
    files = {p.name: p.read_text(encoding="utf-8") for p in PAPER_DIR.glob("*.json")}
    return parse_paper_files(files, "paper").content


@pytest.mark.parametrize("form", ["raw", "chat"])
def test_paper_cot_examples_precede_the_cot_question(form: str) -> None:
    content = paper_content()
    engine, log = ScriptedEngine(), MemoryLogger()
    label_pairs(engine, content, 1, [PairItem("Is it safe?", "a good one", "b")],
                LabelConfig(cot=True, both_orders=False, form=form), log)  # type: ignore[arg-type]
    cot = log.records[0]
    assert cot.kind == "cot" and "{}" not in cot.prompt_sent
    positions = [i for i, f in enumerate(content.few_shots) if f.kind == "choice_cot"]
    assert len(positions) == 6 and cot.params["few_shots"]["positions"] == positions
    assert cot.prompt_sent.count("(A) [[[") == 7  # six examples and the question
    if form == "raw":
        assert "Human:\n\n" not in cot.prompt_sent and "Human: \n" not in cot.prompt_sent
    else:
        [prompt] = engine.generate_calls[0]
        assert prompt.messages is not None
        roles = [m.role for m in prompt.messages]
        assert all(a != b for a, b in itertools.pairwise(roles))  # alternating


def test_paper_choice_examples_in_raw_form_have_no_empty_turns() -> None:
    content = paper_content()
    log = MemoryLogger()
    label_pairs(ScriptedEngine(), content, 1, [PairItem("Is it safe?", "a good one", "b")],
                LabelConfig(both_orders=False, form="raw"), log)
    text = log.records[0].prompt_sent
    assert text.count("The answer is: (") == 6  # five solved examples and the question
    assert "\n\nAssistant\n" not in text and "Assistant:\n\n" not in text
    assert text.endswith("\n\nAssistant: The answer is: (")


def test_own_format_cot_examples_are_used() -> None:
    base = default_constitution()
    shot = FewShotExample("choice_cot", {"prompt": "Is tea hot?", "response_a": "Usually.",
                                         "response_b": "Never.", "reasoning": "(A) is right.",
                                         "answer": "A"})
    content = ConstitutionContent(base.principles, (*base.few_shots, shot))
    log = MemoryLogger()
    label_pairs(ScriptedEngine(), content, 1, [PairItem("q", "a", "b")],
                LabelConfig(cot=True, both_orders=False), log)
    assert "(A) is right.\nTherefore, the answer is: (A)" in log.records[0].prompt_sent


@pytest.mark.parametrize("size", [1, 3, 16, 40])  # 40: random.sample's set-based branch
def test_one_principle_is_the_draw_random_sample_makes(size: int) -> None:
    """k=1 takes a shortcut; runs started before it must pick the same principles on resume."""
    import random

    from backend.cai.sampling import derived_seed, sample_k

    pool = [Principle(key=f"p{i}", title="t", critique_request="c", revision_request="r",
                      choice_instruction="x")
            for i in range(size)]
    for item in range(300):
        expected = random.Random(derived_seed(9, "label", item)).sample(pool, 1)
        assert sample_k(pool, 1, 9, "label", item) == expected


def test_chain_ids_are_unique_fit_the_column_and_sort_by_time() -> None:
    from backend.cai.steplog import new_chain_id

    ids = [new_chain_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # chain_id is 40 characters
    times = [i[:16] for i in ids]  # made later, sorts later: the chain index grows at its end
    assert times == sorted(times)
