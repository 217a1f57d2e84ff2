from __future__ import annotations

import dataclasses

from sqlalchemy import text

from backend.access import local_admin
from backend.services.container import Services
from tests.databases import drop_append_only_guard

AS_ANN = local_admin("ann")


def _save_one(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    p = dataclasses.replace(head.content.principles[0], title="Edited")
    content = dataclasses.replace(head.content, principles=(p, *head.content.principles[1:]))
    services.constitutions.save(cid, head.info.id, content, "edit", actor=AS_ANN)


def _raw(services: Services, *statements: str) -> None:
    with services.db.write() as s:
        conn = s.connection()
        for table in ("principle", "constitution_version"):
            drop_append_only_guard(conn, table)
        for statement in statements:
            conn.execute(text(statement))


def test_clean_store_verifies(services: Services) -> None:
    _save_one(services)
    report = services.audit.verify()
    # events: the seed, the built-in prompt set and the save
    assert report.ok and report.events_checked == 3 and report.versions_checked == 2


def test_a_principle_edited_in_place_is_detected(services: Services) -> None:
    _save_one(services)
    _raw(services, "UPDATE principle SET critique_request = 'sneaky' WHERE id = 1")
    report = services.audit.verify()
    assert not report.ok
    assert any("constitution_version id 1" in p and "altered" in p for p in report.problems)


def test_a_rewritten_content_hash_is_detected(services: Services) -> None:
    _save_one(services)
    _raw(services, "UPDATE principle SET title = 'sneaky' WHERE id = 1",
         "UPDATE constitution_version SET content_hash = 'f00' WHERE id = 1")
    report = services.audit.verify()
    assert any("audit event recorded" in p for p in report.problems)
