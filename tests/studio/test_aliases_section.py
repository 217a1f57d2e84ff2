"""The version-alias section: set, move and remove an alias; the tables and the audit trail
follow; a role without edit rights is refused and nothing changes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import PermissionDeniedError
from backend.services.container import Services
from db.audit_chain import iter_events
from studio.aliases_section import AliasHandlers

OWNER = local_admin("owner")


def _second_version(services: Services) -> int:
    summary = services.constitutions.list_all()[0]
    head = services.constitutions.head(summary.id)
    p = head.content.principles[0]
    content = dataclasses.replace(head.content, principles=(
        dataclasses.replace(p, title=p.title + " v2"), *head.content.principles[1:]))
    services.constitutions.save(summary.id, head.info.id, content, "second", actor=OWNER)
    return summary.id


def test_set_move_remove(services: Services) -> None:
    cid = _second_version(services)
    h = AliasHandlers(services)
    assert h.load()["value"] == cid
    table, history, versions, names = h.show(cid)
    assert table == [] and history == [] and versions["value"] == 2
    assert names["choices"] == ["production", "staging"]

    message, table, *_ = h.set_alias(None, cid, "production", 1)  # type: ignore[arg-type]
    assert message == "Set **production** to v1." and table == [["production", "v1", "tester"]]
    message, table, history, *_ = h.set_alias(None, cid, "production", 2)  # type: ignore[arg-type]
    assert message == "Moved **production** from v1 to v2."
    assert table == [["production", "v2", "tester"]]
    assert [r[1:] for r in history] == [["production", "v2", "tester"],
                                        ["production", "v1", "tester"]]
    message, *_ = h.set_alias(None, cid, "Bad Name<b>", 1)  # type: ignore[arg-type]
    assert message.startswith("**Not changed.** Alias") and "<b>" not in message
    message, table, history, *_ = h.remove(None, cid, "production")  # type: ignore[arg-type]
    assert message == "Removed alias **production**." and table == []
    assert history[0][1:3] == ["production", "removed"]
    assert "Pick a constitution" in h.remove(None, cid, " ")[0]  # type: ignore[arg-type]
    with services.db.read() as s:
        events = [json.loads(e.payload) for e in iter_events(s) if e.action == "constitution.alias"]
    assert [e["version"] for e in events] == [1, 2, None]


def test_auditor_cannot_move_an_alias(services: Services) -> None:
    cid = _second_version(services)
    services.ci.set_alias(cid, "staging", 1, actor=OWNER)
    with pytest.raises(PermissionDeniedError):
        services.ci.set_alias(cid, "staging", 2, actor=Principal("aud", Role.AUDITOR))
    assert [(a.name, a.version_number) for a in services.ci.aliases(cid)] == [("staging", 1)]
