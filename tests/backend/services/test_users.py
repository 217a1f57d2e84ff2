from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from backend.access import Principal, Role, local_admin
from backend.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from backend.services.container import Services
from backend.services.users import UserService
from db.audit_models import AuditEvent

# Cheap argon2id parameters keep the tests fast; the production default is checked separately.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ROOT = local_admin("root")
PW = "correct horse battery"


@pytest.fixture
def users(services: Services) -> UserService:
    services.users = UserService(services.db, FAST)
    return services.users


def _events(services: Services) -> list[AuditEvent]:
    with services.db.read() as s:
        return list(s.exec(select(AuditEvent).where(
            AuditEvent.action.startswith("user.")).order_by(AuditEvent.id)).all())  # type: ignore[attr-defined]


def _with_admin_and_author(users: UserService) -> None:
    users.add("ann", "admin", PW, actor=ROOT)
    users.add("bob", "author", PW, actor=ROOT)


def test_the_first_user_must_be_an_admin(services: Services, users: UserService) -> None:
    assert not users.any_users()
    with pytest.raises(ValidationError, match="first user must be an admin"):
        users.add("bob", "author", PW, actor=ROOT)
    info = users.add("Ann", "admin", PW, actor=ROOT)
    assert (info.name, info.role, info.created_by) == ("ann", Role.ADMIN, "root")
    assert users.any_users()


def test_passwords_are_stored_as_argon2id_and_never_audited(services: Services,
                                                            users: UserService) -> None:
    _with_admin_and_author(users)
    users.set_password("bob", "another password", actor=Principal("ann", Role.ADMIN))
    with services.db.read() as s:
        from db import user_repo
        stored = user_repo.get_user(s, name="bob")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    assert "another password" not in stored.password_hash
    events = _events(services)
    assert [e.action for e in events] == ["user.add", "user.add", "user.passwd"]
    assert [e.actor for e in events] == ["root", "root", "ann"]
    for event in events:
        assert PW not in event.payload and "another password" not in event.payload
        assert "argon2" not in event.payload and "hash" not in json.loads(event.payload)
    assert services.audit.verify().ok


def test_the_default_hasher_is_memory_hard(services: Services) -> None:
    encoded = services.users._hasher.hash("x" * 12)
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_authenticate(users: UserService) -> None:
    _with_admin_and_author(users)
    assert users.authenticate("bob", PW) == Principal("bob", Role.AUTHOR)
    assert users.authenticate("BOB", PW) == Principal("bob", Role.AUTHOR)  # names ignore case
    assert users.authenticate("bob", PW.upper()) is None
    assert users.authenticate("nobody", PW) is None
    assert users.authenticate("bob", "") is None
    users.set_disabled("bob", True, actor=ROOT)
    assert users.authenticate("bob", PW) is None and users.active_principal("bob") is None
    users.set_disabled("bob", False, actor=ROOT)
    assert users.active_principal("bob") == Principal("bob", Role.AUTHOR)


def test_a_hash_made_with_old_parameters_is_upgraded_at_sign_in(services: Services) -> None:
    old = UserService(services.db, FAST)
    old.add("ann", "admin", PW, actor=ROOT)
    stronger = UserService(services.db, PasswordHasher(time_cost=2, memory_cost=2048,
                                                       parallelism=1))
    assert stronger.authenticate("ann", PW) is not None
    with services.db.read() as s:
        from db import user_repo
        row = user_repo.get_user(s, name="ann")
    assert row is not None and "m=2048,t=2" in row.password_hash
    assert stronger.authenticate("ann", PW) is not None


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN])
def test_only_admins_change_users(services: Services, users: UserService, role: Role) -> None:
    _with_admin_and_author(users)
    actor = Principal("someone", role)
    before = (users.list_all(), len(_events(services)))
    attempts = [
        lambda: users.add("cy", "viewer", PW, actor=actor),
        lambda: users.set_role("bob", "admin", actor=actor),
        lambda: users.set_password("bob", "new password 1", actor=actor),
        lambda: users.set_disabled("bob", True, actor=actor),
        lambda: users.remove("bob", actor=actor),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDeniedError, match="may not manage users"):
            attempt()
    assert (users.list_all(), len(_events(services))) == before
    assert users.authenticate("bob", PW) is not None


