"""Engine for any OpenAI-compatible server, built for ``vllm serve``.

Throughput comes from many requests in flight (the server batches them continuously): the sync
Protocol methods hand their prompts to a private event loop in a daemon thread, which sends them
all at once while a semaphore keeps at most ``max_in_flight`` outstanding. Each in-flight slot
uses its own single-connection ``httpx.AsyncClient``: httpcore's pool scans every connection on
each request, which at 64 connections costs ~15 ms of CPU per request (a ~50 requests/s ceiling,
measured); single-connection pools keep that constant. 5xx, 429, connection errors and timeouts
are retried with exponential backoff and jitter; other 4xx are not. Every failure surfaces as an
``EngineError`` naming the server.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from functools import cache
from typing import Any, TypeVar

import httpx

from backend.engines.base import (
    ChoiceScores,
    EngineInfo,
    Generation,
    GenerationParams,
    Health,
    Prompt,
)
from backend.errors import ChoiceTokenError, EngineError

T = TypeVar("T")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
HINT = "is `vllm serve` running at {url}? check CSTUDIO_ENGINE_BASE_URL"


def server_message(body: bytes | str) -> str:
    """The server's error message from either vLLM error-body style, else the raw text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])  # newer vLLM: {"error": {"message": ...}}
    for key in ("message", "detail"):  # older vLLM: {"object": "error", "message": ...}
        if isinstance(data, dict) and data.get(key):
            return str(data[key])
    return str(err) if isinstance(err, str) else text.strip()[:500]


