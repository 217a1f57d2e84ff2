"""OpenAICompatEngine against a scripted fake of ``vllm serve``."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator

import pytest

from backend.engines.base import Engine, GenerationParams, Prompt
from backend.engines.openai_compat import OpenAICompatEngine, server_message
from backend.errors import ChoiceTokenError, EngineError
from bench.fake_vllm import Behaviour, FakeVLLM

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
JUDGE = Prompt.chat(("user", "Which is better, (A) or (B)?"), ("assistant", "The answer is: ("),
                    continue_final=True)
RAW = Prompt.raw("Which is better, (A) or (B)? The answer is: (")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLM]:
    with FakeVLLM() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeVLLM) -> FakeVLLM:
    server.behaviour = Behaviour(models=(server.model,))
    server.reset()
    return server


def make(fake: FakeVLLM, **kwargs: object) -> OpenAICompatEngine:
    options: dict[str, object] = {"backoff_s": 0.01, "timeout_s": 5.0}
    options.update(kwargs)
    return OpenAICompatEngine(fake.url, fake.model, **options)  # type: ignore[arg-type]


@pytest.fixture
def engine(fake: FakeVLLM) -> Iterator[OpenAICompatEngine]:
    eng = make(fake)
    yield eng
    eng.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- generation -----------------------------------------------------------------------------
def test_engine_satisfies_protocol_and_reports_info(engine, fake):
    assert isinstance(engine, Engine)
    assert engine.info.kind == "openai_compat" and not engine.info.is_demo
    assert engine.info.model == fake.model and engine.info.detail == fake.url


def test_completions_generation_sends_params_and_reads_answer(engine, fake):
    params = GenerationParams(max_tokens=12, temperature=0.7, top_p=0.9, stop=("\n",), seed=3)
    [gen] = engine.generate([Prompt.raw("Say hi")], params)
    assert gen.text == "Hello there" and gen.prompt_sent == "Say hi"
    assert gen.finish_reason == "stop" and (gen.prompt_tokens, gen.completion_tokens) == (2, 3)
    assert gen.latency_s > 0
    [req] = fake.requests
    assert req.path == COMPLETIONS
    assert req.body == {"model": fake.model, "prompt": "Say hi", "max_tokens": 12,
                        "temperature": 0.7, "top_p": 0.9, "stop": ["\n"], "seed": 3}


def test_chat_generation_sends_messages_without_continue_flags(engine, fake):
    prompt = Prompt.chat(("system", "Be brief."), ("user", "Hi"))
    [gen] = engine.generate([prompt], GenerationParams())
    assert gen.text == "Hello there"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert json.loads(gen.prompt_sent) == messages
    [req] = fake.requests
    assert req.path == CHAT and req.body["messages"] == messages
    assert "continue_final_message" not in req.body and "add_generation_prompt" not in req.body
    assert "seed" not in req.body and "stop" not in req.body


def test_chat_continue_final_sends_vllm_flags(engine, fake):
    engine.generate([JUDGE], GenerationParams(max_tokens=1))
    [req] = fake.requests
    assert req.body["continue_final_message"] is True
    assert req.body["add_generation_prompt"] is False
    assert req.body["messages"][-1] == {"role": "assistant", "content": "The answer is: ("}


def test_generate_keeps_order_and_empty_batch(engine, fake):
    prompts = [Prompt.raw(f"p{i}") for i in range(10)]
    gens = engine.generate(prompts, GenerationParams())
    assert [g.prompt_sent for g in gens] == [f"p{i}" for i in range(10)]
    assert engine.generate([], GenerationParams()) == []


def test_api_key_and_v1_suffix_in_base_url(fake):
    eng = OpenAICompatEngine(fake.url + "/v1/", fake.model, api_key="sekret", backoff_s=0.01)
    try:
        eng.generate([RAW], GenerationParams())
        assert fake.requests[0].headers["authorization"] == "Bearer sekret"
        assert eng.info.detail == fake.url
    finally:
        eng.close()


# -- soft labels ----------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_score_choices_renormalises_logprobs(engine, fake, prompt):
    [score] = engine.score_choices([prompt], ["A", "B"])
    expected = math.exp(-0.5) / (math.exp(-0.5) + math.exp(-1.5))
    assert score.probs["A"] == pytest.approx(expected)
    assert score.probs["B"] == pytest.approx(1 - expected)
    assert score.logprobs == {"A": pytest.approx(-0.5), "B": pytest.approx(-1.5)}
    [req] = fake.requests
    assert req.body["max_tokens"] == 1 and req.body["temperature"] == 0
    if prompt is RAW:
        assert req.path == COMPLETIONS and req.body["logprobs"] == 20
    else:
        assert req.path == CHAT and req.body["logprobs"] is True
        assert req.body["top_logprobs"] == 20 and req.body["continue_final_message"] is True


@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_score_merges_spaced_and_bare_tokens(engine, fake, prompt):
    fake.set(top_logprobs={"A": -1.0, " A": -1.0, "B": -1.0, "\n": -3.0})
    [score] = engine.score_choices([prompt], ["A", "B"])
    assert score.probs["A"] == pytest.approx(2 / 3)
    assert score.logprobs["A"] == pytest.approx(-1.0 + math.log(2))


@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_choice_missing_from_top_k_is_bounded_not_zero(engine, fake, prompt):
    fake.set(top_logprobs={"A": -0.1, "C": -2.5, "The": -3.0})
    [score] = engine.score_choices([prompt], ["A", "B"])
    assert score.logprobs["B"] is None and score.bounded == ("B",)
    assert score.probs["B"] == pytest.approx(1 / (1 + math.exp(2.9)))  # at most the smallest
    assert score.top_tokens["C"] == -2.5


@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_missing_choice_is_scored_exactly_by_prompt_logprobs(engine, fake, prompt):
    """vLLM: the prompt extended by the choice, its last token's logprob."""
    fake.set(top_logprobs={"A": -0.1, "C": -2.5}, prompt_logprobs={"B": -4.0})
    [score] = engine.score_choices([prompt], ["A", "B"])
    assert score.bounded == () and score.logprobs == {"A": -0.1, "B": -4.0}
    assert score.probs["A"] == pytest.approx(1 / (1 + math.exp(-3.9)))
    extended = fake.requests[-1].body
    assert extended["prompt_logprobs"] == 0
    text = extended.get("prompt") or extended["messages"][-1]["content"]
    assert text.endswith("The answer is: (B")


