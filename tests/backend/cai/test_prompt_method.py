"""Issue 12: SL-CAI round principles, raw stops, and prompt layout details."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from scipy.stats import chisquare

from backend.cai import prompts as P
from backend.cai.critique_loop import LoopConfig, LoopContext, run_critique_loop
from backend.cai.default_constitution import default_constitution
from backend.cai.formats import parse_paper_files
from backend.cai.sampling import round_principle
from backend.cai.steplog import MemoryLogger
from backend.engines.scripted import ScriptedEngine
from tests.backend.cai.test_labeling_method import sixteen
from tests.conftest import PAPER_DIR

DIALOGUE = "Human: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke"


def test_round_principles_are_uniform_and_per_round() -> None:
    pool = sixteen().principles
    for r in (1, 4):
        counts = Counter(round_principle(pool, 3, i, r).key for i in range(1000))
        assert chisquare([counts[f"p{i}"] for i in range(16)]).pvalue > 0.01
    assert [round_principle(pool, 3, 7, r).key for r in range(1, 9)] != \
        [round_principle(pool, 3, 7, 1).key] * 8


def test_critique_loop_batches_and_resume_give_the_same_principles() -> None:
    prompts = [f"prompt {i}" for i in range(24)]

    def run(batch: int, start: int = 0) -> dict[int, list[str]]:
        out = {}
        for b in range(start, len(prompts), batch):
            keys = list(range(b, min(b + batch, len(prompts))))
            ctx = LoopContext(ScriptedEngine(), sixteen(), 1, MemoryLogger())
            chains = run_critique_loop(ctx, [prompts[k] for k in keys],
                                       LoopConfig(rounds=3, seed=5), keys=keys)
            out.update({k: [r.principle.key for r in c.rounds]
                        for k, c in zip(keys, chains, strict=True)})
        return out

    by_8 = run(8)
    assert by_8 == run(24) == {**run(8)} and {**run(5, 0)} == by_8
    assert {k: v for k, v in run(8, 10).items()} == {k: by_8[k] for k in range(10, 24)}


def test_raw_steps_stop_at_invented_turns() -> None:
    class Runaway(ScriptedEngine):
        def generate(self, prompts, params):  # type: ignore[no-untyped-def]
            self.params = params
            return [g.__class__(g.text + "\n\nHuman: invented", g.prompt_sent)
                    for g in super().generate(prompts, params)]

    engine = Runaway()
    log = MemoryLogger()
    [chain] = run_critique_loop(LoopContext(engine, default_constitution(), 1, log), ["Hi"],
                                LoopConfig(rounds=1, form="raw"))
    assert set(P.RAW_STOPS) <= set(engine.params.stop)
    assert "Human:" not in chain.final and "Human:" not in chain.response
    assert all("invented" not in r.output for r in log.records)
    # the chat form leaves texts and stops alone
    [chat] = run_critique_loop(LoopContext(Runaway(), default_constitution(), 1, log), ["Hi"],
                               LoopConfig(rounds=1))
    assert "invented" in chat.final


def paper_shots() -> list[object]:
    if not PAPER_DIR.is_dir():
        pytest.skip(f"shared paper data not found at {PAPER_DIR}")
    files = {p.name: p.read_text(encoding="utf-8") for p in PAPER_DIR.glob("*.json")}
    return list(parse_paper_files(files, "paper").content.few_shots)


def test_raw_critique_prompt_from_paper_examples_has_no_empty_human_turn() -> None:
    shots = paper_shots()
    principle = default_constitution().principles[0]
    prompt = P.critique_prompt(P.Exchange("Hi", "Hello"), principle, shots, "raw")  # type: ignore[arg-type]
    assert prompt.text is not None
    assert "Human:\n" not in prompt.text and "Human: \n" not in prompt.text
    assert not prompt.text.startswith("\n\n\n")
    assert prompt.text.count("\n\nHuman: Hi\n\nAssistant: Hello") == 1
    chat = P.critique_prompt(P.Exchange("Hi", "Hello"), principle, shots, "chat")  # type: ignore[arg-type]
    assert chat.messages is not None
    roles = [m.role for m in chat.messages]
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(m.content.strip() for m in chat.messages)


def test_ab_question_has_no_stray_assistant_line() -> None:
    principle = default_constitution().principles[0]
    for form in ("raw", "chat"):
        prompt = P.choice_prompt("Is it safe?", "yes", "no", principle, form)  # type: ignore[arg-type]
        body = P.render(prompt)
        assert "Human: Is it safe?\n\n" + principle.choice_instruction in body
        assert "\nAssistant\n" not in body and not any(
            line.strip() == "Assistant" for line in body.splitlines())


def test_multi_turn_dialogues_become_alternating_messages() -> None:
    prompt = P.response_prompt(DIALOGUE, "chat")
    assert prompt.messages is not None
    assert [(m.role, m.content) for m in prompt.messages] == [
        ("user", "Hi there"), ("assistant", "Hello! How can I help?"),
        ("user", "Tell me a joke")]
    raw = P.response_prompt(DIALOGUE, "raw")
    assert raw.text == ("\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?"
                        "\n\nHuman: Tell me a joke\n\nAssistant:")
    crit = P.critique_prompt(P.Exchange(DIALOGUE, "Why did..."), default_constitution()
                             .principles[0], (), "chat")
    assert crit.messages is not None
    assert [m.role for m in crit.messages] == ["user", "assistant", "user", "assistant", "user"]
    question = P.render(P.choice_prompt(DIALOGUE, "a", "b", default_constitution().principles[0],
                                        "chat"))
    assert "Human: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke" \
        in question
    assert P.response_prompt("Plain question?", "chat").messages == (
        P.ChatMessage("user", "Plain question?"),)


def test_dialogue_split_keeps_text_that_only_looks_like_a_critique_label() -> None:
    turns = P.dialogue_turns("Human: Rate this.\n\nCritique: it is fine?\n\nAssistant: Sure.")
    assert turns == [("user", "Rate this.\n\nCritique: it is fine?"), ("assistant", "Sure.")]


def test_shared_shot_memo_gives_the_same_prompts_as_building_each() -> None:
    content = default_constitution()
    own: list[Any] = [f for _, f in P.shots_of(content.few_shots, "choice")]
    cot: list[Any] = [f for _, f in P.shots_of(paper_shots(), "choice_cot")]  # type: ignore[arg-type]
    forms: tuple[P.PromptForm, ...] = ("raw", "chat")
    for (shots, with_cot), form, reasoning in itertools.product(
            [(own, False), (cot, True)], forms, (None, "r")):
        assert shots
        memo: P.ShotMemo = {}
        for i, principle in enumerate([*content.principles, *content.principles[:3]]):
            args = (f"Human: item {i}", f"a{i}", f"b{i}", principle, form)
            if with_cot and reasoning is None:
                built = [P.cot_prompt(*args, shots=shots, memo=m) for m in (memo, None)]
            else:
                built = [P.choice_prompt(*args, reasoning=reasoning if with_cot else None,
                                         shots=shots, memo=m) for m in (memo, None)]
            assert built[0] == built[1]
        assert len(memo) == len(content.principles)  # built once per instruction
