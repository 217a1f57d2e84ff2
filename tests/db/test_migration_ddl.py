"""The append-only guard DDL the migrations share (db/migrations/ddl.py) emits exactly the
statements the migrations wrote inline before: migrations are history and must not change."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from db.migrations import ddl


class _Op:
    def __init__(self, dialect: str) -> None:
        self.sql: list[str] = []
        self._bind = SimpleNamespace(dialect=SimpleNamespace(name=dialect))

    def get_bind(self) -> SimpleNamespace:
        return self._bind

    def execute(self, sql: str) -> None:
        self.sql.append(sql)


def _emitted(monkeypatch: pytest.MonkeyPatch, dialect: str, create: bool) -> list[str]:
    fake = _Op(dialect)
    monkeypatch.setattr(ddl, "op", fake)
    (ddl.create_append_only if create else ddl.drop_append_only)("verdict", "pair_item")
    return fake.sql


def test_sqlite_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _emitted(monkeypatch, "sqlite", True) == [
        "CREATE TRIGGER verdict_no_update BEFORE UPDATE ON verdict "
        "BEGIN SELECT RAISE(ABORT, 'verdict is append-only'); END",
        "CREATE TRIGGER verdict_no_delete BEFORE DELETE ON verdict "
        "BEGIN SELECT RAISE(ABORT, 'verdict is append-only'); END",
        "CREATE TRIGGER pair_item_no_update BEFORE UPDATE ON pair_item "
        "BEGIN SELECT RAISE(ABORT, 'pair_item is append-only'); END",
        "CREATE TRIGGER pair_item_no_delete BEFORE DELETE ON pair_item "
        "BEGIN SELECT RAISE(ABORT, 'pair_item is append-only'); END"]
    assert _emitted(monkeypatch, "sqlite", False) == [
        "DROP TRIGGER IF EXISTS verdict_no_update", "DROP TRIGGER IF EXISTS verdict_no_delete",
        "DROP TRIGGER IF EXISTS pair_item_no_update", "DROP TRIGGER IF EXISTS pair_item_no_delete"]


def test_postgresql_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _emitted(monkeypatch, "postgresql", True) == [
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION cstudio_append_only()" for t in ("verdict", "pair_item")]
    assert _emitted(monkeypatch, "postgresql", False) == [
        f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in ("verdict", "pair_item")]
