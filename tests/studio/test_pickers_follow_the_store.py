"""Issue 14, point 2: the Playground and Agreement pickers follow the store when their tab is
opened (a version saved or a constitution imported elsewhere shows up without a reload); plus
the Playground's verdict line (links to records, "close to a tie")."""

from __future__ import annotations

from backend.access import local_admin
from backend.cai.labeling import VariantVerdict, Verdict
from backend.services.container import Services
from studio.agreement_handlers import AgreementHandlers
from studio.playground_handlers import PlaygroundHandlers, _verdict_summary
from tests.studio.test_playground_handlers import _save_new_head

ADMIN = local_admin("tester")


def _copy(services: Services, name: str) -> int:
    (first,) = services.constitutions.list_all()
    content = services.constitutions.head(first.id).content
    return services.constitutions.create(name, "", content, actor=ADMIN,
                                         message="copy").constitution.id


def test_playground_lists_a_constitution_created_elsewhere(services: Services) -> None:
    h = PlaygroundHandlers(services)
    (first,) = services.constitutions.list_all()
    new_id = _copy(services, "Imported later")
    update = h.relist_constitutions(first.id)
    assert new_id in [c[1] for c in update["choices"]] and "value" not in update


def test_agreement_relists_versions_and_follows_the_head(services: Services) -> None:
    h = AgreementHandlers(services)
    (first,) = services.constitutions.list_all()
    old_head = services.constitutions.head(first.id).info.id
    new_head = _save_new_head(services, first.id)
    new_id = _copy(services, "Imported later")
    dataset, constitution, version, seen, run, _, _ = h.refresh(
        None, first.id, old_head, old_head, None, None, None)
    assert constitution["value"] == first.id
    assert new_id in [c[1] for c in constitution["choices"]]
    assert [c[1] for c in version["choices"]] == [new_head, old_head]
    assert version["value"] == new_head and seen == new_head  # it showed the head: follows
    assert dataset["value"] is None and run["choices"] == []
    # an older version picked on purpose stays picked
    _, _, version, _, _, _, _ = h.refresh(None, first.id, old_head, new_head, None, None, None)
    assert version["value"] == old_head


def _verdict(p_a: float) -> Verdict:
    return Verdict("c", p_a, (VariantVerdict("k", "AB", p_a, p_a, False, None, 12, None),), 0)


def test_verdict_line_links_records_and_calls_near_ties() -> None:
    close = _verdict_summary(_verdict(0.471))
    assert "winner **B** (close to a tie" in close and "[#12](?record=12)" in close
    assert "close to a tie" not in _verdict_summary(_verdict(0.2))
