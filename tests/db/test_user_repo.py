from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.exc import IntegrityError

from db import migrate
from db import user_repo as repo
from db.engine import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


def _add(db: Database, name: str, role: str = "viewer") -> None:
    with db.write() as s:
        repo.add_user(s, name=name, role=role, password_hash=f"hash-of-{name}", created_by="me")


def test_add_get_list_and_count(db: Database) -> None:
    with db.read() as s:
        assert repo.count_users(s) == 0 and repo.get_user(s, name="ann") is None
    _add(db, "bob", "author")
    _add(db, "ann", "admin")
    with db.read() as s:
        assert [u.name for u in repo.list_users(s)] == ["ann", "bob"]
        ann = repo.get_user(s, name="ann")
        assert ann is not None and ann.role == "admin" and not ann.disabled
        assert ann.created_by == "me" and ann.password_hash == "hash-of-ann"
        assert repo.count_users(s) == 2 and repo.count_users(s, role="author") == 1


def test_names_are_unique(db: Database) -> None:
    _add(db, "ann")
    with pytest.raises(IntegrityError):
        _add(db, "ann", "admin")
    with db.read() as s:
        assert repo.count_users(s) == 1


def test_update_changes_only_the_given_fields(db: Database) -> None:
    _add(db, "ann", "admin")
    with db.read() as s:
        before = repo.get_user(s, name="ann")
    assert before is not None
    with db.write() as s:
        row = repo.update_user(s, name="ann", disabled=True)
        assert row is not None
        assert repo.update_user(s, name="nobody", role="admin") is None
    with db.read() as s:
        after = repo.get_user(s, name="ann")
    assert after is not None
    assert (after.role, after.password_hash, after.disabled) == ("admin", "hash-of-ann", True)
    assert after.updated_at >= before.updated_at and after.created_at == before.created_at


def test_enabled_admins_and_delete(db: Database) -> None:
    _add(db, "ann", "admin")
    _add(db, "bob", "admin")
    _add(db, "cy", "author")
    with db.write() as s:
        repo.update_user(s, name="bob", disabled=True)
        assert repo.enabled_admin_names(s, lock=True) == ["ann"]
        assert repo.count_users(s, enabled_only=True) == 2
        deleted = repo.delete_user(s, name="cy")
        assert deleted is not None and deleted.name == "cy"
        assert repo.delete_user(s, name="cy") is None
    with db.read() as s:
        assert [u.name for u in repo.list_users(s)] == ["ann", "bob"]
