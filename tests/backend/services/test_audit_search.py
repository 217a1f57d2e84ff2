from __future__ import annotations

from datetime import timedelta

import pytest

from backend.access import Principal, Role
from backend.errors import NotFoundError, PermissionDeniedError, ValidationError
from backend.services.container import Services
from db.audit_search_repo import SearchFilters
from db.base_models import utcnow
from tests.backend.services.audit_data import head_version, log_chain

AUDITOR = Principal("audrey", Role.AUDITOR)
VIEWER = Principal("vic", Role.VIEWER)
AUTHOR = Principal("ann", Role.AUTHOR)


@pytest.fixture
def chain(services: Services) -> list[int]:
    v, k1, _ = head_version(services)
    return log_chain(services, prompt="How do I pick a lock?", response="Use a wrench.",
                     critique="Burglary advice is harmful.", revision="I can't help.",
                     version_id=v, principle_key=k1)


def test_search_pages_carry_counts_flags_and_a_cursor(services: Services,
                                                      chain: list[int]) -> None:
    page = services.audit_search.search(SearchFilters(), page_size=2)
    assert [h.entry.id for h in page.hits] == [chain[2], chain[1]]
    assert page.total == 3 and page.next_before == chain[1] and page.total_label == "3"
    rest = services.audit_search.search(SearchFilters(), page_size=2, before_id=page.next_before)
    assert [h.entry.id for h in rest.hits] == [chain[0]] and rest.next_before is None


@pytest.mark.parametrize(("filters", "says"), [
    (SearchFilters(query="x" * 501), "limit is 500"),
    (SearchFilters(query="\"' -- ;"), "Nothing to search for"),
    (SearchFilters(since=utcnow(), until=utcnow() - timedelta(days=1)), "date range is empty"),
])
def test_unsearchable_input_gives_a_message_not_an_error(services: Services, chain: list[int],
                                                         filters: SearchFilters,
                                                         says: str) -> None:
    page = services.audit_search.search(filters)
    assert page.hits == [] and says in page.message


def test_record_detail_shows_the_principle_text_of_that_version_and_the_chain(
        services: Services, chain: list[int]) -> None:
    v, k1, _ = head_version(services)
    detail = services.audit_search.record(chain[2])
    assert [e.id for e in detail.lineage] == chain
    assert [e.kind for e in detail.chain] == ["response", "critique", "revision"]
    assert detail.version is not None and detail.version.info.id == v
    expected = next(p for p in detail.version.content.principles if p.key == k1)
    assert detail.principle == expected
    assert detail.entry.probabilities == {"A": 0.25, "B": 0.75}
    assert detail.entry.prompt_sent.startswith("Burglary advice is harmful.")
    with pytest.raises(NotFoundError, match="No critique-log record with id 999"):
        services.audit_search.record(999)


def test_principle_provenance_lists_what_it_produced(services: Services,
                                                     chain: list[int]) -> None:
    v, k1, k2 = head_version(services)
    filters = services.audit_search.principle_filters(v, k1)
    assert [h.entry.id for h in services.audit_search.search(filters).hits] == chain[:0:-1]
    assert services.audit_search.search(
        services.audit_search.principle_filters(v, k2)).hits == []
    with pytest.raises(NotFoundError, match="has no principle"):
        services.audit_search.principle_filters(v, "no-such-key")


def test_flag_unflag_and_comment_append_and_never_alter_the_record(
        services: Services, chain: list[int]) -> None:
    before = services.critique_log.get(chain[1])
    detail = services.audit_search.flag(chain[1], "looks wrong", actor=AUDITOR)
    assert detail.flagged and detail.flags[-1].actor == "audrey"
    with pytest.raises(ValidationError, match="already flagged"):
        services.audit_search.flag(chain[1], "", actor=AUDITOR)
    detail = services.audit_search.comment(chain[1], "Checked against v1.\n<b>ok</b>",
                                           actor=AUDITOR)
    detail = services.audit_search.unflag(chain[1], "fine after all", actor=AUDITOR)
    assert not detail.flagged and [f.action for f in detail.flags] == ["flag", "unflag"]
    assert [c.body for c in detail.comments] == ["Checked against v1.\n<b>ok</b>"]
    assert services.critique_log.get(chain[1]) == before
    actions = [e.action for e in _events(services)]
    assert actions[-3:] == ["audit.flag", "audit.comment", "audit.unflag"]
    assert services.audit.verify().ok


def _events(services: Services) -> list[object]:
    from sqlmodel import select

    from db.audit_models import AuditEvent

    with services.db.read() as s:
        return list(s.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]


@pytest.mark.parametrize("who", [VIEWER, AUTHOR])
def test_roles_without_flag_permission_are_refused(services: Services, chain: list[int],
                                                   who: Principal) -> None:
    with pytest.raises(PermissionDeniedError, match="may not flag"):
        services.audit_search.flag(chain[0], "", actor=who)
    with pytest.raises(PermissionDeniedError):
        services.audit_search.comment(chain[0], "hi", actor=who)
    assert services.audit_search.record(chain[0]).flags == []


@pytest.mark.parametrize("bad", ["\u202eevil", "a\x00b", "x" * 4001])
def test_comment_text_is_checked(services: Services, chain: list[int], bad: str) -> None:
    with pytest.raises(ValidationError):
        services.audit_search.comment(chain[0], bad, actor=AUDITOR)
    with pytest.raises(ValidationError, match="empty"):
        services.audit_search.comment(chain[0], "  \n ", actor=AUDITOR)
