"""In-process transformers engine: batched generation and one-forward-pass choice scoring.

Loads any causal LM that ``AutoModelForCausalLM`` can load from a local directory or the local
Hugging Face cache (the demo model from ``tiny.py`` included). Prompts of a call are sorted by
length and cut into batches of at most ``max_batch_size`` rows and ``max_batch_tokens`` tokens
read. A batch is read right-padded without an attention mask, with a prefix that all its rows
share (few-shot examples) read once; ``local_prefill`` explains the layout. Heavy libraries
(torch, transformers) are imported when an engine is constructed, not when this module is.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import math
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.engines import local_prefill
from backend.engines.base import (
    ChoiceScores,
    EngineInfo,
    Generation,
    GenerationParams,
    Health,
    Prompt,
    storable_text,
)
from backend.errors import EngineError
from backend.hub import hub_offline

_DTYPES = ("auto", "float32", "bfloat16", "float16")
# Scoring batches end before a row shorter than this fraction of the batch's longest row
# (after any shared prefix): at most ~10% of the tokens read are padding.
SCORE_SLACK = 0.9
# The fixed cost of one decode step of a batch (reading the weights), in prompt tokens read:
# measured ~24 for SmolLM2-135M on one CPU thread (a step costs ~24 + 2.5 per row).
DECODE_STEP_TOKENS = 24


@dataclass(frozen=True)
class _Encoded:
    text: str  # the exact text the model sees (chat template applied)
    ids: list[int]


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest occurrence of any stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def message_dicts(prompt: Prompt) -> list[dict[str, str]]:
    assert prompt.messages is not None
    return [{"role": m.role, "content": m.content} for m in prompt.messages]


class LocalEngine:
    """The Engine protocol on a transformers model in this process."""

    def __init__(
        self,
        model_path: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_batch_size: int = 32,
        max_batch_tokens: int = 16384,
        is_demo: bool = False,
        display_name: str | None = None,
        ignore_eos: bool = False,
        kind: str | None = None,
    ) -> None:
        """``ignore_eos`` makes every generation run to ``max_tokens`` (benchmarks only: it
        keeps batched and sequential runs the same length on a random-weights model)."""
        if dtype not in _DTYPES:
            raise EngineError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
        if max_batch_size < 1:
            raise EngineError(f"max_batch_size must be at least 1, not {max_batch_size}")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch: Any = torch
        self.model_path = str(model_path)
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.ignore_eos = ignore_eos
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.info = EngineInfo(
            kind=kind or ("tiny" if is_demo else "local"),
            model=display_name or self.model_path,
            is_demo=is_demo,
            detail=f"transformers on {self.device}",
        )
        self._lock = threading.RLock()
        path = Path(self.model_path).expanduser()
        if not path.exists() and (path.is_absolute() or self.model_path.startswith((".", "~"))):
            raise EngineError(
                f"Could not load the model {self.model_path!r}: no such directory. Give a local "
                "directory holding config.json, the weights and the tokenizer files, or a "
                "Hugging Face model id. For the built-in demo model use the 'tiny' engine."
            )
        from backend.engines.gguf_models import find_gguf

        gguf_file = find_gguf(path) if path.exists() else None
        if path.is_dir() and gguf_file is None and not (path / "config.json").is_file():
            raise EngineError(
                f"Could not load the model {self.model_path!r}: the directory has no "
                "config.json. Point at the folder that holds config.json, the weights and the "
                "tokenizer files (the output of save_pretrained)."
            )
        local_only = hub_offline() or path.exists()
        try:
            source = str(path) if path.exists() else self.model_path
            # A .gguf file (or a folder holding one) loads directly, dequantised to fp32; the
            # studio converts it once to safetensors first (gguf_models), which loads faster.
            gguf: dict[str, Any] = {}
            if gguf_file is not None:
                source, gguf = str(gguf_file.parent), {"gguf_file": gguf_file.name}
            tokenizer: Any = AutoTokenizer.from_pretrained(source, local_files_only=local_only,
                                                           **gguf)
            torch_dtype: Any = dtype if dtype == "auto" else getattr(torch, dtype)
            if gguf:
                torch_dtype = torch.float32 if dtype == "auto" else torch_dtype
            model: Any = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch_dtype, local_files_only=local_only, **gguf
            )
            model.to(self.device)
        except Exception as exc:  # any load failure is a configuration problem for the user
            where = ("no network: HF_HUB_OFFLINE is set, so a Hub id must already be in the "
                     "local cache" if local_only and not path.exists()
                     else "check the path or Hub id")
            raise EngineError(
                f"Could not load the model {self.model_path!r}: {type(exc).__name__}: "
                f"{str(exc).strip().rstrip('.')}. "
                "Give a local directory holding config.json, the weights and the tokenizer "
                f"files, or a Hugging Face model id ({where}). "
                "For the built-in demo model use the 'tiny' engine."
            ) from exc
        model.eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tok: Any = tokenizer
        self._model: Any = model
        self._eos_ids = self._collect_eos_ids()
        if not self._eos_ids:
            raise EngineError(f"the tokenizer of {self.model_path!r} has no end-of-sequence token")
        pad = tokenizer.pad_token_id
        self._pad_id: int = int(pad) if pad is not None else self._eos_ids[0]
        self._keeps_last_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        # Prompts are read without a padding mask, shared prefixes once (see local_prefill);
        # models with other cache kinds (sliding windows, recurrent state) use plain batches.
        self._cache_prefill = local_prefill.supports_cache_prefill(model)
        self._cache_kw = local_prefill.cache_keyword(model)
        if self._cache_prefill and self.device == "cpu":
            local_prefill.use_shared_prefix_attention(model)
        self._choice_ids: dict[str, int] = {}

    # --- helpers -------------------------------------------------------------------------

    def _collect_eos_ids(self) -> list[int]:
        """End-of-sequence ids from the generation config (some models have several, e.g. an
        end-of-turn token) and the tokenizer's EOS."""
        configured = getattr(self._model.generation_config, "eos_token_id", None)
        candidates = configured if isinstance(configured, list) else [configured]
        ids: list[int] = []
        for value in [*candidates, self._tok.eos_token_id]:
            if value is not None and int(value) not in ids:
                ids.append(int(value))
        return ids

    def _live_model(self) -> Any:
        if self._model is None:
            raise EngineError(f"the engine for {self.info.model!r} is closed")
        return self._model

    def render_prompt(self, prompt: Prompt) -> str:
        """The exact text the model reads for ``prompt`` (chat template applied)."""
        return self._encode(prompt).text

    def _encode(self, prompt: Prompt) -> _Encoded:
        if prompt.messages is not None:
            if not getattr(self._tok, "chat_template", None):
                raise EngineError(
                    f"{self.info.model!r} has no chat template; use raw prompts with this model"
                )
            text = self._tok.apply_chat_template(
                message_dicts(prompt),
                tokenize=False,
                add_generation_prompt=not prompt.continue_final,
                continue_final_message=prompt.continue_final,
            )
            # The template writes special tokens such as BOS itself.
            ids = self._tok(text, add_special_tokens=False)["input_ids"]
        else:
            text = prompt.text or ""
            ids = self._tok(text)["input_ids"]  # adds BOS where the tokenizer does
        if not ids:
            raise EngineError("the prompt is empty (no tokens); give some prompt text")
        return _Encoded(text=str(text), ids=[int(i) for i in ids])

    def _batch(self, rows: Sequence[list[int]]) -> tuple[Any, Any, Any]:
        """Left-padded input ids, attention mask and position ids on the model's device."""
        torch = self._torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _last_token_logits(self, model: Any, rows: Sequence[list[int]],
                           memo: local_prefill.PrefixMemo | None = None) -> Any:
        """Next-token logits after each row, from one forward pass over right-padded rows
        with no attention mask (see ``local_prefill``); a long prefix that every row shares
        is read once (once per call when ``memo`` holds it)."""
        return local_prefill.last_token_logits(
            model, rows, self._pad_id, self.device, keeps_last_logits=self._keeps_last_logits,
            prefix_cache=self._cache_prefill, memo=memo)

    def _generate_batch(self, model: Any, rows: Sequence[list[int]], config: Any,
                        memo: local_prefill.PrefixMemo | None = None,
                        **kwargs: Any) -> tuple[Any, int]:
        """``model.generate`` on one batch; the generated ids and the input width."""
        if self._cache_prefill:
            pre = local_prefill.prefill_for_generation(model, rows, self._pad_id, self.device,
                                                       int(config.max_new_tokens), memo)
            if pre.cache is not None:
                kwargs[self._cache_kw] = pre.cache
            ids, mask = pre.input_ids, pre.attention_mask
            with local_prefill.sharing_prefix(pre.shared):
                out = model.generate(input_ids=ids, attention_mask=mask,
                                     generation_config=config, **kwargs)
            return out, int(ids.shape[1])
        ids, mask, _ = self._batch(rows)
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                             **kwargs)
        return out, int(ids.shape[1])

    def _generation_config(self, params: GenerationParams) -> Any:
        from transformers import GenerationConfig

        if params.max_tokens < 1:
            raise EngineError(f"max_tokens must be at least 1, not {params.max_tokens}")
        sample = params.temperature > 0
        config: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": sample,
            "eos_token_id": self._eos_ids,
            # Finished rows are padded with EOS, so the first EOS marks each row's end.
            "pad_token_id": self._eos_ids[0],
            "repetition_penalty": 1.0,
        }
        if sample:
            config.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if self.ignore_eos:
            config["min_new_tokens"] = params.max_tokens
        if params.stop:
            config["stop_strings"] = list(params.stop)
        return GenerationConfig(**config)  # type: ignore[no-untyped-call]

    def _seeded(self, params: GenerationParams) -> contextlib.AbstractContextManager[Any]:
        """Seed the RNG for a sampled call without disturbing the process-wide RNG state."""
        torch = self._torch
        if params.temperature <= 0 or params.seed is None:
            return contextlib.nullcontext()
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        stack = contextlib.ExitStack()
        stack.enter_context(torch.random.fork_rng(devices=devices))
        torch.manual_seed(params.seed)
        return stack

    def _finish(self, tokens: list[int], params: GenerationParams) -> tuple[str, str, int]:
        """Text, finish reason and completion token count of one generated row."""
        end = next((i for i, t in enumerate(tokens) if t in self._eos_ids), None)
        kept = tokens if end is None else tokens[:end]
        text = str(self._tok.decode(kept, skip_special_tokens=True))
        text, stopped = cut_at_stop(text, params.stop)
        if stopped:
            return text, "stop", len(kept)
        if end is not None:
            return text, "stop", end + 1
        return text, "length", len(kept)

    # --- Engine protocol -----------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        if not prompts:
            return []
        encoded = [self._encode(p) for p in prompts]
        config = self._generation_config(params)
        rows = [e.ids for e in encoded]
        order = self._order(rows)
        results: list[Generation | None] = [None] * len(encoded)
        torch = self._torch
        with self._lock, self._seeded(params), torch.inference_mode():
            model = self._live_model()
            memo = self._call_memo(model, rows)
            for chunk in self._score_chunks(order, rows, decode_steps=params.max_tokens,
                                            paid=len(memo.tokens) if memo else 0):
                began = time.perf_counter()
                out, width = self._generate_batch(
                    model, [encoded[i].ids for i in chunk], config, memo,
                    tokenizer=self._tok if params.stop else None)
                new = out[:, width:].tolist()
                latency = time.perf_counter() - began
                for row, i in enumerate(chunk):
                    text, reason, n = self._finish(new[row], params)
                    results[i] = Generation(
                        text=text, prompt_sent=encoded[i].text, finish_reason=reason,
                        prompt_tokens=len(encoded[i].ids), completion_tokens=n,
                        latency_s=latency,
                    )
        return [g for g in results if g is not None]

    def stream(self, prompt: Prompt, params: GenerationParams) -> Generator[str, None, None]:
        """Text deltas from a generation running in a background thread. Stop strings are
        honoured: text that might begin a stop string is held back until it is decided."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        torch = self._torch
        cancelled = threading.Event()

        class _Cancelled(StoppingCriteria):
            """Stops the generation when the consumer stops reading the stream."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        encoded = self._encode(prompt)
        config = self._generation_config(params)
        streamer: Any = TextIteratorStreamer(
            self._tok, skip_prompt=True, skip_special_tokens=True, timeout=600.0
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock, self._seeded(params), torch.inference_mode():
                    ids, mask, _ = self._batch([encoded.ids])
                    self._live_model().generate(
                        input_ids=ids, attention_mask=mask, generation_config=config,
                        streamer=streamer, tokenizer=self._tok if params.stop else None,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                    )
            except BaseException as exc:
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="local-engine-stream", daemon=True)
        worker.start()
        hold = max((len(s) for s in params.stop), default=1) - 1
        buffer = ""
        try:
            for delta in streamer:
                buffer += storable_text(delta)
                buffer, stopped = cut_at_stop(buffer, params.stop)
                if stopped:
                    if buffer:
                        yield buffer
                    return
                ready = len(buffer) - hold
                if ready > 0:
                    yield buffer[:ready]
                    buffer = buffer[ready:]
            if failure:
                raise EngineError(f"generation failed: {failure[0]}") from failure[0]
            if buffer:
                yield buffer
        finally:
            cancelled.set()  # a consumer that stops reading early ends the generation
            worker.join()

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        if not choices:
            raise EngineError("score_choices needs at least one choice")
        if not prompts:
            return []
        choice_ids = [self.choice_token_id(c) for c in choices]
        encoded = [self._encode(p) for p in prompts]
        torch = self._torch
        results: list[ChoiceScores | None] = [None] * len(encoded)
        rows = [e.ids for e in encoded]
        order = self._order(rows)
        with self._lock, torch.inference_mode():
            model = self._live_model()
            memo = self._call_memo(model, rows)
            for indices in self._score_chunks(order, rows, paid=len(memo.tokens) if memo else 0):
                chunk = [encoded[i] for i in indices]
                began = time.perf_counter()
                last_logits = self._last_token_logits(model, [e.ids for e in chunk], memo)
                logprobs = torch.log_softmax(last_logits.float(), dim=-1)
                picked = logprobs[:, choice_ids].double().cpu().tolist()
                latency = time.perf_counter() - began
                for i, enc, row in zip(indices, chunk, picked, strict=True):
                    top = max(row)
                    weights = [math.exp(lp - top) for lp in row]
                    total = sum(weights)
                    results[i] = ChoiceScores(
                        probs={c: w / total for c, w in zip(choices, weights, strict=True)},
                        logprobs={c: float(lp) for c, lp in zip(choices, row, strict=True)},
                        prompt_sent=enc.text,
                        latency_s=latency,
                    )
        return [r for r in results if r is not None]

    def _call_memo(self, model: Any, rows: Sequence[list[int]]
                   ) -> local_prefill.PrefixMemo | None:
        """The prefix every row of this call shares, read once (None: no prefix caching)."""
        if not self._cache_prefill:
            return None
        return local_prefill.call_memo(model, rows, self.device)

    def _order(self, rows: Sequence[list[int]]) -> list[int]:
        """Longest rows first; rows that share a long prefix (the two orders of a verdict)
        next to each other, so they share a batch and their prefix is read once."""
        if self._cache_prefill:
            return local_prefill.grouped_order(rows)
        return sorted(range(len(rows)), key=lambda i: -len(rows[i]))

    def _chunks(self, order: list[int], rows: Sequence[list[int]], *, slack: float = 0.0
                ) -> list[list[int]]:
        """Split indices (sorted longest first) into batches of at most ``max_batch_size``
        rows and ``max_batch_tokens`` tokens read, so similar lengths share a batch. A prefix
        that all rows of a batch share is read once (see ``local_prefill``) and counted once.
        With ``slack`` > 0 a batch also ends before a row shorter than ``slack`` times its
        longest row, which bounds the padding read (worth it where no decode steps follow,
        since more, smaller batches then cost nothing but a few more forward calls)."""
        chunks: list[list[int]] = []
        current: list[int] = []
        shared = 0
        saved = 0  # tokens that rows share with the row before them beyond the batch prefix
        for i in order:
            row = rows[i]
            if current:
                first = rows[current[0]]
                common = local_prefill.common_prefix(first, row, shared)
                width = len(first)
                counted = common if local_prefill.worth_sharing(common, width) else 0
                grouped = (local_prefill.common_prefix(rows[current[-1]], row, len(row) - 1)
                           - counted) if self._cache_prefill else 0
                extra = grouped if grouped >= local_prefill.MIN_GROUP_TOKENS else 0
                cost = counted + (len(current) + 1) * (width - counted) - saved - extra
                if (len(current) >= self.max_batch_size or cost > self.max_batch_tokens
                        or len(row) - counted < slack * (width - counted)):
                    chunks.append(current)
                    current, shared, saved = [], len(row), 0
                else:
                    shared, saved = common, saved + extra
            else:
                shared = len(row)
            current.append(i)
        if current:
            chunks.append(current)
        return chunks

    def _score_chunks(self, order: list[int], rows: Sequence[list[int]], decode_steps: int = 0,
                      *, paid: int = 0) -> list[list[int]]:
        """Split indices (from ``_order``) into the batches that cost least.

        A batch costs the tokens it reads (padding included; a shared prefix once, rows that
        share more in ``local_prefill``'s grouped layout), a fixed overhead per forward pass,
        and, for generation, ``decode_steps`` steps whose fixed cost (reading the weights)
        does not depend on the rows in the batch. Every cut of ``order`` into consecutive
        batches within the size limits is considered (dynamic programming). ``paid``: the
        leading tokens of every row already read once for the call (``PrefixMemo``), which
        no batch reads again."""
        if not self._cache_prefill:
            return self._chunks(order, rows, slack=0.0 if decode_steps else SCORE_SLACK)
        if paid:
            rows = [r[paid:] for r in rows]
        step = local_prefill.PASS_OVERHEAD_TOKENS + decode_steps * DECODE_STEP_TOKENS
        n = len(order)
        best = [0.0] + [math.inf] * n
        cut = [0] * (n + 1)
        for start in range(n):
            if best[start] == math.inf:
                continue
            for end, cost in local_prefill.batch_costs(
                    [rows[i] for i in order[start:start + self.max_batch_size]]):
                if cost > self.max_batch_tokens and end > 1:
                    break
                total = best[start] + cost + step
                if total < best[start + end]:
                    best[start + end], cut[start + end] = total, start
        chunks: list[list[int]] = []
        end = n
        while end > 0:
            chunks.append(order[cut[end]:end])
            end = cut[end]
        return chunks[::-1]

    def choice_token_id(self, choice: str) -> int:
        """The token of ``choice`` after the answer prefix's ``(`` (see ``choice_tokens``)."""
        from backend.engines import choice_tokens

        if choice not in self._choice_ids:
            self._choice_ids[choice] = choice_tokens.choice_token_id(
                self._tok, choice, model=f"the model {self.info.model!r}")
        return self._choice_ids[choice]

    def health(self) -> Health:
        if self._model is None:
            return Health(ok=False, message=f"{self.info.model} is closed")
        return Health(ok=True, message=f"{self.info.model} loaded on {self.device}",
                      models=(self.info.model,))

    def close(self) -> None:
        with self._lock:
            self._model = None
            gc.collect()
            if self.device.startswith("cuda"):
                self._torch.cuda.empty_cache()
