"""Comparison responses and verdicts are append-only, unique per step, counted as progress and
sealed with the other evidence tables."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from backend.services.container import Services
from db import comparison_repo as repo
from db.record_seal import SEALED_TABLES, seal_new_rows, verify_seals


def _version_id(services: Services) -> int:
    from backend.access import local_admin

    services.constitution_io.seed_default(actor=local_admin("t"))
    return services.constitutions.list_all()[0].head.id


def test_steps_are_append_only_unique_and_counted(services: Services) -> None:
    version_id = _version_id(services)
    with services.db.write() as s:
        row = repo.create_comparison(
            s, name="c", constitution_version_id=version_id,
            policies=[{"ref": "base"}, {"ref": "job:1"}], prompts=[{"text": "q", "tags": []}],
            config={}, total_count=3, created_by="t")
        assert row.id is not None
        cid = row.id
        assert repo.insert_responses(s, comparison_id=cid, rows=[
            {"policy_index": 0, "prompt_index": 0, "response": "r0"},
            {"policy_index": 1, "prompt_index": 0, "response": "r1"}]) == 2
        assert repo.insert_verdicts(s, comparison_id=cid, rows=[
            {"prompt_index": 0, "policy_a": 0, "policy_b": 1, "p_a": 0.3, "chain_id": "x",
             "per_principle": {"k": 0.3}, "variants": [], "record_ids": []}]) == 3
    with services.db.read() as s:
        assert repo.responded(s, comparison_id=cid, policy_index=1) == {0}
        assert repo.judged(s, comparison_id=cid) == {(0, 0, 1)}
        got = repo.get_comparison(s, comparison_id=cid)
        assert got is not None and got.done_count == 3
    for statement in ("UPDATE comparison_response SET response = 'x'",
                      "DELETE FROM comparison_response",
                      "UPDATE comparison_verdict SET p_a = 0.9", "DELETE FROM comparison_verdict"):
        with pytest.raises(DatabaseError, match="append-only"), services.db.write() as s:
            s.connection().execute(text(statement))
    with pytest.raises(DatabaseError), services.db.write() as s:
        repo.insert_responses(s, comparison_id=cid, rows=[
            {"policy_index": 0, "prompt_index": 0, "response": "again"}])
    assert {"comparison_response", "comparison_verdict"} <= set(SEALED_TABLES)
    with services.db.write() as s:
        counts = seal_new_rows(s)
    # rows are sealed in the transaction that writes them: nothing is left to seal later
    assert counts["comparison_response"] == 0 and counts["comparison_verdict"] == 0
    with services.db.read() as s:
        assert verify_seals(s).problems == []
