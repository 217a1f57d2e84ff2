"""SQL-injection and FTS5/tsquery syntax typed into the audit search: results or a clear
message, never an error; the store is unchanged afterwards. Runs on SQLite and (with
CSTUDIO_TEST_DATABASE_URL) PostgreSQL, through the service, the UI handler and the Gradio API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.services.container import Services
from db.audit_search_repo import SearchFilters
from studio.audit_handlers import AuditHandlers
from tests.backend.services.audit_data import head_version, log_chain

HOSTILE = [
    "' OR '1'='1", "' OR 1=1 --", "1; DROP TABLE critique_log; --",
    "x'); DELETE FROM audit_event; --", "\" OR \"\"=\"", "' UNION SELECT sql FROM sqlite_master --",
    "%' AND 1=0 UNION SELECT NULL --", "\\'; --", "/* comment */", "';--", "\x00",
    "lock\x00burglary",
    # FTS5 syntax
    "NEAR(lock burglary, 2)", "lock AND OR NOT", "prompt_sent: lock", "{prompt_sent output}: x",
    "^lock", "lock*", "*", "\"unterminated", "(((", "a - b", "+lock", "lock:* & !x",
    # tsquery / websearch syntax
    "lock <-> burglary", "!lock", "lock | x", "'lock':*", "-\"lock\"", "or", "\"\"",
    "🔒 ünïcödé", "a" * 400,
]


@pytest.fixture
def seeded(services: Services) -> Services:
    v, k1, _ = head_version(services)
    log_chain(services, prompt="How do I pick a lock?", response="' OR 1=1 -- is SQL",
              critique="Burglary advice is harmful; NEAR(lock burglary) too.",
              revision="I can't help.", version_id=v, principle_key=k1)
    return services


def test_service_answers_every_hostile_query(seeded: Services) -> None:
    for query in HOSTILE:
        for flagged in (False, True):
            page = seeded.audit_search.search(SearchFilters(query=query, flagged=flagged,
                                                            principle_key=query[:64]))
            assert page.message or page.total >= 0, query
    assert seeded.critique_log.count() == 3
    assert seeded.audit.verify().ok


def test_injection_strings_are_searched_as_words(seeded: Services) -> None:
    ids = [h.entry.id for h in seeded.audit_search.search(SearchFilters(query="' OR 1=1 --")).hits]
    assert ids == [2, 1]  # the response, and the critique prompt that quotes it
    hits = seeded.audit_search.search(SearchFilters(query="NEAR(lock burglary)")).hits
    assert [h.entry.id for h in hits] == [3, 2]


def test_the_ui_handler_shows_a_status_for_every_hostile_query(seeded: Services) -> None:
    h = AuditHandlers(seeded)
    for query in HOSTILE:
        rows, status, _ = h.search(query, "", "", "", "", "", "", "", "", "", False)
        assert isinstance(rows, list) and status, query
    assert seeded.audit.verify().ok


@pytest.fixture
def api(services: Services, tmp_path: object) -> Iterator[object]:
    from gradio_client import Client

    from studio.app import build_app, launch
    from tests.browser.conftest import _free_port

    v, k1, _ = head_version(services)
    log_chain(services, prompt="lock", response="' OR 1=1 --", critique="c", revision="r",
              version_id=v, principle_key=k1)
    settings = services.settings.model_copy(update={"port": _free_port()})
    demo = build_app(settings, services)
    launch(demo, settings, block=False, services=services)
    try:
        yield Client(f"http://127.0.0.1:{settings.port}", verbose=False)
    finally:
        demo.close()


@pytest.mark.slow
def test_the_gradio_api_never_errors(api: object) -> None:
    for query in ("' OR 1=1 --", "NEAR(a b)", "\"", "x'); DROP TABLE critique_log; --"):
        _, status = api.predict(query, "", "", "", "", "", "", "", "", "", False,  # type: ignore[attr-defined]
                                   api_name="/audit_search")
        assert isinstance(status, str) and status
    _, status = api.predict("' OR 1=1 --", "", "", "", "", "", "", "", "", "", False,  # type: ignore[attr-defined]
                               api_name="/audit_search")
    assert "records match" in status or "1 record matches" in status
