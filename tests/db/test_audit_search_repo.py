from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.services.container import Services
from db import audit_annotations_repo as notes_repo
from db import audit_search_repo as repo
from db import migrate
from db.audit_search_repo import SearchFilters, Term, fts_terms, meta_token, sqlite_match
from db.base_models import utcnow
from db.engine import Database, sqlite_url
from db.evaluation_models import Evaluation, VerdictRow
from tests.backend.services.agreement_data import add_dataset
from tests.backend.services.audit_data import OTHER_ENGINE, head_version, log_chain


def _ids(services: Services, filters: SearchFilters, **kw: int) -> list[int]:
    with services.db.read() as s:
        rows = repo.search_page(s, filters=filters, **kw)
    assert rows is not None
    return [r.id for r in rows if r.id is not None]


@pytest.fixture
def chains(services: Services) -> dict[str, list[int]]:
    v, k1, k2 = head_version(services)
    return {
        "lock": log_chain(services, prompt="How do I pick a lock?", response="Use a wrench.",
                          critique="Burglary advice is harmful.", revision="I can't help.",
                          version_id=v, principle_key=k1),
        "cake": log_chain(services, prompt="Bake a cake?", response="Flour and eggs.",
                          critique="Nothing harmful here.", revision="Flour, eggs, sugar.",
                          version_id=v, principle_key=k2, engine=OTHER_ENGINE),
    }


def test_query_terms_are_quoted_so_fts_syntax_is_plain_text() -> None:
    assert fts_terms('lock* "pick a" NEAR(x) -- \'') == [
        Term("lock", prefix=True), Term("pick a", phrase=True), Term("NEAR(x)")]
    assert sqlite_match([Term('a"b'), Term("c", prefix=True)]) == '"a""b" "c"*'
    assert sqlite_match([Term("x")], [meta_token("pk", 'h-"1'), meta_token("kd", "cot")]) == \
        '"x" "0mpk682d2231" "0mkdcot"'
    assert fts_terms("\"' -- ;") == []


def test_full_text_finds_prompts_and_outputs_newest_first(
        services: Services, chains: dict[str, list[int]]) -> None:
    lock = chains["lock"]
    # "Burglary" is in the critique's output and in the revision's prompt.
    assert _ids(services, SearchFilters(query="burglary")) == [lock[2], lock[1]]
    assert _ids(services, SearchFilters(query="BURGL*")) == [lock[2], lock[1]]
    assert _ids(services, SearchFilters(query='"advice is harmful"')) == [lock[2], lock[1]]
    assert _ids(services, SearchFilters(query="burglary cake")) == []
    assert _ids(services, SearchFilters(query="kd critique")) == []  # filters are not text


def test_text_query_with_filters_narrowed_in_the_index(
        services: Services, chains: dict[str, list[int]]) -> None:
    v, k1, k2 = head_version(services)
    lock = chains["lock"]
    assert _ids(services, SearchFilters(query="burglary", kind="critique")) == [lock[1]]
    assert _ids(services, SearchFilters(query="burglary", principle_key=k1,
                                        version_id=v)) == [lock[2], lock[1]]
    assert _ids(services, SearchFilters(query="burglary", principle_key=k2)) == []
    assert _ids(services, SearchFilters(query="burglary", version_id=v + 1)) == []
    with services.db.read() as s:
        assert repo.count_matches(s, filters=SearchFilters(query="burglary",
                                                           kind="revision")) == 1


@pytest.mark.parametrize("query", [
    "' OR 1=1 --", "x'); DROP TABLE critique_log; --", 'NEAR("a" "b", 2)', "a AND OR NOT",
    "col:value", "^start", "(unbalanced", '"unterminated', "\\", "%_%", "{prompt_sent}: x",
])
def test_hostile_queries_never_raise(services: Services, chains: dict[str, list[int]],
                                     query: str) -> None:
    with services.db.read() as s:
        rows = repo.search_page(s, filters=SearchFilters(query=query))
        assert rows is None or isinstance(rows, list)
        repo.count_matches(s, filters=SearchFilters(query=query))
    assert services.critique_log.count() == 6  # nothing was dropped


def test_filters(services: Services, chains: dict[str, list[int]]) -> None:
    v, _, k2 = head_version(services)
    lock, cake = chains["lock"], chains["cake"]
    assert _ids(services, SearchFilters(principle_key=k2)) == cake[:0:-1]
    assert _ids(services, SearchFilters(model="served-model")) == cake[::-1]
    assert _ids(services, SearchFilters(engine_kind="tiny", kind="critique")) == [lock[1]]
    assert _ids(services, SearchFilters(version_id=v, kind="revision")) == [cake[2], lock[2]]
    cid = services.constitutions.list_all()[0].id
    assert len(_ids(services, SearchFilters(constitution_id=cid))) == 6
    assert _ids(services, SearchFilters(constitution_id=cid + 99)) == []
    chain_id = services.critique_log.get(lock[0]).chain_id  # type: ignore[union-attr]
    assert _ids(services, SearchFilters(chain_id=chain_id)) == lock[::-1]
    now = utcnow()
    assert len(_ids(services, SearchFilters(since=now - timedelta(minutes=5)))) == 6
    assert _ids(services, SearchFilters(until=now - timedelta(minutes=5))) == []
    assert _ids(services, SearchFilters(record_ids=(lock[0], cake[0]))) == [cake[0], lock[0]]


