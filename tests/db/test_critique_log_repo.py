"""Prompt prefixes stored once: a batch of records that begin with the same long text (the
few-shot examples of a run) stores it in ``prompt_prefix``; every reader, the record hashes, the
seals, search and evidence exports see the whole prompt as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.access import local_admin
from backend.services.container import Services
from db import critique_log_repo as repo
from db.audit_chain import canonical_json
from db.audit_search_repo import SearchFilters
from db.critique_log_repo import NewCritiqueRecord, shared_prefix
from db.record_seal import stored_form, verify_seals
from tests.databases import drop_append_only_guard

SHOTS = "".join(f"\n\nHuman: example question {i} ünï\n\nAssistant: The answer is: (A)"
                for i in range(20))  # ~1 KB, ends before a line break


def _record(i: int, prompt: str) -> NewCritiqueRecord:
    return NewCritiqueRecord(
        kind="verdict", chain_id=f"chain{i}", parent_id=None, round=None,
        constitution_version_id=None, principle_key="p", engine_kind="tiny", model="m",
        params={"cot": False}, seed=i, prompt_sent=prompt, output="A",
        probabilities={"A": 0.7, "B": 0.3}, latency_s=0.5, actor="t")


def _prompt(i: int) -> str:
    return SHOTS + f"\n\nHuman: Question{i} about tyres {i}\n\nAssistant: The answer is: ("


def _stored(services: Services) -> list[tuple[str, int | None]]:
    with services.db.read() as s:
        return [(str(p), None if i is None else int(i)) for p, i in s.execute(text(
            "SELECT prompt_sent, prompt_prefix_id FROM critique_log ORDER BY id")).all()]


def test_shared_prefix_ends_at_a_line_break_and_needs_length_and_chains() -> None:
    prompts = [_prompt(i) for i in range(10, 16)]  # "Question1x" share "Question1"
    prefix = shared_prefix(prompts, {f"c{i}" for i in range(6)})
    assert prefix == SHOTS + "\n\n"  # not into the items' own line
    assert all(p.startswith(prefix) for p in prompts)
    assert shared_prefix(prompts, {"c0", "c1", "c2"}) == ""  # too few chains
    short = [f"\n\nHuman: shared\n\nx {i}" for i in range(6)]
    assert shared_prefix(short, {f"c{i}" for i in range(6)}) == ""  # too short
    assert shared_prefix([_prompt(1), "other"], {f"c{i}" for i in range(6)}) == ""


def test_a_batch_stores_its_prefix_once_and_reads_back_whole(services: Services) -> None:
    prompts = [_prompt(i) for i in range(8)]
    with services.db.write() as s:
        ids = repo.insert_records(s, [_record(i, p) for i, p in enumerate(prompts)])
    with services.db.write() as s:  # a later batch with the same examples reuses the row
        ids += repo.insert_records(s, [_record(i, _prompt(i)) for i in range(8, 14)])
    stored = _stored(services)
    assert {pid for _, pid in stored} == {1} and all(len(p) < 80 for p, _ in stored)
    with services.db.read() as s:
        assert s.execute(text("SELECT count(*) FROM prompt_prefix")).scalar_one() == 1
        whole = [repo.get_record(s, record_id=i) for i in ids]
        assert [r.prompt_sent for r in whole if r] == [_prompt(i) for i in range(14)]
        assert all(r is not None and repo.record_hash(r) == r.record_hash for r in whole)
        assert [r.prompt_sent for r in repo.iter_records(s, batch=5)] == \
            [_prompt(i) for i in range(14)]
        assert repo.chain_records(s, chain_id="chain3")[0].prompt_sent == _prompt(3)
        assert repo.recent_records(s, limit=1)[0].prompt_sent == _prompt(13)
        assert verify_seals(s).problems == []
    entry = services.critique_log.get(ids[2])
    assert entry is not None and entry.prompt_sent == _prompt(2)
    assert services.critique_log.verify() == []
    assert services.audit.verify().ok


def test_one_conversation_never_becomes_a_prefix(services: Services) -> None:
    # both orders of one verdict: one chain, the same long conversation
    with services.db.write() as s:
        repo.insert_records(s, [_record(0, SHOTS + "\n\nHuman: same (A)"),
                                _record(0, SHOTS + "\n\nHuman: same (B)")])
    assert [pid for _, pid in _stored(services)] == [None, None]


def test_search_and_evidence_export_see_whole_prompts(services: Services,
                                                      tmp_path: Path) -> None:
    with services.db.write() as s:
        repo.insert_records(s, [_record(i, _prompt(i)) for i in range(6)])
    page = services.audit_search.search(SearchFilters(query="Question4"))
    assert [h.entry.prompt_sent for h in page.hits] == [_prompt(4)]
    result = services.evidence.export(SearchFilters(query="tyres"), actor=local_admin("t"),
                                      directory=tmp_path / "ev")
    check = services.evidence.verify(result.directory)
    assert check.ok and check.records_checked == 6, check.problems


def test_an_edited_prefix_is_caught_by_the_record_hashes(services: Services) -> None:
    with services.db.write() as s:
        repo.insert_records(s, [_record(i, _prompt(i)) for i in range(6)])
    with services.db.write() as s:
        conn = s.connection()
        drop_append_only_guard(conn, "prompt_prefix")
        conn.execute(text("UPDATE prompt_prefix SET text = replace(text, 'question 3', "
                          "'question 9')"))
    assert services.critique_log.verify() == [1, 2, 3, 4, 5, 6]
    report = services.audit.verify()
    assert not report.ok
    assert any("critique_log id 1" in p or "prompt_prefix id 1" in p for p in report.problems)


def test_downgrade_gives_records_their_whole_prompt_back(services: Services) -> None:
    from db import migrate

    if services.db.dialect != "sqlite":
        pytest.skip("the downgrade's data step is checked on SQLite here")
    with services.db.write() as s:
        repo.insert_records(s, [_record(i, _prompt(i)) for i in range(6)])
    services.close()
    migrate.downgrade(services.db, "0017")
    with services.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT prompt_sent FROM critique_log ORDER BY id")).all()
    assert [r[0] for r in rows] == [_prompt(i) for i in range(6)]
    migrate.upgrade(services.db)


# text with what JSON escapes (quotes, backslashes, control characters) and keys of the row's
# own JSON ("kind", "prompt_sent", "round") inside values; no lone surrogates (not UTF-8)
ODD = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.sampled_from(
    ['","kind":"x', ',"prompt_sent":"', '\\",\\"round\\":1', '"\n\t\\\x00\x1f\u2028é😀'])


@settings(max_examples=150, deadline=None)
@given(shots=ODD, rest=ODD, output=ODD, params=st.dictionaries(ODD, ODD | st.integers(),
                                                                max_size=3),
       probabilities=st.none() | st.dictionaries(ODD, st.floats(allow_nan=False), max_size=3),
       number=st.none() | st.integers(-2**40, 2**40), latency=st.floats(0, 1e6) | st.integers(0, 9),
       prefix_id=st.none() | st.integers(1, 10**6))
def test_record_and_seal_json_composed_in_pieces_is_the_canonical_json(
        shots: str, rest: str, output: str, params: dict[str, object],
        probabilities: dict[str, object] | None, number: int | None, latency: float,
        prefix_id: int | None) -> None:
    prefix = "\n".join([shots] * 30) + "\n" if prefix_id is not None else ""
    new = NewCritiqueRecord(
        kind=output, chain_id=rest, parent_id=number, round=number,
        constitution_version_id=number, principle_key=shots, engine_kind=rest, model=output,
        params={**params, "kind": rest, "round": output}, seed=number,
        prompt_sent=prefix + rest, output=output, probabilities=probabilities,
        latency_s=latency, actor=shots)
    row = stored_form(repo.LOG, {name: getattr(new, name) for name in repo.HASHED_FIELDS})
    stamp = datetime.now(UTC)
    hashed = canonical_json({**row, "created_at": stamp.isoformat(timespec="microseconds")})
    shared: dict[int, str] = {}
    for _ in range(2):  # the params encoded once, then reused
        assert repo._hash_json(row, stamp.isoformat(timespec="microseconds"), shared) == hashed
    stored = {**row, "id": 7, "created_at": stamp, "record_hash": "h" * 64,
              "prompt_prefix_id": prefix_id, "prompt_sent": rest}
    skip = len(canonical_json(prefix)) - 2
    assert repo._row_json(hashed, stored, skip) == canonical_json(
        {k: v.isoformat(timespec="microseconds") if isinstance(v, datetime) else v
         for k, v in stored.items()})