def test_no_choice_in_top_k_is_unscorable_not_a_verdict(engine, fake):
    fake.set(top_logprobs={"C": -0.1, "D": -2.5})
    [score] = engine.score_choices([RAW], ["A", "B"])
    assert not score.scored and score.probs == {}
    assert "not among the model's top 2" in (score.unscorable or "")
    assert score.top_tokens == {"C": -0.1, "D": -2.5}


def test_a_rejected_prompt_is_unscorable_and_its_batch_goes_on(engine, fake):
    fake.set(reject_containing="too long", error_message="maximum context length is 4096")
    prompts = [RAW, Prompt.raw("too long The answer is: ("), RAW]
    scores = engine.score_choices(prompts, ["A", "B"])
    assert [s.scored for s in scores] == [True, False, True]
    assert "maximum context length" in (scores[1].unscorable or "")
    assert scores[1].prompt_sent == "too long The answer is: ("


def test_unauthorised_still_raises_for_the_batch(engine, fake):
    fake.set(mode="error_new", error_status=401, error_message="bad key")
    with pytest.raises(EngineError, match="CSTUDIO_ENGINE_API_KEY"):
        engine.score_choices([RAW, RAW], ["A", "B"])


@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_no_logprobs_names_server_and_flag(engine, fake, prompt):
    fake.set(mode="no_logprobs")
    with pytest.raises(EngineError, match="--max-logprobs") as info:
        engine.score_choices([prompt], ["A", "B"])
    assert fake.url in str(info.value) and "returned no logprobs" in str(info.value)


def test_bad_choices_rejected(engine):
    with pytest.raises(ChoiceTokenError):
        engine.score_choices([RAW], ["A", " A"])
    with pytest.raises(ChoiceTokenError):
        engine.score_choices([RAW], [])


# -- failures -------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_failures_are_retried(engine, fake, status):
    fake.set(fail_first=2, fail_status=status)
    [gen] = engine.generate([RAW], GenerationParams())
    assert gen.text == "Hello there" and fake.count(COMPLETIONS) == 3


def test_persistent_500_gives_up_after_max_retries(fake):
    fake.set(fail_first=1000, fail_status=500)
    eng = make(fake, max_retries=3)
    try:
        with pytest.raises(EngineError) as info:
            eng.generate([RAW], GenerationParams())
    finally:
        eng.close()
    assert fake.count(COMPLETIONS) == 4
    message = str(info.value)
    assert fake.url in message and "vllm serve" in message and "HTTP 500" in message
    assert "CSTUDIO_ENGINE_BASE_URL" in message


@pytest.mark.parametrize("mode", ["error_old", "error_new"])
@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_client_error_bodies_are_read_and_not_retried(engine, fake, mode, prompt):
    fake.set(mode=mode, error_message="maximum context length is 4096 tokens")
    with pytest.raises(EngineError, match="maximum context length is 4096 tokens") as info:
        engine.generate([prompt], GenerationParams())
    assert len(fake.requests) == 1 and "HTTP 400" in str(info.value)