def test_everyone_may_change_their_own_password(users: UserService) -> None:
    _with_admin_and_author(users)
    users.set_password("bob", "my new password", actor=Principal("bob", Role.AUTHOR))
    assert users.authenticate("bob", "my new password") is not None
    assert users.authenticate("bob", PW) is None


def test_the_last_admin_stays(services: Services, users: UserService) -> None:
    _with_admin_and_author(users)
    for attempt, what in [(lambda: users.remove("ann", actor=ROOT), "remove"),
                          (lambda: users.set_role("ann", "viewer", actor=ROOT), "change"),
                          (lambda: users.set_disabled("ann", True, actor=ROOT), "disable")]:
        with pytest.raises(ValidationError, match=f"Cannot {what}.*last admin"):
            attempt()
    users.add("cy", "admin", PW, actor=ROOT)
    users.set_disabled("cy", True, actor=ROOT)  # a disabled admin does not count
    with pytest.raises(ValidationError, match="last admin"):
        users.remove("ann", actor=ROOT)
    users.set_disabled("cy", False, actor=ROOT)
    users.set_role("ann", "viewer", actor=ROOT)
    assert users.get("ann") is not None and users.get("ann").role is Role.VIEWER  # type: ignore[union-attr]
    removed = users.remove("ann", actor=ROOT)
    assert removed.name == "ann" and users.get("ann") is None
    assert [e.action for e in _events(services)][-4:] == ["user.disable", "user.enable",
                                                          "user.role", "user.remove"]
    role_event = json.loads(_events(services)[-2].payload)
    assert role_event == {"name": "ann", "old_role": "admin", "role": "viewer"}


def test_bad_input_is_refused(users: UserService) -> None:
    users.add("ann", "admin", PW, actor=ROOT)
    with pytest.raises(ValidationError, match="not a valid user name"):
        users.add("bad name", "viewer", PW, actor=ROOT)
    with pytest.raises(ValidationError, match="not a valid user name"):
        users.add("<b>x</b>", "viewer", PW, actor=ROOT)
    with pytest.raises(ValidationError, match="at least 8"):
        users.add("cy", "viewer", "short", actor=ROOT)
    with pytest.raises(ValidationError, match="must not be the user name"):
        users.add("cyrus123", "viewer", "CYRUS123", actor=ROOT)
    with pytest.raises(ValidationError, match="Unknown role 'boss'"):
        users.add("cy", "boss", PW, actor=ROOT)
    with pytest.raises(ConflictError, match="exists already"):
        users.add("ANN", "viewer", PW, actor=ROOT)
    with pytest.raises(NotFoundError, match="No user named zed"):
        users.set_role("zed", "viewer", actor=ROOT)
    assert [u.name for u in users.list_all()] == ["ann"]


def test_repeated_wrong_passwords_lock_the_name_for_a_while(services: Services) -> None:
    now = [1000.0]
    users = UserService(services.db, FAST, clock=lambda: now[0])
    _with_admin_and_author(users)
    for _ in range(10):
        assert users.authenticate("bob", "wrong password") is None
    assert users.authenticate("bob", PW) is None  # locked: not even the right one passes
    assert users.authenticate("ann", PW) is not None  # other names are not affected
    now[0] += 301
    assert users.authenticate("bob", PW) is not None
    for _ in range(9):
        users.authenticate("bob", "wrong password")
    assert users.authenticate("bob", PW) is not None  # a success clears the count
    for _ in range(9):
        users.authenticate("bob", "wrong password")
    assert users.authenticate("bob", PW) is not None
