"""Issue 12 in the data stages: principles per prompt position (not per chunk), stop markers
never in SL-CAI targets, the labelling examples switch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from backend.cai.prompts import RAW_STOPS
from backend.engines.base import Generation, GenerationParams, Prompt
from backend.engines.scripted import ScriptedEngine
from backend.services.container import Services
from backend.training import preference_data, sl_cai_data
from db import critique_log_repo, training_repo
from tests.backend.training.conftest import MakeJob, result, run_job


class Runaway(ScriptedEngine):
    """A base model that runs on into turns it invents and ignores stop strings."""

    seen_stops: list[tuple[str, ...]]

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        self.seen_stops = [*getattr(self, "seen_stops", []), params.stop]
        return [Generation(g.text + "\n\nRevisionRequest: invented\n\nHuman: and more",
                           g.prompt_sent) for g in super().generate(prompts, params)]


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedEngine]:
    made: list[ScriptedEngine] = []

    def build(ctx: Any, ref: str, role: str) -> ScriptedEngine:
        made.append(Runaway())
        return made[-1]

    monkeypatch.setattr(sl_cai_data, "build_engine", build)
    monkeypatch.setattr(preference_data, "build_engine", build)
    return made


def _prompts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(f'{{"prompt": "How do I fix bike number {i}?"}}' for i in range(n)),
                    encoding="utf-8")
    return path


def _sl_cai(services: Services, make_job: MakeJob, prompts: Path, job_id: int,
            **extra: object) -> dict[int, Any]:
    job_dir = make_job("sl_cai_data", {"model": "tiny", "prompt_set": str(prompts),
                                       "max_prompts": 12, "rounds": 3, "max_new_tokens": 6,
                                       "chunk_size": 2, "device": "cpu", **extra},
                       job_id=job_id, seed=4)
    assert run_job(job_dir) == 0
    with services.db.read() as s:
        return {x.position: x for x in training_repo.sl_cai_samples(
            s, dataset_id=result(job_dir)["outputs"]["dataset_id"])}


def test_sl_cai_principles_do_not_depend_on_chunking_or_resume(
        services: Services, make_job: MakeJob, tmp_path: Path,
        fake_engines: list[ScriptedEngine]) -> None:
    prompts = _prompts(tmp_path, 12)
    by_2 = {p: x.principle_keys for p, x in _sl_cai(services, make_job, prompts, 1).items()}
    by_5 = {p: x.principle_keys for p, x in
            _sl_cai(services, make_job, prompts, 2, chunk_size=5).items()}
    assert by_2 == by_5 and len(by_2) == 12
    _sl_cai(services, make_job, prompts, 3, max_prompts=7, chunk_size=5)  # stopped early
    resumed = {p: x.principle_keys for p, x in
               _sl_cai(services, make_job, prompts, 3, chunk_size=5).items()}
    assert resumed == by_2
    assert len({tuple(k) for k in by_2.values()}) > 1


def test_no_sl_cai_target_contains_a_stop_marker(services: Services, make_job: MakeJob,
                                                 tmp_path: Path,
                                                 fake_engines: list[ScriptedEngine]) -> None:
    samples = _sl_cai(services, make_job, _prompts(tmp_path, 4), 1, form="raw",
                      max_prompts=4)
    assert len(samples) == 4
    markers = ("Human:", "RevisionRequest:", "CritiqueRequest:", "Assistant:")
    with services.db.read() as s:
        for sample in samples.values():
            assert not any(m in sample.revision or m in sample.response for m in markers)
            for rid in sample.record_ids:
                record = critique_log_repo.get_record(s, record_id=rid)
                assert record is not None and set(RAW_STOPS) <= set(record.params["stop"])
                assert not any(m in record.output for m in markers)
    engine = fake_engines[0]
    assert isinstance(engine, Runaway)
    assert all(set(RAW_STOPS) <= set(stops) for stops in engine.seen_stops)


def _pref(services: Services, make_job: MakeJob, prompts: Path, job_id: int,
          **extra: object) -> dict[int, list[str]]:
    job_dir = make_job("preference_data", {
        "model": "tiny", "prompt_set": str(prompts), "max_prompts": 12, "max_new_tokens": 4,
        "temperature": 0.8, "chunk_size": 2, "k_principles": 2, "device": "cpu", **extra},
        job_id=job_id, seed=4)
    assert run_job(job_dir) == 0
    with services.db.read() as s:
        return {x.position: sorted(x.principle_keys) for x in training_repo.ai_pairs(
            s, dataset_id=result(job_dir)["outputs"]["dataset_id"])}


def test_preference_principles_do_not_depend_on_chunking(
        services: Services, make_job: MakeJob, tmp_path: Path,
        fake_engines: list[ScriptedEngine]) -> None:
    prompts = _prompts(tmp_path, 12)
    by_2 = _pref(services, make_job, prompts, 1)
    by_5 = _pref(services, make_job, prompts, 2, chunk_size=5)
    assert by_2 == by_5 and len(by_2) == 12
