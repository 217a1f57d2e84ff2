from __future__ import annotations

import dataclasses
import threading

import pytest

from backend.access import local_admin
from backend.cai.constitution import ConstitutionContent
from backend.errors import ConflictError, NoChangesError, NotFoundError, ValidationError
from backend.services.constitutions import VersionDetail
from backend.services.container import Services

AS_AGAIN = local_admin("again")
AS_ALICE = local_admin("alice")
AS_ANN = local_admin("ann")
AS_BOB = local_admin("bob")


def edit(detail: VersionDetail, index: int, title: str) -> ConstitutionContent:
    """The detail's content with principle ``index`` retitled."""
    items = list(detail.content.principles)
    items[index] = dataclasses.replace(items[index], title=title)
    return dataclasses.replace(detail.content, principles=tuple(items))


def test_first_start_seeds_one_default_constitution(services: Services) -> None:
    [only] = services.constitutions.list_all()
    assert only.name == "Studio default" and only.head.number == 1
    assert services.constitution_io.seed_default(actor=AS_AGAIN) is None  # idempotent


def test_every_save_is_a_new_immutable_version(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    v1 = services.constitutions.head(cid)
    v2 = services.constitutions.save(cid, v1.info.id, edit(v1, 0, "First"), "one", actor=AS_ANN)
    v3 = services.constitutions.save(cid, v2.info.id, edit(v2, 1, "Second"), "two", actor=AS_BOB)
    assert [v.number for v in services.constitutions.history(cid)] == [3, 2, 1]
    assert v3.info.parent_id == v2.info.id and v2.info.parent_id == v1.info.id
    assert services.constitutions.version(v1.info.id).content == v1.content
    assert v3.content.principles[0].title == "First" and v3.info.author == "bob"
    assert len({v1.info.content_hash, v2.info.content_hash, v3.info.content_hash}) == 3


def test_second_save_on_the_same_head_is_refused(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    base = services.constitutions.head(cid)
    services.constitutions.save(cid, base.info.id, edit(base, 0, "Alice's"), "alice",
                                actor=AS_ALICE)
    with pytest.raises(ConflictError) as info:
        services.constitutions.save(cid, base.info.id, edit(base, 0, "Bob's"), "bob", actor=AS_BOB)
    assert "alice" in str(info.value) and "Nothing was overwritten" in str(info.value)
    head = services.constitutions.head(cid)
    assert head.info.number == 2 and head.content.principles[0].title == "Alice's"


def test_concurrent_saves_on_one_head_let_exactly_one_win(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    base = services.constitutions.head(cid)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def save(i: int) -> None:
        barrier.wait()
        try:
            services.constitutions.save(cid, base.info.id, edit(base, 0, f"Writer {i}"), f"w{i}",
                                        actor=local_admin(f"w{i}"))
            outcomes.append("saved")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]
    assert [v.number for v in services.constitutions.history(cid)] == [2, 1]


def test_saving_identical_content_is_refused(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    with pytest.raises(NoChangesError):
        services.constitutions.save(cid, head.info.id, head.content, "nothing", actor=AS_ANN)


def test_invalid_content_is_refused_and_nothing_is_stored(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    with pytest.raises(ValidationError, match="title"):
        services.constitutions.save(cid, head.info.id, edit(head, 0, ""), "bad", actor=AS_ANN)
    assert services.constitutions.head(cid).info.id == head.info.id


def test_revert_creates_a_new_version_with_the_old_content(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    v1 = services.constitutions.head(cid)
    v2 = services.constitutions.save(cid, v1.info.id, edit(v1, 0, "Changed"), "c", actor=AS_ANN)
    v3 = services.constitutions.revert(cid, v1.info.id, v2.info.id, actor=AS_ANN)
    assert v3.info.number == 3 and v3.info.content_hash == v1.info.content_hash
    assert v3.info.message == "Revert to v1"
    with pytest.raises(NoChangesError):
        services.constitutions.revert(cid, v1.info.id, v3.info.id, actor=AS_ANN)


def test_diff_between_versions(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    v1 = services.constitutions.head(cid)
    v2 = services.constitutions.save(cid, v1.info.id, edit(v1, 3, "Renamed"), "r", actor=AS_ANN)
    diff = services.constitutions.diff(v1.info.id, v2.info.id)
    assert [(c.kind, c.new_position) for c in diff.changes] == [("changed", 4)]
    assert diff.changes[0].fields[0].new == "Renamed"


def test_create_rejects_duplicate_names_and_lookups_fail_clearly(services: Services) -> None:
    head = services.constitutions.head(services.constitutions.list_all()[0].id)
    with pytest.raises(ValidationError, match="already exists"):
        services.constitutions.create("Studio default", "", head.content, actor=AS_ANN)
    with pytest.raises(NotFoundError, match="constitution list"):
        services.constitutions.find("no such thing")
    with pytest.raises(NotFoundError):
        services.constitutions.version(10_000)
