"""Engine for any OpenAI-compatible server, built for ``vllm serve``.

Throughput comes from many requests in flight (the server batches them continuously): the sync
Protocol methods hand their prompts to a private event loop in a daemon thread, which sends them
all at once while a semaphore keeps at most ``max_in_flight`` outstanding. Each in-flight slot
uses its own single-connection ``httpx.AsyncClient``: httpcore's pool scans every connection on
each request, which at 64 connections costs ~15 ms of CPU per request (a ~50 requests/s ceiling,
measured); single-connection pools keep that constant. 5xx, 429, connection errors and timeouts
are retried with exponential backoff and jitter; other 4xx are not. Every failure surfaces as an
``EngineError`` naming the server.

How many requests are in flight adapts to what the server sustains (``inflight``), and a
request is timed from when it is sent, not while it waits for a slot. A chat prompt that
continues an assistant message (``The answer is: (``) is sent with ``continue_final_message``
only to servers that honour it (vLLM does; llama.cpp's server accepts the flag and ignores it,
which is detected by comparing prompt token counts): otherwise the model's chat template is
applied here (``chat_template``) and the text goes to ``/v1/completions``. Choice scores come
from the next token's top-k (``choice_tokens``); where a choice is missing and the server offers
``prompt_logprobs`` (vLLM), it is scored exactly as a continuation instead. A prompt the server
rejects (too long, ...) is returned as unscorable rather than failing its whole batch.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from backend.engines.base import (
    ChoiceScores,
    EngineInfo,
    Generation,
    GenerationParams,
    Health,
    Prompt,
    storable_text,
)
from backend.engines.chat_template import ChatTemplate, load_chat_template
from backend.engines.choice_tokens import (
    check_choices,
    scores_from_logprobs,
    scores_from_top,
    token_is_choice,
)
from backend.engines.inflight import AdaptiveLimit, Outcome
from backend.errors import EngineError

T = TypeVar("T")
Continuation = Literal["auto", "server", "client"]
RETRYABLE = frozenset({429, 500, 502, 503, 504})
OVERLOAD = frozenset({429, 503})
PROMPT_REJECTIONS = frozenset({400, 413, 422})  # about this prompt (too long, ...), not the server
COMPLETIONS = "/v1/completions"
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


class ServerRejected(EngineError):
    """The server refused one request (a 4xx other than 429)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OpenAICompatEngine:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 max_in_flight: int = 64, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 0.5, top_logprobs: int = 20,
                 chat_template: str | None = None, continuation: Continuation = "auto",
                 adaptive: bool = True) -> None:
        """``max_in_flight`` is the most requests in flight (the limit adapts below it unless
        ``adaptive`` is off). ``chat_template`` (a .gguf file, tokenizer folder, .jinja file or
        template text) is applied client-side when the server does not continue assistant
        messages; without it the engine asks the server (``/props``) or reads the served
        model's .gguf when the model name is a local path. ``continuation``: ``auto`` detects
        it, ``server`` trusts the server, ``client`` always applies the template here."""
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
        self._limit = AdaptiveLimit(max_in_flight, adaptive=adaptive)
        self._template_source = chat_template
        self._continuation: Continuation = continuation
        self._continues: bool | None = {"auto": None, "server": True, "client": False}[
            continuation]
        self._template: ChatTemplate | None = None
        self._prompt_logprobs: bool | None = None  # does the server offer prompt_logprobs?
        self._probe_lock: asyncio.Lock | None = None
        self._props_template: ChatTemplate | None = None
        self._owner: str | None = None
        self._discovered = False
        self._discover_lock: asyncio.Lock | None = None
        self._clients: list[httpx.AsyncClient] = []  # one per slot, made on demand
        self._idle: list[httpx.AsyncClient] = []
        self._sync = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  verify=tls_context())
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the caller gave up (or failed): abandon the requests in flight
            raise

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

    def _reject(self, path: str, status: int, body: bytes) -> ServerRejected:
        hint = ""
        if status in (401, 403):
            hint = " (check CSTUDIO_ENGINE_API_KEY)"
        elif status == 404:
            hint = f" (is model {self.model!r} served there? check CSTUDIO_ENGINE_MODEL)"
        return ServerRejected(f"the model server at {self.base_url}{path} rejected the request "
                              f"(HTTP {status}): {server_message(body)}{hint}", status)

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

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The parsed answer and the seconds it took from when it was sent (the successful
        attempt only; waiting for a slot and backing off are not counted). The timeout also
        runs from the send; a request that times out is cancelled (its connection closed)."""
        last: str | None = None
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._wait_s(attempt - 1))
            epoch = await self._limit.acquire()  # no slot is held while backing off
            outcome = Outcome.FAILED
            client = self._idle.pop() if self._idle else self._new_client()
            sent = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    resp = await client.post(path, json=body)
                latency = time.perf_counter() - sent
                outcome = (Outcome.OVERLOADED if resp.status_code in OVERLOAD else
                           self._limit.classify((path, body.get("max_tokens")), latency,
                                                self.timeout_s))
            except (TimeoutError, httpx.TimeoutException):
                outcome, last = Outcome.OVERLOADED, None
                continue
            except httpx.TransportError as exc:
                last = transport_failure(exc)
                continue
            finally:
                self._idle.append(client)
                self._limit.release(outcome, epoch)
            if resp.status_code in RETRYABLE:
                last = f"HTTP {resp.status_code}: {server_message(resp.content)}"
                continue
            if resp.status_code >= 400:
                raise self._reject(path, resp.status_code, resp.content)
            return self._parse(path, resp.content), latency
        raise self._give_up(path, attempts, last)

    @property
    def in_flight_limit(self) -> int:
        """The number of requests the engine now keeps in flight at most."""
        return self._limit.current

    async def _request(self, prompt: Prompt, fields: dict[str, Any]
                       ) -> tuple[str, dict[str, Any], str]:
        """(path, body, the text the model sees or a rendering of the messages)."""
        await self._discover()
        body: dict[str, Any] = {"model": self.model, **fields}
        if prompt.text is not None:
            return COMPLETIONS, {**body, "prompt": prompt.text}, prompt.text
        assert prompt.messages is not None
        if prompt.continue_final and not await self.continues_final():
            template = await self._chat_template()
            text = template.render(prompt.messages, continue_final=True)
            return COMPLETIONS, {**body, "prompt": text}, text
        body["messages"] = chat_payload(prompt)
        if prompt.continue_final:
            body.update(add_generation_prompt=False, continue_final_message=True)
        return "/v1/chat/completions", body, render_prompt(prompt)

    # -- continuation and the chat template -----------------------------------------------
    async def continues_final(self) -> bool:
        """Whether the server continues a final assistant message (probed once)."""
        if self._continues is None:
            if self._probe_lock is None:
                self._probe_lock = asyncio.Lock()
            async with self._probe_lock:
                if self._continues is None:
                    self._continues = await self._probe_continuation()
        return self._continues

    async def _prompt_tokens(self, path: str, fields: dict[str, Any]) -> int | None:
        data, _ = await self._post(path, {"model": self.model, "max_tokens": 1,
                                          "temperature": 0.0, **fields})
        usage = data.get("usage")
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return count if isinstance(count, int) else None

    async def _probe_continuation(self) -> bool:
        """vLLM honours ``continue_final_message``. Elsewhere: a continued prompt is the
        fresh prompt plus the tail's tokens; a server that ignores the flag closes the
        assistant turn and opens a new one, so it reads more tokens than that."""
        if self._owner == "vllm":
            return True
        user, tail = {"role": "user", "content": "Say yes."}, "The answer is: ("
        try:
            continued = await self._prompt_tokens("/v1/chat/completions", {
                "messages": [user, {"role": "assistant", "content": tail}],
                "add_generation_prompt": False, "continue_final_message": True})
            fresh = await self._prompt_tokens("/v1/chat/completions", {"messages": [user]})
            with_tail = await self._prompt_tokens(COMPLETIONS, {"prompt": "Hi " + tail})
            alone = await self._prompt_tokens(COMPLETIONS, {"prompt": "Hi"})
        except ServerRejected:
            return False  # refuses the flag or the completions endpoint: apply it here
        if continued is None or fresh is None or with_tail is None or alone is None:
            return True  # no token counts to compare: trust the server
        return continued - fresh <= with_tail - alone

    async def _discover(self) -> None:
        """Once per engine, before the first request: who serves, and llama.cpp's props."""
        if self._discovered:
            return
        if self._discover_lock is None:
            self._discover_lock = asyncio.Lock()
        async with self._discover_lock:
            if not self._discovered:
                self._owner = await self._served_by()
                self._discovered = True

    async def _served_by(self) -> str | None:
        """Who serves the model (``owned_by`` in ``/v1/models``). Also reads llama.cpp's
        ``/props``: its chat template, and ``total_slots`` (how many requests it runs at
        once), which caps the number in flight."""
        client = self._idle.pop() if self._idle else self._new_client()
        owner: str | None = None
        try:
            resp = await client.get("/v1/models")
            data = resp.json() if resp.status_code == 200 else {}
            rows = data.get("data") if isinstance(data, dict) else None
            owners = [r.get("owned_by") for r in rows or [] if isinstance(r, dict)]
            owner = str(owners[0]) if owners else None
            resp = await client.get("/props")
            props = resp.json() if resp.status_code == 200 else {}
            if isinstance(props, dict):
                self._read_props(props)
        except (httpx.HTTPError, ValueError):
            pass
        finally:
            self._idle.append(client)
        return owner

    def _read_props(self, props: dict[str, Any]) -> None:
        if isinstance(props.get("chat_template"), str) and props["chat_template"]:
            self._props_template = ChatTemplate(
                props["chat_template"], f"{self.base_url}/props",
                str(props.get("bos_token") or ""), str(props.get("eos_token") or ""))
        slots = props.get("total_slots")
        if isinstance(slots, int) and slots > 0:
            self._limit.cap(slots)

    async def _chat_template(self) -> ChatTemplate:
        if self._template is None:
            self._template = await asyncio.to_thread(self._find_template)
        return self._template

    def _find_template(self) -> ChatTemplate:
        if self._template_source:
            return load_chat_template(self._template_source)
        if self._props_template is not None:  # llama.cpp's own server publishes it
            return self._props_template
        local = Path(self.model).expanduser()  # llama-cpp-python names a model by its path
        if (local.suffix == ".gguf" and local.is_file()) or local.is_dir():
            return load_chat_template(str(local))
        raise self._err("", "does not continue an assistant message (it ignores "
                            "continue_final_message), and no chat template is known to apply "
                            "here instead: set CSTUDIO_ENGINE_CHAT_TEMPLATE to the model's "
                            ".gguf file, tokenizer folder or a .jinja file, or use the raw "
                            "prompt form (--form raw)")

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
        path, body, sent = await self._request(prompt, self._fields(params))
        data, latency = await self._post(path, body)
        choice = data["choices"][0]
        if path == COMPLETIONS:
            text = choice.get("text")
        else:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        tokens = [n if isinstance(n, int) else None
                  for n in (usage.get("prompt_tokens"), usage.get("completion_tokens"))]
        return Generation(text=text if isinstance(text, str) else "", prompt_sent=sent,
                          finish_reason=str(choice.get("finish_reason") or "stop"),
                          prompt_tokens=tokens[0], completion_tokens=tokens[1], latency_s=latency)

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        """Probability of each choice as the next token, from one ``max_tokens=1`` request
        each (see ``choice_tokens.scores_from_top``: merged spellings, bounded estimates for
        a choice missing from the top-k, unscorable when none is there). A bounded choice is
        scored exactly where the server offers ``prompt_logprobs``. A prompt the server
        rejects is unscorable; server-level failures raise ``EngineError``."""
        check_choices(choices)
        return self._run_all([self._score_one(p, list(choices)) for p in prompts])

    async def _score_one(self, prompt: Prompt, choices: list[str]) -> ChoiceScores:
        fields: dict[str, Any] = {"max_tokens": 1, "temperature": 0.0}
        path, body, sent = await self._request(prompt, fields)
        if path == COMPLETIONS:
            body["logprobs"] = self.top_logprobs
        else:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        try:
            data, latency = await self._post(path, body)
        except ServerRejected as exc:
            if exc.status not in PROMPT_REJECTIONS:
                raise
            return ChoiceScores(probs={}, logprobs=dict.fromkeys(choices), prompt_sent=sent,
                                unscorable=str(exc))
        top = self._top_logprobs(path, data["choices"][0], path == COMPLETIONS)
        scores = scores_from_top(top, choices, prompt_sent=sent, latency_s=latency)
        missing = scores.bounded or (() if scores.scored else tuple(choices))
        if missing and self._prompt_logprobs is not False:
            exact = dict(scores.logprobs)
            for choice in missing:
                exact[choice] = await self._continuation_logprob(path, body, choice)
            known = {c: lp for c, lp in exact.items() if lp is not None}
            if len(known) == len(choices):
                return scores_from_logprobs(known, prompt_sent=sent, latency_s=latency)
        return scores

    async def _continuation_logprob(self, path: str, body: dict[str, Any], choice: str
                                    ) -> float | None:
        """log p(choice | prompt) from ``prompt_logprobs`` (vLLM) on the prompt extended by
        the choice; ``None`` where the server does not offer it."""
        extended = dict(body, max_tokens=1, prompt_logprobs=0)
        extended.pop("logprobs", None)
        extended.pop("top_logprobs", None)
        if path == COMPLETIONS:
            extended["prompt"] = body["prompt"] + choice
        else:
            messages = [dict(m) for m in body["messages"]]
            messages[-1]["content"] += choice
            extended["messages"] = messages
        try:
            data, _ = await self._post(path, extended)
        except ServerRejected:
            self._prompt_logprobs = False
            return None
        entries = data.get("prompt_logprobs") or data["choices"][0].get("prompt_logprobs")
        last = entries[-1] if isinstance(entries, list) and entries else None
        if not isinstance(last, dict):
            self._prompt_logprobs = False
            return None
        self._prompt_logprobs = True
        for value in last.values():
            if isinstance(value, dict) and token_is_choice(str(value.get("decoded_token")),
                                                           choice):
                logprob = value.get("logprob")
                return float(logprob) if isinstance(logprob, int | float) else None
        return None  # the server tokenised "(A" as one token: keep the bounded estimate

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
        path, body, _ = self._run(self._request(prompt, {**self._fields(params),
                                                         "stream": True}))
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
                    yield from self._deltas(path, resp, path == COMPLETIONS, body)
                    return
            except httpx.TimeoutException:
                last = None
            except httpx.TransportError as exc:
                last = transport_failure(exc)
        raise self._give_up(path, attempts, last)

    def _deltas(self, path: str, resp: httpx.Response, completions: bool,
                body: dict[str, Any]) -> Iterator[str]:
        started = finished = False
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
                    yield storable_text(text)
                if isinstance(first, dict) and first.get("finish_reason"):
                    finished = True
        except httpx.TransportError as exc:
            if not started:
                raise  # nothing shown yet: stream() retries
            raise self._err(path, f"broke off mid-stream ({type(exc).__name__}); "
                                  f"{HINT.format(url=self.base_url)}") from None
        if not started and not finished:  # HTTP 200, nothing streamed, no [DONE]
            raise self._err(path, "ended the stream without any text or [DONE]: "
                                  f"{self._why_empty(path, body)}")
        if not finished:  # text, then silence: never a finish_reason nor [DONE]
            raise self._err(path, "ended the stream before finishing (no finish_reason or "
                                  "[DONE]); the text so far is incomplete. A server that "
                                  "answers one request at a time (llama-cpp-python) may have "
                                  "interrupted it for another request")

    def _why_empty(self, path: str, body: dict[str, Any]) -> str:
        """The server's reason for an empty stream (llama.cpp's server reports an over-long
        prompt only on the unstreamed request): ask again without streaming, one token."""
        resp: httpx.Response | None = None
        for _ in range(2):  # the broken stream may have left a dead keep-alive connection
            try:
                resp = self._sync.post(path, json={**body, "stream": False, "max_tokens": 1})
                break
            except httpx.HTTPError as exc:
                failure = transport_failure(exc)
        if resp is None:
            return failure
        if resp.status_code >= 400:
            return f"HTTP {resp.status_code}: {server_message(resp.content)}"
        return "the server gave no reason (the same request unstreamed succeeds)"

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
