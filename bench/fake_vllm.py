"""A scriptable fake of ``vllm serve``'s OpenAI-compatible API, for tests and benchmarks.

It answers ``/v1/completions``, ``/v1/chat/completions`` (also as SSE when ``stream`` is true),
``/health`` and ``/v1/models`` in the shapes vLLM documents, and records every request. A test
scripts its behaviour through ``FakeVLLM.behaviour`` (or ``set(...)``)::

    with FakeVLLM() as fake:
        fake.set(latency_s=0.1, fail_first=2, fail_status=503)
        engine = OpenAICompatEngine(fake.url, fake.model)

Requests are handled on one asyncio loop (latency uses ``asyncio.sleep``), so hundreds can be in
flight at once; ``max_in_flight`` records the most seen concurrently. ``FakeVLLMProcess`` runs
one in a child process, as a real server would be, so that its CPU does not compete with the
client's for the GIL (benchmarks use it).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

Mode = Literal["ok", "malformed", "no_choices", "no_logprobs", "error_old", "error_new", "hang",
               "empty_stream", "truncated_stream"]


@dataclass
class Behaviour:
    latency_s: float = 0.0  # before every /v1 answer
    mode: Mode = "ok"
    fail_first: int = 0  # this many /v1 requests fail with fail_status before the script applies
    fail_status: int = 500
    error_status: int = 400  # for error_old / error_new
    error_message: str = "This model's maximum context length is 4096 tokens."
    hang_s: float = 30.0  # mode "hang": sleep this long (cut short by disconnect or stop)
    text: str = "Hello there"
    deltas: tuple[str, ...] = ("Hel", "lo", " the", "re")  # what a stream sends
    delta_delay_s: float = 0.0
    top_logprobs: dict[str, float] = field(default_factory=lambda: {"A": -0.5, "B": -1.5})
    models: tuple[str, ...] = ("fake/model",)
    health_status: int = 200
    api_key: str | None = None  # set: /v1 requests without "Bearer <api_key>" get 401 (vLLM)
    owned_by: str = "vllm"
    # like llama.cpp's server: accept continue_final_message and start a new reply anyway
    ignores_continuation: bool = False
    # vLLM's prompt_logprobs: the logprob of the prompt's last token, by its text
    prompt_logprobs: dict[str, float] | None = None
    reject_containing: str | None = None  # 400 for a prompt containing this text
    props: dict[str, Any] | None = None  # llama-server's GET /props (404 when None)


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeVLLM:
    def __init__(self, model: str = "fake/model", **behaviour: Any) -> None:
        self.model = model
        self.behaviour = Behaviour(models=(model,), **behaviour)
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnected: list[dict[str, Any]] = []  # bodies the client abandoned mid-work
        self._stopping = threading.Event()
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (else +40 ms/request)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self._app(), log_level="warning", access_log=False,
                                backlog=4096, timeout_graceful_shutdown=1, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True, name=f"fake-vllm-{self.port}")

    # -- scripting ------------------------------------------------------------------------
    def set(self, **changes: Any) -> FakeVLLM:
        self.behaviour = replace(self.behaviour, **changes)
        return self

    def reset(self) -> None:
        self.requests.clear()
        self.max_in_flight = 0
        self.disconnected.clear()

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeVLLM:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake vLLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> FakeVLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the app --------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health() -> Response:
            return Response(status_code=self.behaviour.health_status)

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": self.behaviour.owned_by,
                 "root": m, "max_model_len": 4096} for m in self.behaviour.models]}

        @app.get("/props")
        async def props() -> Response:
            if self.behaviour.props is None:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            return JSONResponse(self.behaviour.props)

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            return await self._handle(request, chat=False)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            return await self._handle(request, chat=True)

        return app

    async def _handle(self, request: Request, chat: bool) -> Response:
        body = await request.json()
        self.requests.append(Received(request.url.path, body, dict(request.headers)))
        b = self.behaviour
        if b.api_key and request.headers.get("authorization") != f"Bearer {b.api_key}":
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if b.latency_s:
                await asyncio.sleep(b.latency_s)
            if b.fail_first > 0:
                b.fail_first -= 1
                return JSONResponse(_error_new("server overloaded", b.fail_status),
                                    status_code=b.fail_status)
            if b.mode == "hang":
                end = time.monotonic() + b.hang_s
                while time.monotonic() < end and not self._stopping.is_set():
                    if await request.is_disconnected():  # the client gave up
                        self.disconnected.append(body)
                        return Response(status_code=499)
                    await asyncio.sleep(0.02)
            if b.mode == "malformed":
                return PlainTextResponse('{"choices": [ this is not json', status_code=200,
                                         media_type="application/json")
            if b.mode == "no_choices":
                return JSONResponse({"id": "x", "object": "text_completion", "model": self.model})
            if b.mode == "error_old":
                return JSONResponse({"object": "error", "message": b.error_message,
                                     "type": "BadRequestError", "param": None,
                                     "code": b.error_status}, status_code=b.error_status)
            if b.mode == "error_new" or (b.reject_containing and b.reject_containing in
                                         json.dumps(body, ensure_ascii=False)):
                return JSONResponse(_error_new(b.error_message, b.error_status),
                                    status_code=b.error_status)
            if b.mode == "empty_stream" and body.get("stream"):  # llama.cpp, prompt too long
                return StreamingResponse(iter(()), media_type="text/event-stream")
            if b.mode == "empty_stream":
                return JSONResponse(_error_new(b.error_message, 400), status_code=400)
            if body.get("stream"):
                return StreamingResponse(self._sse(chat), media_type="text/event-stream")
            return JSONResponse(self._chat(body) if chat else self._completion(body))
        finally:
            self.in_flight -= 1

    def _usage(self, body: dict[str, Any] | None = None) -> dict[str, int]:
        """One token per word; a chat message adds 2 (its header and end of turn), the
        generation prompt 2, and a continued final message has no end of turn."""
        prompt = 7
        if body is not None and isinstance(body.get("prompt"), str):
            prompt = len(body["prompt"].split())
        elif body is not None and isinstance(body.get("messages"), list):
            prompt = sum(len(str(m.get("content", "")).split()) + 2 for m in body["messages"])
            if body.get("continue_final_message") and not self.behaviour.ignores_continuation:
                prompt -= 1
            else:
                prompt += 2
        return {"prompt_tokens": prompt, "total_tokens": prompt + 3, "completion_tokens": 3}

    def _prompt_logprobs(self, body: dict[str, Any]) -> list[Any] | None:
        table = self.behaviour.prompt_logprobs
        if table is None or body.get("prompt_logprobs") is None:
            return None
        text = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
        last = text[-1:]
        return [None, {"17": {"logprob": table.get(last, -30.0), "rank": 1,
                              "decoded_token": last}}]

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        b = self.behaviour
        logprobs = None
        if body.get("logprobs") is not None and b.mode != "no_logprobs":
            top = dict(b.top_logprobs)
            first = max(top, key=lambda t: top[t]) if top else "Z"
            logprobs = {"text_offset": [0], "token_logprobs": [top.get(first, -9.0)],
                        "tokens": [first], "top_logprobs": [top]}
        text = b.text if not body.get("logprobs") else next(iter(b.top_logprobs), "Z")
        return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [
                    {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"
                     if body.get("max_tokens") == 1 else "stop", "stop_reason": None,
                     "prompt_logprobs": self._prompt_logprobs(body)}], "usage": self._usage(body)}

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        b = self.behaviour
        logprobs = None
        if body.get("logprobs") and b.mode != "no_logprobs":
            top: list[dict[str, Any]] = [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                         for t, lp in b.top_logprobs.items()]
            best = max(top, key=lambda e: float(e["logprob"])) if top else {
                "token": "Z", "logprob": -9.0, "bytes": [90]}
            logprobs = {"content": [{**best, "top_logprobs": top}]}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": b.text,
                                             "tool_calls": []},
                     "logprobs": logprobs, "finish_reason": "stop", "stop_reason": None}],
                "prompt_logprobs": self._prompt_logprobs(body), "usage": self._usage(body)}

    async def _sse(self, chat: bool) -> AsyncIterator[str]:
        b = self.behaviour
        kind = "chat.completion.chunk" if chat else "text_completion"
        head = {"id": "fake-stream", "object": kind, "created": int(time.time()),
                "model": self.model}

        def chunk(text: str | None, finish: str | None = None) -> str:
            if chat:
                delta = {} if text is None else {"content": text}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text or "", "logprobs": None,
                          "finish_reason": finish, "stop_reason": None}
            return f"data: {json.dumps({**head, 'choices': [choice]})}\n\n"

        if chat:
            first = {"index": 0, "delta": {"role": "assistant", "content": ""},
                     "logprobs": None, "finish_reason": None}
            yield f"data: {json.dumps({**head, 'choices': [first]})}\n\n"
        for delta in b.deltas:
            if b.delta_delay_s:
                await asyncio.sleep(b.delta_delay_s)
            yield chunk(delta)
        if b.mode == "truncated_stream":  # cut off: no finish_reason, no [DONE]
            return
        yield chunk(None, "stop")
        yield "data: [DONE]\n\n"


def _error_new(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "BadRequestError" if code < 500
                      else "InternalServerError", "param": None, "code": code}}


def _serve(conn: Connection, model: str, behaviour: dict[str, Any]) -> None:
    with FakeVLLM(model, **behaviour) as fake:
        conn.send(fake.url)
        while (command := conn.recv()) != "stop":
            if command == "reset":
                fake.reset()
            conn.send({"max_in_flight": fake.max_in_flight, "requests": len(fake.requests)})
    conn.send(None)


class FakeVLLMProcess:
    """A ``FakeVLLM`` in a child process; ``stats()`` and ``reset()`` reach it over a pipe."""

    def __init__(self, model: str = "fake/model", **behaviour: Any) -> None:
        self.model = model
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, model, behaviour),
                                        daemon=True, name="fake-vllm")
        self.url = ""

    def __enter__(self) -> FakeVLLMProcess:
        self._process.start()
        if not self._conn.poll(30):
            self._process.terminate()
            raise RuntimeError("fake vLLM server process did not start")
        self.url = self._conn.recv()
        return self

    def stats(self) -> dict[str, int]:
        self._conn.send("stats")
        result: dict[str, int] = self._conn.recv()
        return result

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._conn.poll(10)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