def test_filters_without_text_are_matched_in_the_index_and_checked(
        services: Services, chains: dict[str, list[int]]) -> None:
    """Kind + principle (+ version) with no text are intersected in the FTS index's meta
    tokens; a record whose text merely contains those tokens is not a match."""
    v, k1, k2 = head_version(services)
    lock, cake = chains["lock"], chains["cake"]
    tokens = " ".join([meta_token("kd", "critique"), meta_token("pk", k2),
                       meta_token("cv", v)])
    decoy = log_chain(services, prompt=tokens, response=tokens, critique=tokens,
                      revision=tokens, version_id=v, principle_key=k1)
    assert _ids(services, SearchFilters(kind="critique", principle_key=k2)) == [cake[1]]
    assert _ids(services, SearchFilters(kind="critique", principle_key=k1, version_id=v)) == [
        decoy[1], lock[1]]
    assert _ids(services, SearchFilters(kind="revision", principle_key=k2,
                                        version_id=v + 1)) == []
    with services.db.read() as s:
        assert repo.count_matches(s, filters=SearchFilters(kind="critique",
                                                           principle_key=k2)) == 1
        assert repo.count_matches(s, filters=SearchFilters(kind="revision", principle_key=k1,
                                                           version_id=v)) == 2


def test_flagged_filter_follows_the_latest_flag_event(
        services: Services, chains: dict[str, list[int]]) -> None:
    lock = chains["lock"]
    with services.db.write() as s:
        notes_repo.add_flag(s, record_id=lock[0], action="flag", reason="", actor="a")
        notes_repo.add_flag(s, record_id=lock[1], action="flag", reason="", actor="a")
        notes_repo.add_flag(s, record_id=lock[1], action="unflag", reason="fine", actor="a")
    assert _ids(services, SearchFilters(flagged=True)) == [lock[0]]
    assert _ids(services, SearchFilters(flagged=True, query="burglary")) == []


def test_evaluation_filter_covers_the_verdict_chains(services: Services) -> None:
    v, k1, _ = head_version(services)
    verdict_chain = log_chain(services, prompt="p", response="r", critique="c", revision="v",
                              version_id=v, principle_key=k1)
    log_chain(services, prompt="other", response="r", critique="c", revision="v",
              version_id=v, principle_key=k1)
    ds = add_dataset(services, 1)
    with services.db.write() as s:
        ev = Evaluation(name="run", dataset_id=ds, constitution_version_id=v, engine_kind="tiny",
                        model="m", created_by="t")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        item = s.execute(text("SELECT id FROM pair_item")).scalar_one()
        s.add(VerdictRow(evaluation_id=ev.id, item_id=item, p_a=0.7,
                         record_ids=[verdict_chain[2]]))
        eid = ev.id
    assert _ids(services, SearchFilters(evaluation_id=eid)) == verdict_chain[::-1]
    with services.db.read() as s:
        assert repo.verdicts_citing(s, record_ids=[verdict_chain[2]]) == [(eid, "run", item, 0.7)]


def test_keyset_pages_and_capped_count(services: Services) -> None:
    v, k1, _ = head_version(services)
    for i in range(4):
        log_chain(services, prompt=f"q{i}", response="same words", critique="same words",
                  revision="same words", version_id=v, principle_key=k1)
    first = _ids(services, SearchFilters(query="same"), limit=5)
    second = _ids(services, SearchFilters(query="same"), limit=5, before_id=first[-1])
    assert len(first) == 5 and len(second) == 5 and first[-1] > second[0]
    with services.db.read() as s:
        assert repo.count_matches(s, filters=SearchFilters(query="same")) == 12
        assert repo.count_matches(s, filters=SearchFilters(query="same"), cap=3) == 4
        pages = list(repo.iter_matches(s, filters=SearchFilters(query="same"), batch=5))
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [r.id for p in pages for r in p] == sorted(first + second + [min(second) - 1,
                                                                         min(second) - 2])


def test_flags_and_comments_are_append_only(services: Services,
                                            chains: dict[str, list[int]]) -> None:
    with services.db.write() as s:
        notes_repo.add_comment(s, record_id=chains["lock"][0], body="note", actor="a")
    for sql in ("UPDATE audit_comment SET body = 'changed'", "DELETE FROM audit_comment",
                "UPDATE record_seal SET row_hash = 'x'"):
        with pytest.raises(DBAPIError, match="append-only"), services.db.write() as s:
            s.execute(text(sql))


@pytest.mark.skipif("os.environ.get('CSTUDIO_TEST_DATABASE_URL')")
def test_upgrade_indexes_records_written_before_the_migration(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "old.db"))
    migrate.upgrade(database, "0004")
    with database.write() as s:
        s.execute(text(
            "INSERT INTO critique_log (created_at, kind, chain_id, engine_kind, model, params, "
            "prompt_sent, output, latency_s, actor, record_hash) VALUES ('2026-01-01 00:00:00', "
            "'critique', 'c1', 'tiny', 'm', '{}', 'an older prompt', 'legacy output', 0, 'a', "
            "'h')"))
    migrate.upgrade(database)
    with database.read() as s:
        rows = repo.search_page(s, filters=SearchFilters(query="legacy"))
    assert rows is not None and [r.id for r in rows] == [1]
    database.dispose()
