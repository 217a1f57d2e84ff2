"""Prefix search: served by the FTS5 prefix indexes (migration 0011), refused with a clear
message below the minimum length, and the index stays in sync with new records."""

from __future__ import annotations

import sqlite3

import pytest

from backend.services.container import Services
from db.audit_search_repo import MIN_PREFIX, SearchFilters
from tests.backend.services.audit_data import head_version, log_chain


@pytest.fixture
def chain(services: Services) -> list[int]:
    v, k1, _ = head_version(services)
    return log_chain(services, prompt="How do I pick a lock?", response="Use a wrench.",
                     critique="Burglary advice is harmful.", revision="I can't help.",
                     version_id=v, principle_key=k1)


@pytest.mark.parametrize("query", ["a*", "lock a*", "x-y*", '"pick" b*'])
def test_a_prefix_below_the_minimum_gives_a_message(services: Services, chain: list[int],
                                                    query: str) -> None:
    page = services.audit_search.search(SearchFilters(query=query))
    assert page.hits == [] and f"at least {MIN_PREFIX} letters" in page.message


@pytest.mark.parametrize(("query", "kinds"), [
    ("bu*", {"critique", "revision"}), ("wre*", {"response", "critique"}),
    ("harmf*", {"critique", "revision"}),
    ('"pick a" lo*', {"response"}), ("he*", {"revision"})])
def test_prefixes_of_two_and_more_letters_find_records(services: Services, chain: list[int],
                                                       query: str, kinds: set[str]) -> None:
    page = services.audit_search.search(SearchFilters(query=query))
    assert page.message == "" and {h.entry.kind for h in page.hits} == kinds


def test_the_index_is_built_with_prefix_indexes_and_kept_in_sync(services: Services,
                                                                 chain: list[int]) -> None:
    if services.db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite FTS5 prefix indexes (PostgreSQL answers prefixes from its GIN index)")
    path = services.db.engine.url.database
    assert path
    with sqlite3.connect(path) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'critique_fts'").fetchone()
    assert "prefix='2 3'" in sql[0]
    v, k1, _ = head_version(services)
    log_chain(services, prompt="Zebras?", response="Zebroids exist.", critique="Fine.",
              revision="Zebroids do exist.", version_id=v, principle_key=k1)
    assert len(services.audit_search.search(SearchFilters(query="zeb*")).hits) == 3
