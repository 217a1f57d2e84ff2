"""Issue 12 point 10: data jobs that call a server send CSTUDIO_ENGINE_API_KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.cai.prompts import RAW_STOPS
from backend.services.container import Services
from bench.fake_vllm import FakeVLLM
from tests.backend.training.conftest import MakeJob, result, run_job


def test_sl_cai_job_sends_the_api_key_to_a_server_that_requires_one(
        services: Services, make_job: MakeJob, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Hi"}\n{"prompt": "Hello"}\n', encoding="utf-8")
    monkeypatch.setenv("CSTUDIO_ENGINE_API_KEY", "s3cret")
    with FakeVLLM(api_key="s3cret") as server:
        job_dir = make_job("sl_cai_data", {
            "model": "fake/model", "engine": "openai_compat", "base_url": server.url,
            "prompt_set": str(prompts), "max_prompts": 2, "rounds": 1, "max_new_tokens": 4,
            "chunk_size": 2, "form": "raw"})
        assert run_job(job_dir) == 0, (job_dir / "error.txt").read_text() \
            if (job_dir / "error.txt").exists() else "failed"
        assert result(job_dir)["outputs"]["samples"] == 2
        v1 = [r for r in server.requests if r.path.startswith("/v1/")]
        assert v1 and all(r.headers.get("authorization") == "Bearer s3cret" for r in v1)
        # the raw layout's stop strings reach the server with every step (issue 12 point 3)
        assert all(set(RAW_STOPS) <= set(r.body.get("stop", [])) for r in v1)
    assert "s3cret" not in (job_dir / "job.json").read_text(encoding="utf-8")