def transport_failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default context (honours SSL_CERT_FILE), built once: per client it costs ~50 ms."""
    return httpx.create_ssl_context()


def chat_payload(prompt: Prompt) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in prompt.messages or ()]


def render_prompt(prompt: Prompt) -> str:
    """The raw text, or for chat the messages as JSON (the server applies the template)."""
    if prompt.text is not None:
        return prompt.text
    return json.dumps(chat_payload(prompt), ensure_ascii=False, indent=2)


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class OpenAICompatEngine:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 max_in_flight: int = 64, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 0.5, top_logprobs: int = 20) -> None:
        if max_in_flight < 1 or timeout_s <= 0 or max_retries < 0 or top_logprobs < 1:
            raise ValueError("max_in_flight, timeout_s and top_logprobs must be positive, "
                             "max_retries non-negative")
        url = base_url.rstrip("/")
        self.base_url = url[:-3] if url.endswith("/v1") else url  # accept OpenAI-style .../v1
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.top_logprobs = top_logprobs
        self.info = EngineInfo(kind="openai_compat", model=model, is_demo=False,
                               detail=self.base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"openai-compat-{self.base_url}")
        self._thread.start()
        self._client_options: dict[str, Any] = {
            "base_url": self.base_url, "headers": headers, "timeout": timeout,
            "verify": tls_context(), "limits": httpx.Limits(max_connections=1)}
        self._sem = asyncio.Semaphore(max_in_flight)  # binds to the loop on first use
        self._clients: list[httpx.AsyncClient] = []  # one per slot, made on demand
        self._idle: list[httpx.AsyncClient] = []
        self._sync = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  verify=tls_context())
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _run_all(self, coros: list[Coroutine[Any, Any, T]]) -> list[T]:
        """Run coroutines concurrently; on the first failure cancel the rest and raise it."""
        if self._closed:
            for c in coros:
                c.close()
            raise self._err("", "is no longer in use: this engine was closed")

        async def gather() -> list[T]:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(c) for c in coros]
            return [t.result() for t in tasks]

        try:
            return self._run(gather())
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None

    def _wait_s(self, attempt: int) -> float:
        delay = self.backoff_s * (2 ** attempt)
        return float(delay + random.uniform(0, delay * 0.1))

    def _give_up(self, path: str, attempts: int, last: str | None) -> EngineError:
        """``last`` is how the final attempt failed; ``None`` means it timed out."""
        hint = HINT.format(url=self.base_url)
        if last is None:
            return self._err(path, f"timed out (no answer within {self.timeout_s:g} s) on all "
                                   f"{attempts} attempts; {hint} and not overloaded?")
        return self._err(path, f"failed on all {attempts} attempts: {last}; {hint}")

    def _reject(self, path: str, status: int, body: bytes) -> EngineError:
        hint = ""
        if status in (401, 403):
            hint = " (check CSTUDIO_ENGINE_API_KEY)"
        elif status == 404:
            hint = f" (is model {self.model!r} served there? check CSTUDIO_ENGINE_MODEL)"
        return self._err(path, f"rejected the request (HTTP {status}): "
                               f"{server_message(body)}{hint}")

    def _err(self, path: str, what: str) -> EngineError:
        return EngineError(f"the model server at {self.base_url}{path} {what}")

    def _parse(self, path: str, content: bytes | str) -> dict[str, Any]:
        """A JSON object with a non-empty ``choices`` list, or ``EngineError``."""
        try:
            data: Any = json.loads(content)
        except ValueError:
            raise self._err(path, f"answered with malformed JSON: {content[:200]!r}") from None
        if isinstance(data, dict) and ("error" in data or data.get("object") == "error"):
            raise self._err(path, f"returned an error: {server_message(content)}")
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._err(path, "answered without 'choices'; is it OpenAI-compatible?")
        result: dict[str, Any] = data
        return result

    def _new_client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(**self._client_options)
        self._clients.append(client)
        return client

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last: str | None = None
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._wait_s(attempt - 1))
            async with self._sem:  # not held while backing off
                client = self._idle.pop() if self._idle else self._new_client()
                try:
                    async with asyncio.timeout(self.timeout_s):
                        resp = await client.post(path, json=body)
                except (TimeoutError, httpx.TimeoutException):
                    last = None
                    continue
                except httpx.TransportError as exc:
                    last = transport_failure(exc)
                    continue
                finally:
                    self._idle.append(client)
            if resp.status_code in RETRYABLE:
                last = f"HTTP {resp.status_code}: {server_message(resp.content)}"
                continue
            if resp.status_code >= 400:
                raise self._reject(path, resp.status_code, resp.content)
            return self._parse(path, resp.content)
        raise self._give_up(path, attempts, last)

    def _request(self, prompt: Prompt, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, **fields}
        if prompt.text is not None:
            return "/v1/completions", {**body, "prompt": prompt.text}
        body["messages"] = chat_payload(prompt)
        if prompt.continue_final:
            body.update(add_generation_prompt=False, continue_final_message=True)
        return "/v1/chat/completions", body

    @staticmethod
    def _fields(params: GenerationParams) -> dict[str, Any]:
        fields: dict[str, Any] = {"max_tokens": params.max_tokens,
                                  "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            fields["stop"] = list(params.stop)
        if params.seed is not None:
            fields["seed"] = params.seed
        return fields

    # -- Engine protocol ------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        return self._run_all([self._generate_one(p, params) for p in prompts])

    async def _generate_one(self, prompt: Prompt, params: GenerationParams) -> Generation:
        path, body = self._request(prompt, self._fields(params))
        start = time.perf_counter()
        data = await self._post(path, body)
        latency = time.perf_counter() - start
        choice = data["choices"][0]
        if prompt.text is not None:
            text = choice.get("text")
        else:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        tokens = [n if isinstance(n, int) else None
                  for n in (usage.get("prompt_tokens"), usage.get("completion_tokens"))]
        return Generation(text=text if isinstance(text, str) else "",
                          prompt_sent=render_prompt(prompt),
                          finish_reason=str(choice.get("finish_reason") or "stop"),
                          prompt_tokens=tokens[0], completion_tokens=tokens[1], latency_s=latency)

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        """Probability of each choice as the next token, from one ``max_tokens=1`` request each.

        A top-k token counts for a choice when ``token.strip() == choice`` (so ``"A"`` and
        ``" A"`` merge, via logsumexp). Probabilities are renormalised over the choices found;
        a choice absent from the top-k gets logprob ``None`` and probability 0. If *no* choice
        appears in the top-k, ``EngineError`` is raised rather than inventing a verdict.
        """
        names = [c.strip() for c in choices]
        if not names or not all(names) or len(set(names)) != len(names):
            raise ChoiceTokenError(f"choices must be distinct non-blank tokens, got {choices!r}")
        return self._run_all([self._score_one(p, list(choices)) for p in prompts])

    async def _score_one(self, prompt: Prompt, choices: list[str]) -> ChoiceScores:
        fields: dict[str, Any] = {"max_tokens": 1, "temperature": 0.0}
        if prompt.text is not None:
            fields["logprobs"] = self.top_logprobs
        else:
            fields.update(logprobs=True, top_logprobs=self.top_logprobs)
        path, body = self._request(prompt, fields)
        start = time.perf_counter()
        data = await self._post(path, body)
        latency = time.perf_counter() - start
        top = self._top_logprobs(path, data["choices"][0], prompt.text is not None)
        by_name = {c.strip(): c for c in choices}
        found: dict[str, list[float]] = {}
        for token, logprob in top:
            if token.strip() in by_name and math.isfinite(logprob):
                found.setdefault(by_name[token.strip()], []).append(logprob)
        if not found:
            shown = ", ".join(repr(t) for t, _ in top[:10])
            raise self._err(path, f"put none of the choices {choices} in its top {len(top)} "
                                  f"next tokens (top: {shown}); check that the prompt ends "
                                  "where the choice token should follow")
        logprobs: dict[str, float | None] = {
            c: (logsumexp(found[c]) if c in found else None) for c in choices}
        norm = logsumexp([lp for lp in logprobs.values() if lp is not None])
        probs = {c: (math.exp(lp - norm) if lp is not None else 0.0) for c, lp in logprobs.items()}
        return ChoiceScores(probs=probs, logprobs=logprobs, prompt_sent=render_prompt(prompt),
                            latency_s=latency)

    def _top_logprobs(self, path: str, choice: dict[str, Any], completions: bool
                      ) -> list[tuple[str, float]]:
        """(token, logprob) pairs for the first generated position, from either endpoint."""
        lp: Any = choice.get("logprobs")
        entries: list[tuple[Any, Any]]
        try:  # completions: {token: logprob}; chat: [{"token": ..., "logprob": ...}]
            if completions:
                entries = list(lp["top_logprobs"][0].items())
            else:
                entries = [(e["token"], e["logprob"]) for e in lp["content"][0]["top_logprobs"]]
        except (KeyError, IndexError, TypeError, AttributeError):
            entries = []
        pairs = [(str(t), float(v)) for t, v in entries
                 if isinstance(t, str) and isinstance(v, int | float)]
        if not pairs:
            raise self._err(path, f"returned no logprobs; start vLLM with --max-logprobs ≥ "
                                  f"{self.top_logprobs} (or lower the engine's top_logprobs)")
        return pairs

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        """Deltas over SSE. Connection errors, timeouts, 429 and 5xx are retried until the
        first delta arrives; after that a failure raises ``EngineError``."""
        path, body = self._request(prompt, {**self._fields(params), "stream": True})
        last: str | None = None
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._wait_s(attempt - 1))
            try:
                with self._sync.stream("POST", path, json=body) as resp:
                    if resp.status_code in RETRYABLE:
                        last = f"HTTP {resp.status_code}: {server_message(resp.read())}"
                        continue
                    if resp.status_code >= 400:
                        raise self._reject(path, resp.status_code, resp.read())
                    yield from self._deltas(path, resp, prompt.text is not None)
                    return
            except httpx.TimeoutException:
                last = None
            except httpx.TransportError as exc:
                last = transport_failure(exc)
        raise self._give_up(path, attempts, last)

    def _deltas(self, path: str, resp: httpx.Response, completions: bool) -> Iterator[str]:
        started = False
        try:
            for line in resp.iter_lines():
                payload = line[5:].strip() if line.startswith("data:") else ""
                if payload == "[DONE]":
                    return
                if not payload:
                    continue
                try:
                    chunk: Any = json.loads(payload)
                except ValueError:
                    raise self._err(path, f"streamed malformed JSON: {payload[:200]!r}") from None
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk or chunk.get("object") == "error":
                    raise self._err(path, f"failed mid-stream: {server_message(payload)}")
                first = (chunk.get("choices") or [None])[0]  # usage-only chunks have none
                delta = first if completions or not isinstance(first, dict) else first.get("delta")
                text = delta.get("text" if completions else "content") if isinstance(
                    delta, dict) else None
                if isinstance(text, str) and text:
                    started = True
                    yield text
        except httpx.TransportError as exc:
            if not started:
                raise  # nothing shown yet: stream() retries
            raise self._err(path, f"broke off mid-stream ({type(exc).__name__}); "
                                  f"{HINT.format(url=self.base_url)}") from None

    def health(self) -> Health:
        """``/health`` then ``/v1/models``. Never raises; a model the server does not serve
        makes the engine unhealthy (every request would be a 404)."""
        try:
            quick = min(self.timeout_s, 5.0)
            resp = self._sync.get("/health", timeout=quick)
            if resp.status_code not in (200, 404):  # 404: not vLLM, rely on /v1/models
                return Health(False, f"the model server at {self.base_url} is not ready "
                                     f"(/health answered HTTP {resp.status_code})")
            resp = self._sync.get("/v1/models", timeout=quick)
            if resp.status_code != 200:
                return Health(False, f"the model server at {self.base_url}/v1/models answered "
                                     f"HTTP {resp.status_code}: {server_message(resp.content)}")
            data = resp.json()
            models = tuple(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict))
        except httpx.TransportError as exc:
            return Health(False, f"cannot reach the model server at {self.base_url} "
                                 f"({type(exc).__name__}); {HINT.format(url=self.base_url)}")
        except Exception as exc:  # never raise from a health check
            return Health(False, f"the model server at {self.base_url} gave an unusable "
                                 f"answer: {type(exc).__name__}: {exc}")
        if self.model not in models:
            return Health(False, f"the model server at {self.base_url} does not serve "
                                 f"{self.model!r} (it serves: {', '.join(models) or 'nothing'}); "
                                 "check CSTUDIO_ENGINE_MODEL", models)
        return Health(True, f"{self.model} is ready at {self.base_url}", models)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async def close_clients() -> None:
            await asyncio.gather(*(c.aclose() for c in self._clients))

        try:
            self._run(close_clients())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
            self._sync.close()