def test_server_message_reads_both_styles():
    old = {"object": "error", "message": "old style", "type": "BadRequestError", "code": 400}
    new = {"error": {"message": "new style", "type": "BadRequestError", "code": 400}}
    assert server_message(json.dumps(old)) == "old style"
    assert server_message(json.dumps(new).encode()) == "new style"
    assert server_message(b"plain text") == "plain text"


@pytest.mark.parametrize("mode", ["malformed", "no_choices"])
def test_malformed_answers_become_engine_errors(engine, fake, mode):
    fake.set(mode=mode)
    with pytest.raises(EngineError) as info:
        engine.generate([RAW], GenerationParams())
    assert fake.url in str(info.value)
    with pytest.raises(EngineError):
        engine.score_choices([JUDGE], ["A", "B"])


def test_slow_server_times_out(fake):
    fake.set(mode="hang", hang_s=5)
    eng = make(fake, timeout_s=0.3, max_retries=1)
    start = time.perf_counter()
    try:
        with pytest.raises(EngineError, match="timed out") as info:
            eng.generate([RAW], GenerationParams())
    finally:
        eng.close()
    assert time.perf_counter() - start < 2
    assert fake.count(COMPLETIONS) == 2 and "0.3 s" in str(info.value)


def test_unreachable_server(fake):
    url = f"http://127.0.0.1:{free_port()}"
    eng = OpenAICompatEngine(url, "m", max_retries=1, backoff_s=0.01, timeout_s=2)
    try:
        with pytest.raises(EngineError, match="vllm serve") as info:
            eng.generate([RAW], GenerationParams())
        assert url in str(info.value)
        with pytest.raises(EngineError, match="vllm serve"):
            list(eng.stream(RAW, GenerationParams()))
        health = eng.health()
        assert not health.ok and url in health.message
    finally:
        eng.close()


def test_one_failure_in_a_batch_raises(engine, fake):
    fake.set(mode="error_new")
    with pytest.raises(EngineError):
        engine.generate([RAW] * 8, GenerationParams())


def test_closed_engine_refuses_work(fake):
    eng = make(fake)
    eng.close()
    eng.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        eng.generate([RAW], GenerationParams())


# -- health ---------------------------------------------------------------------------------
def test_health_ok_lists_models(engine, fake):
    health = engine.health()
    assert health.ok and health.models == (fake.model,)


def test_health_warns_when_model_not_served(fake):
    fake.set(models=("other/model",))
    eng = make(fake)
    try:
        health = eng.health()
    finally:
        eng.close()
    assert not health.ok and "other/model" in health.message and fake.model in health.message


def test_health_not_ready(engine, fake):
    fake.set(health_status=503)
    health = engine.health()
    assert not health.ok and "503" in health.message


# -- concurrency ----------------------------------------------------------------------------
def test_in_flight_bound_is_respected(fake):
    fake.set(latency_s=0.1)
    eng = make(fake, max_in_flight=4)
    try:
        eng.generate([RAW], GenerationParams())  # warm the connections
        fake.reset()
        assert fake.in_flight == 0
        start = time.perf_counter()
        gens = eng.generate([Prompt.raw(f"p{i}") for i in range(16)], GenerationParams())
        elapsed = time.perf_counter() - start
    finally:
        eng.close()
    assert len(gens) == 16 and fake.max_in_flight == 4
    assert len(eng._clients) == 4  # one single-connection client per in-flight slot
    assert 0.38 < elapsed < 1.2  # four waves of 100 ms


# -- streaming ------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_stream_yields_deltas_in_order(engine, fake, prompt):
    fake.set(deltas=("one", " two", " three"), delta_delay_s=0.01)
    assert list(engine.stream(prompt, GenerationParams())) == ["one", " two", " three"]
    [req] = fake.requests
    assert req.body["stream"] is True


def test_stream_retries_before_first_delta_and_reports_errors(engine, fake):
    fake.set(fail_first=1, fail_status=503)
    assert "".join(engine.stream(RAW, GenerationParams())) == "Hello there"
    assert fake.count(COMPLETIONS) == 2
    fake.set(mode="error_old", error_message="bad stop sequence")
    with pytest.raises(EngineError, match="bad stop sequence"):
        list(engine.stream(RAW, GenerationParams()))


# -- continuation: servers that ignore continue_final_message (llama.cpp) --------------------
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_vllm_is_trusted_to_continue_without_a_probe(engine, fake):
    engine.score_choices([JUDGE], ["A", "B"])
    [req] = fake.requests
    assert req.path == CHAT and req.body["continue_final_message"] is True


