"""LocalEngine on the demo model: batching, scoring, sampling, stops, streaming, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from backend.engines.base import Engine, GenerationParams, Prompt
from backend.engines.local import LocalEngine, cut_at_stop
from backend.errors import ChoiceTokenError, EngineError

GREEDY = GenerationParams(max_tokens=12)
HAS_VLLM = importlib.util.find_spec("vllm") is not None

CONTINUE = Prompt.chat(
    ("system", "You compare two responses."),
    ("user", "Which response is more helpful? (A) Sure, here is how. (B) No."),
    ("assistant", "The answer is: ("),
    continue_final=True,
)
RAW = Prompt.raw("Options: (A) the first response (B) the second response. The answer is: (")


def _prompts(n: int) -> list[Prompt]:
    """Prompts of clearly different lengths, both raw and chat."""
    out = []
    for i in range(n):
        body = "Please critique this response. " * (i + 1)
        out.append(Prompt.raw(body) if i % 2 else Prompt.chat(("user", body)))
    return out


@pytest.fixture(scope="module")
def reference(tiny_model_path: Path):
    """An independent copy of the model and tokenizer for manual computations."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_path, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(tiny_model_path, local_files_only=True)
    model.eval()
    return tok, model


def _manual_probs(reference, prompt: Prompt, choices: list[str]) -> dict[str, float]:
    """One forward pass on the unpadded prompt; softmax over the choices' logits."""
    import torch

    tok, model = reference
    if prompt.messages is not None:
        text = tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in prompt.messages], tokenize=False,
            add_generation_prompt=not prompt.continue_final,
            continue_final_message=prompt.continue_final)
        ids = tok(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tok(prompt.text)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    picked = logits[[tok.convert_tokens_to_ids(c) for c in choices]]
    return dict(zip(choices, torch.softmax(picked, dim=0).tolist(), strict=True))


def test_is_an_engine_with_a_demo_badge(tiny_engine: LocalEngine) -> None:
    assert isinstance(tiny_engine, Engine)
    assert tiny_engine.info.kind == "tiny"
    assert tiny_engine.info.is_demo
    assert "random weights" in tiny_engine.info.badge
    health = tiny_engine.health()
    assert health.ok and health.models == (tiny_engine.info.model,)


def test_batched_greedy_equals_one_at_a_time(tiny_engine: LocalEngine) -> None:
    prompts = _prompts(8)
    batched = tiny_engine.generate(prompts, GREEDY)
    single = [tiny_engine.generate([p], GREEDY)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.prompt_sent for g in batched] == [g.prompt_sent for g in single]
    assert len({g.prompt_tokens for g in batched}) == 8  # really different lengths
    for g in batched:
        assert g.completion_tokens is not None and 0 < g.completion_tokens <= 12
        assert g.latency_s > 0


def test_chunks_smaller_than_the_call(tiny_model_path: Path, tiny_engine: LocalEngine) -> None:
    small = LocalEngine(str(tiny_model_path), device="cpu", max_batch_size=3, is_demo=True)
    prompts = _prompts(7)
    assert [g.text for g in small.generate(prompts, GREEDY)] \
        == [g.text for g in tiny_engine.generate(prompts, GREEDY)]
    small.close()


def test_prompt_sent_is_the_templated_text(tiny_engine: LocalEngine) -> None:
    chat, cont, raw = tiny_engine.generate(
        [Prompt.chat(("user", "Hi")), CONTINUE, Prompt.raw("Once upon")], GREEDY)
    assert chat.prompt_sent == "<|bos|><|user|>\nHi<|eos|>\n<|assistant|>\n"
    assert cont.prompt_sent.endswith("<|assistant|>\nThe answer is: (")
    assert raw.prompt_sent == "Once upon"
    assert raw.prompt_tokens == len(tiny_engine._tok("Once upon")["input_ids"])


@pytest.mark.parametrize("prompt", [RAW, CONTINUE], ids=["raw", "chat-continue"])
def test_choice_probabilities_match_a_manual_forward_pass(
        tiny_engine: LocalEngine, reference, prompt: Prompt) -> None:
    [scores] = tiny_engine.score_choices([prompt], ["A", "B"])
    expected = _manual_probs(reference, prompt, ["A", "B"])
    assert scores.probs == pytest.approx(expected, abs=1e-5)
    assert sum(scores.probs.values()) == pytest.approx(1.0)
    assert all(lp is not None and lp < 0 for lp in scores.logprobs.values())


def test_choice_probabilities_in_a_padded_batch(tiny_engine: LocalEngine, reference) -> None:
    prompts = [RAW, CONTINUE, Prompt.raw("("), *_prompts(5)]
    scores = tiny_engine.score_choices(prompts, ["A", "B"])
    assert len(scores) == len(prompts)
    for prompt, s in zip(prompts, scores, strict=True):
        assert s.probs == pytest.approx(_manual_probs(reference, prompt, ["A", "B"]), abs=1e-5)
    three = tiny_engine.score_choices([RAW], ["A", "B", " A"])[0]
    manual = _manual_probs(reference, RAW, ["A", "B", "ĠA"])  # "ĠA" is the token of " A"
    assert three.probs == pytest.approx(
        {"A": manual["A"], "B": manual["B"], " A": manual["ĠA"]}, abs=1e-5)


def test_multi_token_choice_is_refused(tiny_engine: LocalEngine) -> None:
    with pytest.raises(ChoiceTokenError, match=r"'Absolutely'.*cstudio-tiny-random-llama"):
        tiny_engine.score_choices([RAW], ["A", "Absolutely"])
    with pytest.raises(EngineError, match="at least one choice"):
        tiny_engine.score_choices([RAW], [])


def test_seeded_sampling_is_reproducible(tiny_engine: LocalEngine) -> None:
    import torch

    prompts = _prompts(3)
    params = GenerationParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=7)
    rng_before = torch.random.get_rng_state()
    first = [g.text for g in tiny_engine.generate(prompts, params)]
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG left alone
    assert [g.text for g in tiny_engine.generate(prompts, params)] == first
    other = GenerationParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=8)
    assert [g.text for g in tiny_engine.generate(prompts, other)] != first


