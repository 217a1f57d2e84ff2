from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from backend.services.container import Services
from db import training_repo


def _sample(i: int) -> dict[str, object]:
    return {"position": i, "prompt": "p", "response": "r", "revision": "v", "chain_id": "c",
            "record_ids": [], "principle_keys": [], "content_hash": f"{i:064d}"}


def test_samples_are_append_only_and_positions_unique(services: Services):
    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="sl_cai", name="d", job_id=None, constitution_version_id=None, model="m",
            config={}, source="s", source_sha256="", created_by="t")
        assert row.id is not None
        dataset_id = row.id
        training_repo.insert_sl_cai_samples(s, dataset_id=dataset_id,
                                            rows=[_sample(0), _sample(2)])
        training_repo.insert_ai_pairs(s, dataset_id=dataset_id, rows=[{
            "position": 0, "prompt": "p", "response_a": "a", "response_b": "b", "p_a": 0.7,
            "verdict_chain_id": "v", "response_record_ids": [], "verdict_record_ids": [],
            "principle_keys": [], "variants": [], "content_hash": "0" * 64}])
    with services.db.read() as s:
        assert training_repo.done_positions(s, dataset_id=dataset_id, kind="sl_cai") == {0, 2}
        assert training_repo.count_samples(s, dataset_id=dataset_id, kind="sl_cai") == 2
        assert training_repo.count_samples(s, dataset_id=dataset_id, kind="preference") == 1
    for statement in ("UPDATE sl_cai_sample SET revision = 'x'", "DELETE FROM sl_cai_sample",
                      "UPDATE ai_pair_sample SET p_a = 0.1", "DELETE FROM ai_pair_sample"):
        with pytest.raises(DatabaseError, match="append-only"), services.db.write() as s:
            s.connection().execute(text(statement))
    with pytest.raises(DatabaseError), services.db.write() as s:
        training_repo.insert_sl_cai_samples(s, dataset_id=dataset_id, rows=[_sample(0)])
