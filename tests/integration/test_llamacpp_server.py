"""The openai_compat engine against a real OpenAI-compatible server nobody on this project
wrote: llama-cpp-python's, serving SmolLM2-135M-Instruct (one request at a time).

Outputs are kept short (the server is slow on a shared CPU); what is checked is behaviour:
the server is reached, text streams, verdicts are exact continuations of the answer prefix
(not a free answer's top-k), an agreement run's probabilities are not degenerate, and a run
survives cancellation and a server crash.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.access import local_admin
from backend.cai.constitution import ConstitutionContent
from backend.cai.critique_loop import LoopConfig, LoopContext, stream_critique_loop
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.steplog import MemoryLogger
from backend.engines.base import GenerationParams
from backend.engines.openai_compat import OpenAICompatEngine
from backend.errors import EngineError
from backend.services.container import Services
from backend.services.evaluations import EvaluationConfig
from bench.llamacpp_server import LlamaServer
from db import evaluation_repo
from studio.cli import app
from tests.backend.services.agreement_data import add_dataset
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow
AS_ANN = local_admin("ann")
HH = SHARED_DATA / "hh-rlhf" / "harmless-base-test.first2000.jsonl.gz"
SHORT = GenerationParams(max_tokens=24)


@pytest.fixture
def engine(llama_server: LlamaServer) -> Iterator[OpenAICompatEngine]:
    eng = OpenAICompatEngine(llama_server.url, llama_server.model_id, timeout_s=120,
                             backoff_s=0.2, max_retries=2)
    yield eng
    eng.close()


def default_content(services: Services) -> ConstitutionContent:
    head = services.constitutions.list_all()[0].head
    return services.constitutions.version(head.id).content


def test_health_and_model_list(engine: OpenAICompatEngine, llama_server: LlamaServer) -> None:
    health = engine.health()
    assert health.ok, health.message
    assert health.models == (llama_server.model_id,)


def test_server_ignores_continuation_so_the_template_is_applied_here(
        engine: OpenAICompatEngine) -> None:
    """llama.cpp accepts continue_final_message and ignores it; the probe notices, and the
    verdict prompt goes to /v1/completions ending in the answer prefix."""
    from backend.cai.default_constitution import default_constitution
    from backend.cai.prompts import choice_prompt

    principle = default_constitution().principles[0]
    prompt = choice_prompt("Is the sky blue?", "Yes, on a clear day.", "No idea.", principle,
                           "chat")
    [score] = engine.score_choices([prompt], ["A", "B"])
    assert engine._continues is False
    assert score.prompt_sent.endswith("<|im_start|>assistant\nThe answer is: (")
    assert score.scored and score.bounded == ()  # both choices lead the next-token list
    assert 0.0 < score.probs["A"] < 1.0 and score.probs["A"] != 0.5


def test_streamed_critique_revision_preview_of_two_rounds(
        engine: OpenAICompatEngine, services: Services) -> None:
    ctx = LoopContext(engine, default_content(services), None, MemoryLogger())
    config = LoopConfig(rounds=2, use_few_shots=False, response_params=SHORT,
                        critique_params=SHORT, revision_params=SHORT)
    events = list(stream_critique_loop(ctx, "How do I pick a lock?", config))
    done = [e for e in events if e.done]
    assert [(e.kind, e.round) for e in done] == [
        ("response", None), ("critique", 1), ("revision", 1), ("critique", 2), ("revision", 2)]
    assert all(e.text.strip() for e in done)  # real text, streamed
    assert len(events) > 2 * len(done)  # partial updates arrived before each step finished


@pytest.mark.parametrize("cot", [False, True], ids=["no-cot", "cot"])
def test_verdicts_in_both_orders(engine: OpenAICompatEngine, services: Services,
                                 cot: bool) -> None:
    items = [PairItem("What is the capital of France?", "The capital of France is Paris.",
                      "I refuse to tell you, figure it out yourself."),
             PairItem("How can I hurt my neighbour?", "I can't help with hurting anyone.",
                      "Poison their dog.")]
    logger = MemoryLogger()
    config = LabelConfig(cot=cot, both_orders=True, cot_clamp=None,
                         cot_params=GenerationParams(max_tokens=32, stop=("The answer is",)))
    verdicts = label_pairs(engine, default_content(services), None, items, config, logger)
    assert len(verdicts) == 2
    for v in verdicts:
        assert sorted(x.order for x in v.variants) == ["AB", "BA"]
        for x in v.variants:
            assert 0.0 < x.p_first < 1.0 and x.p_first != 0.5  # a real, non-degenerate score
            assert (x.cot is not None and x.cot.strip()) if cot else x.cot is None
    texts = [r.prompt_sent for r in logger.records if r.kind == "verdict"]
    assert texts and all(t.endswith("answer is: (") for t in texts)


def _cli(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch, llama_server: LlamaServer) -> None:
    monkeypatch.setenv("CSTUDIO_ENGINE", "openai_compat")
    monkeypatch.setenv("CSTUDIO_ENGINE_BASE_URL", llama_server.url)
    monkeypatch.setenv("CSTUDIO_ENGINE_MODEL", llama_server.model_id)
    monkeypatch.setenv("CSTUDIO_ENGINE_TIMEOUT_S", "120")


@pytest.mark.usefixtures("server_env")
def test_a_100_pair_agreement_run_through_the_cli_is_not_degenerate(tmp_path: Path) -> None:
    if not HH.is_file():
        pytest.skip(f"HH-RLHF sample not found at {HH}")
    # The 120 shortest dialogues of the shared HH-RLHF sample (the server reads every prompt
    # token on one shared CPU; long dialogues would make this tier slow, not more telling).
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        lines = sorted(f.readlines(), key=len)[:120]
    pairs = tmp_path / "hh-rlhf-short.jsonl"
    pairs.write_text("".join(lines), encoding="utf-8")
    data = tmp_path / "data"
    _cli(data, "db", "upgrade")
    _cli(data, "dataset", "import", str(pairs), "--format", "hh_rlhf", "--name", "hh")
    out = _cli(data, "eval", "create", "1", "Studio default", "--sample", "100", "--one-order",
               "--form", "chat", "--batch-size", "50")
    assert "100 pairs" in out
    out = _cli(data, "eval", "run", "1")
    assert "done" in out
    from db.engine import Database

    db = Database(f"sqlite:///{data / 'studio.db'}")
    with db.read() as s:
        p_a = [v.p_a for v in evaluation_repo.evaluation_verdicts(s, evaluation_id=1)]
    assert len(p_a) >= 95  # an unscorable item is recorded apart, not as a verdict
    degenerate = sum(1 for p in p_a if p in (0.0, 0.5, 1.0))
    assert degenerate <= 0.1 * len(p_a), f"{degenerate} of {len(p_a)} verdicts are 0, ½ or 1"
    assert len({round(p, 6) for p in p_a}) > 50  # the scores vary from pair to pair
    print(f"stored p(A): {len(p_a)} verdicts, {degenerate} exactly 0/0.5/1, "
          f"min {min(p_a):.3f} max {max(p_a):.3f}, distinct {len(set(p_a))}")


def _server_services(services: Services, url: str, model: str) -> OpenAICompatEngine:
    engine = OpenAICompatEngine(url, model, timeout_s=60, backoff_s=0.2, max_retries=2)
    services.engines.use(engine)  # type: ignore[arg-type]
    return engine


def test_cancelling_a_run(services: Services, llama_server: LlamaServer) -> None:
    engine = _server_services(services, llama_server.url, llama_server.model_id)
    ds = add_dataset(services, 12)
    head = services.constitutions.list_all()[0].head.id
    info = services.evaluations.create(
        dataset_id=ds, version_id=head, actor=AS_ANN,
        config=EvaluationConfig(batch_size=3, both_orders=False))
    cancel = threading.Event()
    services.evaluations.commit_group = 1  # one chunk per commit: the cancel stops it at 3
    stopped = services.evaluations.run(info.id, actor=AS_ANN, cancel=cancel,
                                       on_chunk=lambda done, total: cancel.set())
    assert stopped.status == "cancelled" and stopped.done_count == 3
    finished = services.evaluations.run(info.id, actor=AS_ANN)
    assert finished.status == "done" and finished.done_count == 12
    engine.close()


def test_server_killed_mid_run_gives_a_clear_error_and_the_run_resumes(
        services: Services, llama_server: LlamaServer, tmp_path: Path) -> None:
    """A second server (own port) is killed after the first chunk is stored."""
    from bench.llamacpp_server import LlamaServer as Server

    victim = Server(llama_server.model, log=tmp_path / "victim.log").start()
    try:
        engine = _server_services(services, victim.url, victim.model_id)
        ds = add_dataset(services, 8)
        head = services.constitutions.list_all()[0].head.id
        info = services.evaluations.create(
            dataset_id=ds, version_id=head, actor=AS_ANN,
            config=EvaluationConfig(batch_size=4, both_orders=False))
        try:
            stopped = services.evaluations.run(info.id, actor=AS_ANN,
                                               on_chunk=lambda done, total: victim.kill())
            assert stopped.status == "failed"  # a run loop that records the failure
            message = str(getattr(stopped, "error", ""))
        except EngineError as failure:  # or one that raises it to the caller
            message = str(failure)
        assert victim.url in message and "failed on all 3 attempts" in message
        assert "ConnectError" in message or "refused" in message.lower()
        assert services.evaluations.get(info.id).done_count == 4  # the first chunk is kept
        victim.start()  # the server is back, on the same port
        finished = services.evaluations.run(info.id, actor=AS_ANN)
        assert finished.status == "done" and finished.done_count == 8
        engine.close()
    finally:
        victim.stop()
