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


def test_pairs_with_soft_labels_link_to_verdicts(services: Services, make_job: MakeJob,
                                                 tiny_model_path: Path, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(f'{{"prompt": "Where can I buy paint {i}?"}}'
                                 for i in range(4)), encoding="utf-8")
    job_dir = make_job("preference_data", {
        "model": str(tiny_model_path), "prompt_set": str(prompts), "max_prompts": 4,
        "max_new_tokens": 8, "temperature": 0.8, "chunk_size": 2, "both_orders": True,
        "k_principles": 2, "device": "cpu"})
    assert run_job(job_dir) == 0
    out = result(job_dir)
    skipped = out["summary"]["identical_skipped"] + out["summary"]["unusable_skipped"]
    assert out["outputs"]["pairs"] + skipped == 4
    assert out["outputs"]["pairs"] >= 1
    with services.db.read() as s:
        pairs = training_repo.ai_pairs(s, dataset_id=out["outputs"]["dataset_id"])
        for pair in pairs:
            assert pair.response_a != pair.response_b
            assert 0.0 <= pair.p_a <= 1.0
            assert len(pair.verdict_record_ids) == 2 * 2  # 2 principles x both orders
            verdicts = [critique_log_repo.get_record(s, record_id=i)
                        for i in pair.verdict_record_ids]
            assert all(v and v.kind == "verdict" and v.chain_id == pair.verdict_chain_id
                       for v in verdicts)
            p_as = [float(v.probabilities["p_a"]) for v in verdicts if v and v.probabilities]
            assert abs(sum(p_as) / len(p_as) - pair.p_a) < 1e-9
            a, b = (critique_log_repo.get_record(s, record_id=i)
                    for i in pair.response_record_ids)
            assert a and b and (a.output, b.output) == (pair.response_a, pair.response_b)
            assert sorted(pair.principle_keys) == sorted({v.principle_key for v in verdicts
                                                          if v})
    assert metrics_lines(job_dir)[-1]["progress"] == 1.0
    assert_manifest_complete(job_dir, datasets=("prompt_set",))