def test_a_server_that_honours_continuation_is_detected_by_token_counts(fake):
    fake.set(owned_by="someone")
    eng = make(fake)
    try:
        eng.score_choices([JUDGE], ["A", "B"])
    finally:
        eng.close()
    assert fake.requests[-1].path == CHAT  # 4 probe requests, then the chat request


def test_a_server_that_ignores_continuation_gets_the_template_applied_here(fake):
    fake.set(owned_by="me", ignores_continuation=True)
    eng = make(fake, chat_template=CHATML)
    try:
        [score] = eng.score_choices([JUDGE], ["A", "B"])
        [gen] = eng.generate([JUDGE], GenerationParams(max_tokens=3))
    finally:
        eng.close()
    expected = ("<|im_start|>user\nWhich is better, (A) or (B)?<|im_end|>\n"
                "<|im_start|>assistant\nThe answer is: (")
    scored, generated = fake.requests[-2:]
    assert scored.path == COMPLETIONS and scored.body["prompt"] == expected
    assert scored.body["logprobs"] == 20 and scored.body["max_tokens"] == 1
    assert score.prompt_sent == expected and score.scored
    assert generated.path == COMPLETIONS and gen.prompt_sent == expected


def test_llama_server_props_give_the_template_and_the_slots(fake):
    """llama.cpp's llama-server publishes its chat template and parallelism in /props."""
    fake.set(owned_by="llamacpp", ignores_continuation=True,
             props={"chat_template": CHATML, "total_slots": 2})
    eng = make(fake, max_in_flight=64)
    try:
        eng.score_choices([JUDGE] * 6, ["A", "B"])
    finally:
        eng.close()
    assert eng.in_flight_limit <= 2 and eng._limit.peak <= 2
    assert fake.requests[-1].path == COMPLETIONS
    assert fake.requests[-1].body["prompt"].startswith("<|im_start|>user\n")


def test_ignored_continuation_without_a_template_says_what_to_set(fake):
    fake.set(owned_by="me", ignores_continuation=True)
    eng = make(fake)
    try:
        with pytest.raises(EngineError, match=r"CSTUDIO_ENGINE_CHAT_TEMPLATE.*--form raw"):
            eng.score_choices([JUDGE], ["A", "B"])
    finally:
        eng.close()


def test_continuation_can_be_forced_client_side(fake):
    eng = make(fake, chat_template=CHATML, continuation="client")
    try:
        eng.score_choices([JUDGE], ["A", "B"])
    finally:
        eng.close()
    assert [r.path for r in fake.requests] == [COMPLETIONS]


# -- streams that end without [DONE] --------------------------------------------------------
@pytest.mark.parametrize("prompt", [RAW, JUDGE], ids=["completions", "chat"])
def test_empty_stream_without_done_is_an_error_with_the_servers_reason(engine, fake, prompt):
    """llama.cpp's server answers an over-long streamed prompt with HTTP 200 and nothing."""
    fake.set(mode="empty_stream", error_message="Requested tokens (6031) exceed context window")
    with pytest.raises(EngineError, match=r"without any text or \[DONE\].*exceed context"):
        list(engine.stream(prompt, GenerationParams()))


def test_a_stream_cut_off_after_some_text_is_an_error_not_a_short_answer(engine, fake):
    fake.set(mode="truncated_stream", deltas=("Half", " an"))
    stream = engine.stream(RAW, GenerationParams())
    assert next(stream) == "Half" and next(stream) == " an"
    with pytest.raises(EngineError, match="before finishing"):
        next(stream)


# -- adaptive in-flight limit ---------------------------------------------------------------
def test_a_timeout_halves_the_number_in_flight(fake):
    fake.set(mode="hang", hang_s=5.0)
    eng = make(fake, max_in_flight=8, timeout_s=0.3, max_retries=0)
    try:
        with pytest.raises(EngineError, match="timed out"):
            eng.generate([Prompt.raw(f"p{i}") for i in range(4)], GenerationParams())
    finally:
        eng.close()
    assert eng.in_flight_limit == 2  # started at 4, halved once (not once per timeout)


def test_a_timed_out_request_is_cancelled_not_left_running(fake):
    """The client closes the connection of a request it gives up on (the server can stop)."""
    fake.set(mode="hang", hang_s=10.0)
    eng = make(fake, timeout_s=0.3, max_retries=1, backoff_s=0.01)
    mine = Prompt.raw("abandon me")
    try:
        with pytest.raises(EngineError, match="timed out"):
            eng.generate([mine], GenerationParams())
    finally:
        eng.close()

    def abandoned() -> int:
        return sum(1 for body in fake.disconnected if body.get("prompt") == "abandon me")

    deadline = time.monotonic() + 5
    while abandoned() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert abandoned() == 2  # both attempts were abandoned and their connections closed
    assert sum(1 for r in fake.requests if r.body.get("prompt") == "abandon me") == 2
