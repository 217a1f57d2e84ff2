from __future__ import annotations

from pathlib import Path

from backend.services.container import Services
from db import critique_log_repo, training_repo
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    metrics_lines,
    result,
    run_job,
)


def _prompts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(f'{{"prompt": "How do I fix bike number {i}?"}}' for i in range(n)),
                    encoding="utf-8")
    return path


def _config(tiny_model_path: Path, prompts: Path, **extra: object) -> dict[str, object]:
    return {"model": str(tiny_model_path), "prompt_set": str(prompts), "max_prompts": 5,
            "rounds": 2, "max_new_tokens": 6, "chunk_size": 2, "device": "cpu", **extra}


def test_samples_link_to_critique_log_and_principles(services: Services, make_job: MakeJob,
                                                     tiny_model_path: Path, tmp_path: Path):
    job_dir = make_job("sl_cai_data", _config(tiny_model_path, _prompts(tmp_path, 5)))
    assert run_job(job_dir) == 0
    out = result(job_dir)["outputs"]
    assert out["samples"] == 5
    with services.db.read() as s:
        samples = training_repo.sl_cai_samples(s, dataset_id=out["dataset_id"])
        assert [x.position for x in samples] == [0, 1, 2, 3, 4]
        for sample in samples:
            assert len(sample.record_ids) == 1 + 2 * 2  # response + 2 rounds x (crit, rev)
            records = [critique_log_repo.get_record(s, record_id=i) for i in sample.record_ids]
            assert [r.kind for r in records if r] == ["response", "critique", "revision",
                                                      "critique", "revision"]
            assert all(r and r.chain_id == sample.chain_id for r in records)
            assert [r.principle_key for r in records[1::2] if r] == sample.principle_keys
            final = critique_log_repo.get_record(s, record_id=sample.final_record_id or 0)
            assert final is not None and final.output == sample.revision
    lines = metrics_lines(job_dir)
    assert lines[-1]["progress"] == 1.0 and lines[-1]["step"] == 5
    m = assert_manifest_complete(job_dir, datasets=("prompt_set",))
    assert m["constitution"]["content_hash"]


def test_resume_skips_prompts_already_done(services: Services, make_job: MakeJob,
                                           tiny_model_path: Path, tmp_path: Path):
    prompts = _prompts(tmp_path, 5)
    job_dir = make_job("sl_cai_data", _config(tiny_model_path, prompts, max_prompts=3))
    assert run_job(job_dir) == 0  # a first run that stopped after 3 prompts (2 chunks)
    first = result(job_dir)["outputs"]["dataset_id"]
    with services.db.read() as s:
        before = {x.position: x.chain_id for x in training_repo.sl_cai_samples(
            s, dataset_id=first)}
    job_dir = make_job("sl_cai_data", _config(tiny_model_path, prompts), job_id=1)
    assert run_job(job_dir) == 0
    out = result(job_dir)
    assert out["outputs"]["dataset_id"] == first
    assert out["summary"]["resumed_samples"] == 3
    with services.db.read() as s:
        after = {x.position: x.chain_id for x in training_repo.sl_cai_samples(s, dataset_id=first)}
    assert sorted(after) == [0, 1, 2, 3, 4]
    assert all(after[p] == before[p] for p in before)  # nothing redone