def test_stop_strings_truncate(tiny_engine: LocalEngine) -> None:
    prompt = _prompts(1)[0]
    [full] = tiny_engine.generate([prompt], GenerationParams(max_tokens=24))
    stop = full.text[5:8]
    assert len(stop) == 3 and stop.strip()
    [cut] = tiny_engine.generate([prompt], GenerationParams(max_tokens=24, stop=(stop,)))
    assert cut.text == full.text[:full.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens is not None and cut.completion_tokens < 24


def test_max_tokens_respected(tiny_engine: LocalEngine) -> None:
    for g in tiny_engine.generate(_prompts(4), GenerationParams(max_tokens=5)):
        assert g.finish_reason == "length"
        assert g.completion_tokens == 5
    with pytest.raises(EngineError, match="max_tokens"):
        tiny_engine.generate(_prompts(1), GenerationParams(max_tokens=0))


def test_ignore_eos_generates_exactly_max_tokens(tiny_model_path: Path) -> None:
    engine = LocalEngine(str(tiny_model_path), device="cpu", ignore_eos=True)
    for g in engine.generate(_prompts(3), GenerationParams(max_tokens=20)):
        assert (g.finish_reason, g.completion_tokens) == ("length", 20)
    engine.close()


def test_stream_concatenates_to_the_greedy_text(tiny_engine: LocalEngine) -> None:
    params = GenerationParams(max_tokens=24)
    for prompt in (CONTINUE, RAW):
        deltas = list(tiny_engine.stream(prompt, params))
        assert len(deltas) > 1
        assert "".join(deltas) == tiny_engine.generate([prompt], params)[0].text


def test_stream_honours_stop_strings_and_early_close(tiny_engine: LocalEngine) -> None:
    full = tiny_engine.generate([RAW], GenerationParams(max_tokens=24))[0].text
    stop = full[6:9]
    params = GenerationParams(max_tokens=24, stop=(stop,))
    assert "".join(tiny_engine.stream(RAW, params)) == full[:full.index(stop)]
    stream = tiny_engine.stream(RAW, GenerationParams(max_tokens=200))
    next(stream)
    stream.close()  # ends the background generation and releases the engine
    assert tiny_engine.generate([RAW], GenerationParams(max_tokens=24))[0].text == full


def test_empty_prompt_list(tiny_engine: LocalEngine) -> None:
    assert tiny_engine.generate([], GREEDY) == []
    assert tiny_engine.score_choices([], ["A", "B"]) == []


def test_missing_model_path_is_a_readable_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EngineError) as caught:
        LocalEngine(str(missing), device="cpu")
    message = str(caught.value)
    assert str(missing) in message
    assert "Could not load the model" in message and "config.json" in message
    with pytest.raises(EngineError, match=r"no config\.json"):
        LocalEngine(str(tmp_path), device="cpu")


def test_uncached_hub_id_offline_is_a_readable_error() -> None:
    with pytest.raises(EngineError, match=r"(?s)'no-org/no-such-model'.*local cache"):
        LocalEngine("no-org/no-such-model", device="cpu")


def test_closed_engine_says_so(tiny_model_path: Path) -> None:
    engine = LocalEngine(str(tiny_model_path), device="cpu")
    engine.close()
    assert not engine.health().ok
    with pytest.raises(EngineError, match="closed"):
        engine.generate([RAW], GREEDY)


def test_cut_at_stop() -> None:
    assert cut_at_stop("abc STOP def END", ["END", "STOP"]) == ("abc ", True)
    assert cut_at_stop("abc", ["x", ""]) == ("abc", False)


@pytest.mark.skipif(not HAS_VLLM, reason="vllm not installed")
def test_vllm_inprocess_on_the_demo_model(tiny_model_path: Path) -> None:
    from backend.engines.vllm_inprocess import VLLMInProcessEngine

    engine = VLLMInProcessEngine(str(tiny_model_path), gpu_memory_utilization=0.2,
                                 max_model_len=512, enforce_eager=True)
    [gen] = engine.generate([RAW], GenerationParams(max_tokens=8))
    assert gen.completion_tokens is not None and gen.completion_tokens <= 8
    [scores] = engine.score_choices([CONTINUE], ["A", "B"])
    assert sum(scores.probs.values()) == pytest.approx(1.0)
    assert scores.prompt_sent.endswith("The answer is: (")
    engine.close()


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_vllm_inprocess_without_vllm_is_an_engine_error(tiny_model_path: Path) -> None:
    from backend.engines.vllm_inprocess import VLLMInProcessEngine

    with pytest.raises(EngineError, match=r"vLLM is not installed; pip install"):
        VLLMInProcessEngine(str(tiny_model_path))
