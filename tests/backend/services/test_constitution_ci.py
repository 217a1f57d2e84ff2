"""Regression rule: a metric regressed when its whole paired interval lies on the worse side
(below zero for accuracy and κ, above zero for the losses)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from backend.cai.metrics import Estimate
from backend.errors import ValidationError
from backend.services.constitution_ci import ConstitutionCI


def _ci(deltas: dict[str, Estimate]) -> ConstitutionCI:
    agreement: Any = SimpleNamespace(compare=lambda a, b, n_boot: SimpleNamespace(deltas=deltas))
    none: Any = None
    return ConstitutionCI(none, none, none, none, none, agreement)


@pytest.mark.parametrize(("metric", "delta", "regressed"), [
    ("accuracy", Estimate(-0.10, -0.15, -0.05), True),
    ("accuracy", Estimate(-0.10, -0.20, 0.01), False),  # inside the noise
    ("accuracy", Estimate(0.10, 0.05, 0.15), False),
    ("log_loss", Estimate(0.10, 0.02, 0.20), True),
    ("log_loss", Estimate(-0.10, -0.20, -0.02), False),
])
def test_regression_rule(metric: str, delta: Estimate, regressed: bool) -> None:
    check = _ci({metric: delta}).regression(1, 2, metric=metric)
    assert check.regressed is regressed and check.delta == delta


def test_unknown_metric() -> None:
    with pytest.raises(ValidationError, match="Unknown metric"):
        _ci({"accuracy": Estimate(0, 0, 0)}).regression(1, 2, metric="f1")


def test_aliases_move_append_only_and_resolve(services: Any) -> None:
    from dataclasses import replace

    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    from backend.access import Principal, Role, local_admin
    from backend.errors import NotFoundError, PermissionDeniedError
    from db import alias_repo

    owner = local_admin("owner")
    summary = services.constitutions.list_all()[0]
    head = services.constitutions.head(summary.id)
    first = replace(head.content.principles[0], title="Changed title")
    content = replace(head.content, principles=(first, *head.content.principles[1:]))
    services.constitutions.save(summary.id, head.info.id, content, "v2", actor=owner)
    ci = services.ci
    ci.set_alias(summary.id, "production", 1, actor=owner)
    ci.set_alias(summary.id, "staging", 2, actor=owner)
    assert ci.resolve(summary.id, "production").info.number == 1
    ci.set_alias(summary.id, "production", 2, actor=owner)  # moved
    assert ci.resolve(summary.id, "production").info.number == 2
    assert ci.resolve(summary.id, "1").info.number == 1
    assert ci.resolve(summary.id, None).info.number == 2  # head
    ci.set_alias(summary.id, "staging", None, actor=owner)  # removed
    assert [(a.name, a.version_number) for a in ci.aliases(summary.id)] == [("production", 2)]
    with pytest.raises(NotFoundError, match="aliases: production"):
        ci.resolve(summary.id, "staging")
    with pytest.raises(ValidationError):
        ci.set_alias(summary.id, "Prod!", 1, actor=owner)
    with pytest.raises(PermissionDeniedError):
        ci.set_alias(summary.id, "qa", 1, actor=Principal("a", Role.AUDITOR))
    with services.db.read() as s:
        assert len(alias_repo.history(s, constitution_id=summary.id, name="production")) == 2
    with pytest.raises(DatabaseError, match="append-only"), services.db.write() as s:
        s.connection().execute(text("UPDATE constitution_alias SET version_id = 1"))

