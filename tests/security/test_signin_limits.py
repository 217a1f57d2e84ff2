"""Issue 13 point 5: sign-in cannot be used to bloat memory or unlock accounts in bulk."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher

from backend.access import local_admin
from backend.services import users as users_module
from backend.services.container import Services
from backend.services.users import MAX_FAILURES, UserService
from tests.asyncio_helpers import run_coroutine

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ROOT = local_admin("owner")


@pytest.fixture
def users(services: Services) -> UserService:
    svc = UserService(services.db, FAST)
    svc.add("alice", "admin", "alice password 1", actor=ROOT)
    return svc


def _lock(users: UserService, name: str) -> None:
    for _ in range(MAX_FAILURES):
        assert users.authenticate(name, "wrong password") is None


def test_a_huge_name_is_refused_unchecked_and_not_kept(users: UserService) -> None:
    assert users.authenticate("x" * 1_000_000, "whatever") is None
    assert users.tracked_names() == 0


def test_failures_are_kept_by_a_hash_of_the_name(users: UserService) -> None:
    users.authenticate("mallory-long-name", "wrong")
    keys = list(users._failures)
    assert keys and all("mallory" not in k and len(k) == 32 for k in keys)


def test_many_made_up_names_never_unlock_a_locked_account(users: UserService,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(users_module, "FAILURE_ENTRIES", 20)
    _lock(users, "alice")
    assert users.authenticate("alice", "alice password 1") is None  # locked
    for i in range(200):
        users.authenticate(f"made-up-{i}", "wrong")
    assert users.tracked_names() <= 20
    assert users.authenticate("alice", "alice password 1") is None  # still locked


def test_the_hash_runs_off_the_event_loop_in_a_bounded_pool(users: UserService) -> None:
    threads: list[str] = []
    original = users.authenticate

    def spy(name: str, password: str) -> object:
        threads.append(threading.current_thread().name)
        return original(name, password)

    users.authenticate = spy  # type: ignore[method-assign]
    found = run_coroutine(users.authenticate_async("alice", "alice password 1"))
    assert found is not None and found.name == "alice"
    assert threads and threads[0].startswith("sign-in")


def test_sign_ins_beyond_the_queue_are_refused_at_once(users: UserService,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_pending", threading.BoundedSemaphore(1))
    users._pending.acquire()
    assert run_coroutine(users.authenticate_async("alice", "alice password 1")) is None
    users._pending.release()
    assert run_coroutine(users.authenticate_async("alice", "alice password 1")) is not None
