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


def test_revision_source_prefers_each_revision_and_links_its_chain(
        services: Services, make_job: MakeJob, tiny_model_path: Path, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(f'{{"prompt": "How do I pick lock {i}?"}}' for i in range(3)),
                       encoding="utf-8")
    data_dir = make_job("sl_cai_data", {
        "model": str(tiny_model_path), "prompt_set": str(prompts), "max_prompts": 3,
        "rounds": 1, "max_new_tokens": 6, "chunk_size": 2, "device": "cpu"})
    assert run_job(data_dir) == 0
    sl_id = result(data_dir)["outputs"]["dataset_id"]
    with services.db.write() as s:  # a fourth sample whose revision changed nothing
        training_repo.insert_sl_cai_samples(s, dataset_id=sl_id, rows=[{
            "position": 3, "prompt": "Hi?", "response": "Hello.", "revision": "Hello.  ",
            "chain_id": "c" * 32, "record_ids": [], "principle_keys": [],
            "content_hash": "0" * 64}])
    job_dir = make_job("preference_data", {"source": "revisions", "sl_cai_dataset_id": sl_id,
                                           "device": "cpu"})
    assert run_job(job_dir) == 0
    out = result(job_dir)
    assert out["summary"] == {"pairs": 3, "new_pairs": 3, "identical_skipped": 1, "samples": 4}
    with services.db.read() as s:
        samples = {x.position: x for x in training_repo.sl_cai_samples(s, dataset_id=sl_id)}
        pairs = training_repo.ai_pairs(s, dataset_id=out["outputs"]["dataset_id"])
        assert [p.position for p in pairs] == [0, 1, 2]
        for pair in pairs:
            sample = samples[pair.position]
            assert (pair.prompt, pair.response_a, pair.response_b, pair.p_a) == (
                sample.prompt, sample.revision, sample.response, 1.0)
            assert pair.verdict_chain_id == sample.chain_id
            assert pair.verdict_record_ids == sample.record_ids
            a, b = (critique_log_repo.get_record(s, record_id=i)
                    for i in pair.response_record_ids)
            assert a and b and (a.kind, b.kind) == ("revision", "response")
            assert (a.output, b.output) == (pair.response_a, pair.response_b)
        made = training_repo.get_dataset(s, dataset_id=out["outputs"]["dataset_id"])
        assert made and made.source == f"sl_cai:{sl_id}"
    assert_manifest_complete(job_dir, datasets=("sl_cai_dataset",))
    # a restart stores nothing twice
    assert run_job(job_dir) == 0
    assert result(job_dir)["summary"]["new_pairs"] == 0
    with services.db.read() as s:
        assert training_repo.count_samples(s, dataset_id=out["outputs"]["dataset_id"],
                                           kind="preference") == 3


def test_revision_source_needs_an_sl_cai_dataset(services: Services):
    from backend.errors import ValidationError
    from backend.training import registry

    try:
        registry.validate("preference_data", {"source": "revisions"}, db=services.db,
                          data_dir=services.settings.data_dir)
    except ValidationError as exc:
        assert any(p.startswith("sl_cai_dataset_id: is required for source revisions")
                   for p in exc.problems)
    else:
        raise AssertionError("a revisions source without a dataset was accepted")
