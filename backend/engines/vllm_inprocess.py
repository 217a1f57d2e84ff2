"""vLLM in this process (``vllm.LLM``): for a GPU machine without a separate ``vllm serve``.

vLLM is an optional extra (``pip install 'constitution-studio[gpu]'``) and is imported when an
engine is constructed. Chat prompts go through ``LLM.chat`` (the model's chat template, with
``add_generation_prompt``/``continue_final_message``), raw prompts through ``LLM.generate``.

``stream`` does not stream token by token: ``vllm.LLM`` is a batch API, so the whole generation
is produced and yielded as a single delta. Use ``vllm serve`` with the OpenAI-compatible engine
for true streaming.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from backend.engines import choice_tokens
from backend.engines.base import (
    ChoiceScores,
    EngineInfo,
    Generation,
    GenerationParams,
    Health,
    Prompt,
)
from backend.errors import EngineError

TOP_LOGPROBS = 20  # vLLM's default cap on returned logprobs


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    assert prompt.messages is not None
    return [{"role": m.role, "content": m.content} for m in prompt.messages]


class VLLMInProcessEngine:
    """The Engine protocol on ``vllm.LLM``. ``engine_args`` go to ``vllm.LLM`` unchanged
    (e.g. ``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``)."""

    def __init__(self, model_path: str, *, dtype: str = "auto", display_name: str | None = None,
                 **engine_args: Any) -> None:
        try:
            vllm: Any = importlib.import_module("vllm")
        except ImportError as exc:
            raise EngineError(
                "vLLM is not installed; pip install 'constitution-studio[gpu]' "
                "(or use the local transformers engine, or point the OpenAI-compatible engine "
                "at a running `vllm serve`)"
            ) from exc
        self._vllm: Any = vllm
        self.model_path = model_path
        self.info = EngineInfo(kind="vllm_inprocess", model=display_name or model_path,
                               detail="vllm.LLM in process")
        try:
            self._llm: Any = vllm.LLM(model=model_path, dtype=dtype, **engine_args)
        except Exception as exc:
            raise EngineError(
                f"vLLM could not load the model {model_path!r}: {type(exc).__name__}: {exc}. "
                "Check the path or Hub id and that the GPU has enough free memory."
            ) from exc
        self._tok: Any = self._llm.get_tokenizer()
        self._choice_ids: dict[str, int] = {}

    def _live(self) -> Any:
        if self._llm is None:
            raise EngineError(f"the engine for {self.info.model!r} is closed")
        return self._llm

    def _sampling(self, params: GenerationParams) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
            stop=list(params.stop) or None, seed=params.seed,
        )

    def _run(self, prompts: Sequence[Prompt], sampling: Any) -> list[tuple[str, Any]]:
        """(prompt text sent, RequestOutput) per prompt, in order. Prompts are grouped so each
        vLLM call shares one ``add_generation_prompt``/``continue_final_message`` setting."""
        llm = self._live()
        results: list[tuple[str, Any] | None] = [None] * len(prompts)
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            key = "raw" if p.messages is None else ("continue" if p.continue_final else "chat")
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            if key == "raw":
                texts = [prompts[i].text or "" for i in idx]
                outs = llm.generate(texts, sampling_params=sampling, use_tqdm=False)
                sent = texts
            else:
                cont = key == "continue"
                convs = [_messages(prompts[i]) for i in idx]
                outs = llm.chat(convs, sampling_params=sampling, use_tqdm=False,
                                add_generation_prompt=not cont,
                                continue_final_message=cont)
                sent = [
                    out.prompt if isinstance(out.prompt, str) else str(
                        self._tok.apply_chat_template(conv, tokenize=False,
                                                      add_generation_prompt=not cont,
                                                      continue_final_message=cont))
                    for out, conv in zip(outs, convs, strict=True)
                ]
            for i, text, out in zip(idx, sent, outs, strict=True):
                results[i] = (text, out)
        return [r for r in results if r is not None]

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        if not prompts:
            return []
        began = time.perf_counter()
        runs = self._run(prompts, self._sampling(params))
        latency = time.perf_counter() - began
        generations = []
        for sent, out in runs:
            completion = out.outputs[0]
            generations.append(Generation(
                text=str(completion.text), prompt_sent=sent,
                finish_reason="length" if completion.finish_reason == "length" else "stop",
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(completion.token_ids), latency_s=latency,
            ))
        return generations

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        """Generates the whole text, then yields it once (``vllm.LLM`` is not incremental)."""
        text = self.generate([prompt], params)[0].text
        if text:
            yield text

    def choice_token_id(self, choice: str) -> int:
        """The token of ``choice`` after the answer prefix's ``(`` (see ``choice_tokens``)."""
        if choice not in self._choice_ids:
            self._choice_ids[choice] = choice_tokens.choice_token_id(
                self._tok, choice, model=f"the model {self.info.model!r}")
        return self._choice_ids[choice]

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        """Top-20 next-token logprobs from one ``max_tokens=1`` greedy step per prompt. A
        choice missing from the top 20 gets a bounded estimate (``ChoiceScores.bounded``); a
        prompt with no choice in its top 20 is unscorable (see ``choice_tokens``)."""
        if not choices:
            raise EngineError("score_choices needs at least one choice")
        if not prompts:
            return []
        ids = [self.choice_token_id(c) for c in choices]
        sampling = self._vllm.SamplingParams(max_tokens=1, logprobs=TOP_LOGPROBS, temperature=0)
        began = time.perf_counter()
        runs = self._run(prompts, sampling)
        latency = time.perf_counter() - began
        scores = []
        for sent, out in runs:
            top: dict[int, Any] = (out.outputs[0].logprobs or [{}])[0]
            by_id = dict(zip(ids, choices, strict=True))
            pairs = [(by_id.get(t) or str(getattr(lp, "decoded_token", None) or t),
                      float(lp.logprob)) for t, lp in top.items()]
            scores.append(choice_tokens.scores_from_top(pairs, choices, prompt_sent=sent,
                                                        latency_s=latency))
        return scores

    def health(self) -> Health:
        if self._llm is None:
            return Health(ok=False, message=f"{self.info.model} is closed")
        return Health(ok=True, message=f"{self.info.model} loaded in vLLM",
                      models=(self.info.model,))

    def close(self) -> None:
        self._llm = None
