"""The demo model: identical on every build, a byte-level tokenizer, a usable chat template."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path, local_files_only=True)


def test_builds_are_identical_and_race_safe(tiny_model_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "again"
    with ThreadPoolExecutor(max_workers=2) as pool:  # two builders racing for one directory
        paths = list(pool.map(build_tiny_model, [target, target]))
    assert paths == [target, target]
    reference = _hashes(tiny_model_path)
    assert _hashes(target) == reference
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(reference)
    assert not [p for p in tmp_path.iterdir() if p.name != "again"]  # no temp dirs left over
    marker = json.loads((target / "cstudio-tiny.json").read_text())
    assert marker["name"] == TINY_MODEL_NAME


def test_build_is_idempotent(tiny_model_path: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model_path.iterdir()}
    assert build_tiny_model(tiny_model_path) == tiny_model_path
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model_path.iterdir()} == before


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        build_tiny_model(tmp_path)


def test_model_is_a_tiny_llama(tiny_model_path: Path) -> None:
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) \
        == (64, 2, 4)
    assert 512 <= config["vocab_size"] <= 1024


@pytest.mark.parametrize("text", [
    "Hello, world!",
    "Héllo wörld — naïve café, 你好世界, emoji 🤖🧪, Ελληνικά, عربى, \t tabs\nnewlines",
    "",
    "\x00 control \x7f and  double  spaces ",
])
def test_tokenizer_round_trips_unicode(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_special_tokens_and_bos(tokenizer) -> None:
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) \
        == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3
    assert tokenizer("Hi")["input_ids"][0] == tokenizer.bos_token_id


@pytest.mark.parametrize("choice", ["A", "B", "(", ")", " A", " B"])
def test_choices_are_single_tokens(tokenizer, choice: str) -> None:
    ids = tokenizer.encode(choice, add_special_tokens=False)
    assert len(ids) == 1
    assert tokenizer.decode(ids) == choice


def test_chat_template(tokenizer) -> None:
    messages = [{"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Which is better?"}]
    opened = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert opened == ("<|bos|><|system|>\nBe kind.<|eos|>\n<|user|>\nWhich is better?<|eos|>\n"
                      "<|assistant|>\n")
    closed = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert closed == opened.removesuffix("<|assistant|>\n")

    continued = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": "The answer is: ("}],
        tokenize=False, add_generation_prompt=False, continue_final_message=True)
    assert continued == opened + "The answer is: ("
    ids = tokenizer(continued, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1
