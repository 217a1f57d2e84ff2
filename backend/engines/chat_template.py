"""A model's chat template, applied on the client when a server will not continue an assistant
message itself (llama.cpp's server accepts ``continue_final_message`` and ignores it).

The template comes from a ``.gguf`` file (its ``tokenizer.chat_template`` metadata), a tokenizer
folder (``tokenizer_config.json`` or ``chat_template.jinja``), a ``.jinja`` file, or the
template text itself. It is rendered with a sandboxed Jinja environment set up as transformers
sets it up, so the text equals ``tokenizer.apply_chat_template(...)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.engines.base import ChatMessage
from backend.errors import EngineError


@dataclass(frozen=True)
class ChatTemplate:
    template: str
    source: str
    bos_token: str = ""
    eos_token: str = ""
    adds_bos: bool = False  # the tokenizer adds BOS itself: drop a leading BOS text

    def render(self, messages: Sequence[ChatMessage], *, continue_final: bool) -> str:
        """The prompt text: with the generation prompt for a new reply, or ending inside the
        last (assistant) message when ``continue_final`` (as transformers'
        ``continue_final_message``). A leading BOS text is dropped where the tokenizer adds
        BOS itself (the server would otherwise read it twice)."""
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                           extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
        env.globals.update(raise_exception=raise_exception,
                           strftime_now=lambda fmt: datetime.now().strftime(fmt))
        payload = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = env.from_string(self.template).render(
                messages=payload, add_generation_prompt=not continue_final,
                bos_token=self.bos_token, eos_token=self.eos_token)
        except TemplateError as exc:
            raise EngineError(f"the chat template from {self.source} failed: {exc}") from exc
        if continue_final:
            final = messages[-1].content.strip()
            at = text.rfind(final) if final else -1
            if at < 0:
                raise EngineError(f"the chat template from {self.source} does not render the "
                                  "final assistant message verbatim; it cannot be continued")
            text = text[:at + len(final)]
        if self.adds_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        return text


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}


def gguf_metadata(path: Path, keys: set[str]) -> dict[str, Any]:
    """The named metadata values of a GGUF file, read straight from its header (the ``gguf``
    package's reader maps every tensor first: seconds for a small model)."""
    import struct

    found: dict[str, Any] = {}
    with path.open("rb") as f:
        def read(fmt: str) -> Any:
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, f.read(size))[0]

        def string() -> str:
            return f.read(read("<Q")).decode("utf-8", "replace")

        def value(kind: int) -> Any:
            if kind == 8:
                return string()
            if kind == 9:
                item, count = read("<I"), read("<Q")
                return [value(item) for _ in range(count)]
            return read(_SCALARS[kind])

        if f.read(4) != b"GGUF":
            raise EngineError(f"{path} is not a GGUF file")
        read("<I")  # version
        read("<Q")  # tensor count
        for _ in range(read("<Q")):
            key, kind = string(), read("<I")
            data = value(kind)
            if key in keys:
                found[key] = data
                if len(found) == len(keys):
                    break
    return found


def from_gguf(path: Path) -> ChatTemplate:
    meta = gguf_metadata(path, {"tokenizer.chat_template", "tokenizer.ggml.tokens",
                                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                "tokenizer.ggml.add_bos_token"})
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or not template:
        raise EngineError(f"{path} holds no chat template (tokenizer.chat_template)")
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        index = meta.get(key)
        return str(tokens[index]) if isinstance(index, int) and 0 <= index < len(tokens) else ""

    return ChatTemplate(template, str(path), token("tokenizer.ggml.bos_token_id"),
                        token("tokenizer.ggml.eos_token_id"),
                        adds_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)))


def _token_text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value) if isinstance(value, str) else ""


def from_folder(path: Path) -> ChatTemplate:
    config: dict[str, Any] = {}
    if (path / "tokenizer_config.json").is_file():
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    template: Any = config.get("chat_template")
    if (path / "chat_template.jinja").is_file():
        template = (path / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, list):  # named templates: take the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"),
                        None)
    if not isinstance(template, str) or not template:
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return from_gguf(ggufs[0])
        raise EngineError(f"no chat template in {path} (looked for tokenizer_config.json, "
                          "chat_template.jinja and a .gguf file)")
    return ChatTemplate(template, str(path), _token_text(config.get("bos_token")),
                        _token_text(config.get("eos_token")),
                        adds_bos=bool(config.get("add_bos_token", False)))


def load_chat_template(source: str) -> ChatTemplate:
    """From a ``.gguf`` file, a tokenizer folder, a ``.jinja`` file, or the template text."""
    if "{%" in source or "{{" in source:
        return ChatTemplate(source, "the configured template text")
    path = Path(source).expanduser()
    if path.is_dir():
        return from_folder(path)
    if path.is_file() and path.suffix == ".gguf":
        return from_gguf(path)
    if path.is_file():
        return ChatTemplate(path.read_text(encoding="utf-8"), str(path))
    raise EngineError(f"cannot read a chat template from {source!r}: give a .gguf file, a "
                      "tokenizer folder, a .jinja file or the template text")
