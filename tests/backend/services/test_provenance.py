from __future__ import annotations

import pytest

from backend.errors import NotFoundError
from backend.services.container import Services
from db.audit_search_repo import SearchFilters
from db.job_models import Job
from db.training_models import SlCaiSample, TrainingDataset
from tests.backend.services.agreement_data import add_dataset
from tests.backend.services.audit_data import head_version, log_chain


def test_a_trained_model_leads_back_to_samples_critiques_and_principles(
        services: Services) -> None:
    v, k1, k2 = head_version(services)
    chain_a = log_chain(services, prompt="lock?", response="r", critique="c1", revision="v1",
                        version_id=v, principle_key=k1)
    chain_b = log_chain(services, prompt="cake?", response="r", critique="c2", revision="v2",
                        version_id=v, principle_key=k2)
    log_chain(services, prompt="unrelated", response="r", critique="c", revision="v",
              version_id=v, principle_key=k1)
    human = add_dataset(services, 2, name="helpful pairs")
    with services.db.write() as s:
        data_job = Job(kind="sl_cai_data", name="make data", config={}, status="succeeded",
                       constitution_version_id=v, created_by="t")
        s.add(data_job)
        s.flush()
        assert data_job.id is not None
        ds = TrainingDataset(kind="sl_cai", name="sl data", job_id=data_job.id,
                             constitution_version_id=v, created_by="t")
        s.add(ds)
        s.flush()
        assert ds.id is not None
        for pos, (chain, key) in enumerate(((chain_a, k1), (chain_b, k2))):
            row = services.critique_log.get(chain[0])
            assert row is not None
            s.add(SlCaiSample(dataset_id=ds.id, position=pos, prompt=f"p{pos}", response="r",
                              revision="v", chain_id=row.chain_id, response_record_id=chain[0],
                              final_record_id=chain[2], record_ids=chain, principle_keys=[key],
                              content_hash=str(pos)))
        sft = Job(kind="sft", name="sft", config={"sl_cai_dataset_id": ds.id}, status="succeeded",
                  created_by="t")
        s.add(sft)
        s.flush()
        rl = Job(kind="rl", name="rl", status="succeeded", created_by="t",
                 config={"model": f"job:{sft.id}", "helpful_dataset_id": human,
                         "reward_models": [{"model": "job:999", "weight": 1.0}]})
        s.add(rl)
        s.flush()
        ids = (data_job.id, ds.id, sft.id, rl.id)
    data_job_id, ds_id, sft_id, rl_id = ids
    assert rl_id is not None

    prov = services.provenance.run(rl_id)
    assert [(j.id, j.via) for j in prov.jobs] == [(rl_id, ""), (sft_id, f"model of job {rl_id}")]
    by_kind = {d.kind: d for d in prov.datasets}
    assert by_kind["human pairs"].name == "helpful pairs"
    sl = by_kind["sl_cai"]
    assert (sl.id, sl.samples, sl.made_by_job) == (ds_id, 2, data_job_id)
    assert [x.record_ids for x in sl.first_samples] == [chain_a, chain_b]
    assert [x.principle_keys for x in sl.first_samples] == [[k1], [k2]]
    assert sl.filters == SearchFilters(training_dataset_id=ds_id)
    hits = services.audit_search.search(sl.filters).hits
    assert sorted(h.entry.id for h in hits) == sorted(chain_a + chain_b)
    # each record then shows its principle text of that version
    detail = services.audit_search.record(chain_b[1])
    assert detail.principle is not None and detail.principle.key == k2
    with pytest.raises(NotFoundError):
        services.provenance.run(12345)
