"""Users and roles: add, change, remove and list users, and check passwords at sign-in.

Passwords are hashed with argon2id (memory-hard; argon2-cffi's RFC 9106 low-memory profile by
default: 64 MiB, 3 passes). Changes need ``Action.MANAGE_USERS`` (admins), except that a user
may change their own password. Every change appends an audit event in the same transaction;
events name the user and the role, never the password or its hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session

from backend.access import Action, Principal, Role, require
from backend.errors import ConflictError, NotFoundError, ValidationError
from db import user_repo as repo
from db.audit_chain import append_event
from db.engine import Database
from db.user_models import UserAccount

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# Sign-in throttle: after this many wrong passwords for one name within the window, further
# attempts for that name are refused unchecked until the oldest failure leaves the window.
MAX_FAILURES = 10
FAILURE_WINDOW_S = 300.0
# Sign-in cannot stall or bloat the server (issue 13 point 5): names longer than any valid
# name are refused unchecked; failures are kept per sha256 of the name in an LRU of at most
# FAILURE_ENTRIES names (a full table forgets the least recently failed name that is not
# locked, never a lockout); the memory-hard hash runs in HASH_WORKERS threads with at most
# HASH_QUEUE sign-ins waiting (more are refused at once: "busy").
MAX_NAME_INPUT = 64
FAILURE_ENTRIES = 10_000
HASH_WORKERS = 2
HASH_QUEUE = 16
HASH_NICE = 10


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: Role
    disabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(row: UserAccount) -> UserInfo:
        return UserInfo(row.name, Role(row.role), row.disabled, row.created_by, row.created_at,
                        row.updated_at)

    @property
    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role)


def normalize_name(name: str) -> str:
    """User names are case-insensitive: stored and compared lower-case."""
    return name.strip().lower()


def check_name(name: str) -> str:
    value = normalize_name(name)
    if not NAME_RE.fullmatch(value):
        raise ValidationError(
            f"{name!r} is not a valid user name: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit.")
    return value


def parse_role(role: str | Role) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise ValidationError(f"Unknown role {role!r}; use one of: "
                              + ", ".join(r.value for r in Role) + ".") from None


def check_password(password: str, name: str) -> None:
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"password: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        problems.append(f"password: use at most {MAX_PASSWORD} characters")
    if password.strip().lower() == name:
        problems.append("password: must not be the user name")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        problems.append("password: must not contain control characters")
    if problems:
        raise ValidationError("Password not accepted.", problems)


def _lower_priority() -> None:
    """Sign-in threads (and the hashing threads they start) yield the CPU to page requests:
    a raised nice value applies to this thread only on Linux."""
    # not Linux, or not permitted: run at normal priority
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


def _name_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class UserService:
    def __init__(self, db: Database, hasher: PasswordHasher | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._failures_lock = threading.Lock()
        self._dummy: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending = threading.BoundedSemaphore(HASH_WORKERS + HASH_QUEUE)

    def _dummy_hash(self) -> str:
        """Checked against when the name is unknown, so a wrong name costs as long as a wrong
        password (sign-in timing does not reveal which names exist). Made on first use."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("not a real password")
        return self._dummy

    # --- reading -------------------------------------------------------------------------------

    def any_users(self) -> bool:
        """True once a user exists: from then on the studio requires sign-in."""
        with self._db.read() as s:
            return repo.count_users(s) > 0

    def list_all(self) -> list[UserInfo]:
        with self._db.read() as s:
            return [UserInfo.of(r) for r in repo.list_users(s)]

    def get(self, name: str) -> UserInfo | None:
        with self._db.read() as s:
            row = repo.get_user(s, name=normalize_name(name))
            return UserInfo.of(row) if row else None

    def active_principal(self, name: str) -> Principal | None:
        """The Principal of an enabled user with this name, or None."""
        info = self.get(name)
        return info.principal if info is not None and not info.disabled else None

    def session_key(self, name: str) -> str | None:
        """The current session key of an enabled user (None: no such enabled user). It changes
        with the password, the role and the enabled state, and differs for a re-added name."""
        with self._db.read() as s:
            row = repo.get_user(s, name=normalize_name(name))
            return row.session_key if row is not None and not row.disabled else None

    async def authenticate_async(self, name: str, password: str) -> Principal | None:
        """``authenticate`` in the bounded hashing pool, so the event loop stays free; None at
        once when HASH_QUEUE sign-ins are already waiting."""
        if not self._pending.acquire(blocking=False):
            return None
        try:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="sign-in",
                                                initializer=_lower_priority)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self.authenticate, name, password)
        finally:
            self._pending.release()

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The user's Principal if the password is right and the user is enabled, else None."""
        if len(name) > MAX_NAME_INPUT * 2 or len(password) > MAX_PASSWORD:
            return None
        key = normalize_name(name)
        if len(key) > MAX_NAME_INPUT:
            return None
        if self._throttled(key):
            return None
        with self._db.read() as s:
            row = repo.get_user(s, name=key)
            stored = row.password_hash if row is not None else self._dummy_hash()
            role, disabled = (row.role, row.disabled) if row is not None else ("", True)
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self._failed(key)
            return None
        if row is None or disabled:
            return None
        with self._failures_lock:
            self._failures.pop(_name_digest(key), None)
        if self._hasher.check_needs_rehash(stored):  # cost parameters were raised since
            with self._db.write() as s:
                repo.update_user(s, name=key, password_hash=self._hasher.hash(password),
                                 end_sessions=False)
        return Principal(name=key, role=Role(role))

    def _recent(self, digest: str, now: float) -> deque[float] | None:
        recent = self._failures.get(digest)
        if recent is None:
            return None
        while recent and now - recent[0] > FAILURE_WINDOW_S:
            recent.popleft()
        return recent

    def _throttled(self, key: str) -> bool:
        with self._failures_lock:
            recent = self._recent(_name_digest(key), self._clock())
            return recent is not None and len(recent) >= MAX_FAILURES

    def _failed(self, key: str) -> None:
        digest, now = _name_digest(key), self._clock()
        with self._failures_lock:
            recent = self._recent(digest, now)
            if recent is None:
                if len(self._failures) >= FAILURE_ENTRIES and not self._forget_one(now):
                    return  # every tracked name is locked: keep them, do not track this one
                recent = self._failures[digest] = deque()
            recent.append(now)
            self._failures.move_to_end(digest)

    def _forget_one(self, now: float) -> bool:
        """Drop the least recently failed name that is not locked (never a lockout)."""
        for digest in self._failures:
            recent = self._recent(digest, now)
            if recent is None or len(recent) < MAX_FAILURES:
                del self._failures[digest]
                return True
        return False

    def tracked_names(self) -> int:
        with self._failures_lock:
            return len(self._failures)

    # --- changing ------------------------------------------------------------------------------

    def add(self, name: str, role: str | Role, password: str, *, actor: Principal) -> UserInfo:
        require(actor, Action.MANAGE_USERS)
        key, new_role = check_name(name), parse_role(role)
        check_password(password, key)
        with self._db.write() as s:
            if repo.count_users(s) == 0 and new_role is not Role.ADMIN:
                raise ValidationError(
                    "The first user must be an admin (otherwise no one could manage users once "
                    f"sign-in is on). Add {key} with role admin, or add an admin first.")
            if repo.get_user(s, name=key) is not None:
                raise ConflictError(f"A user named {key} exists already; pick another name, or "
                                    "change that user's role or password instead.")
            row = repo.add_user(s, name=key, role=new_role.value,
                                password_hash=self._hasher.hash(password),
                                created_by=actor.name)
            append_event(s, actor=actor.name, action="user.add", entity_type="user",
                         entity_id=key, payload={"name": key, "role": new_role.value})
            return UserInfo.of(row)

    def set_password(self, name: str, password: str, *, actor: Principal) -> UserInfo:
        """Admins may set anyone's password; every user may change their own."""
        key = normalize_name(name)
        if key != actor.name:
            require(actor, Action.MANAGE_USERS)
        check_password(password, key)
        with self._db.write() as s:
            row = repo.update_user(s, name=key, password_hash=self._hasher.hash(password))
            if row is None:
                raise NotFoundError(f"No user named {key}; `cstudio user list` shows them.")
            append_event(s, actor=actor.name, action="user.passwd", entity_type="user",
                         entity_id=key, payload={"name": key})
            return UserInfo.of(row)

    def set_role(self, name: str, role: str | Role, *, actor: Principal) -> UserInfo:
        require(actor, Action.MANAGE_USERS)
        key, new_role = normalize_name(name), parse_role(role)
        with self._db.write() as s:
            row = self._existing(s, key)
            if new_role is not Role.ADMIN:
                self._keep_an_admin(s, row, f"change {key}'s role")
            old = row.role
            repo.update_user(s, name=key, role=new_role.value)
            append_event(s, actor=actor.name, action="user.role", entity_type="user",
                         entity_id=key, payload={"name": key, "old_role": old,
                                                 "role": new_role.value})
            return UserInfo.of(row)

    def set_disabled(self, name: str, disabled: bool, *, actor: Principal) -> UserInfo:
        """A disabled user keeps their name and history but can no longer sign in."""
        require(actor, Action.MANAGE_USERS)
        key = normalize_name(name)
        with self._db.write() as s:
            row = self._existing(s, key)
            if disabled:
                self._keep_an_admin(s, row, f"disable {key}")
            repo.update_user(s, name=key, disabled=disabled)
            append_event(s, actor=actor.name, action="user.disable" if disabled
                         else "user.enable", entity_type="user", entity_id=key,
                         payload={"name": key})
            return UserInfo.of(row)

    def remove(self, name: str, *, actor: Principal) -> UserInfo:
        require(actor, Action.MANAGE_USERS)
        key = normalize_name(name)
        with self._db.write() as s:
            row = self._existing(s, key)
            self._keep_an_admin(s, row, f"remove {key}")
            info = UserInfo.of(row)
            repo.delete_user(s, name=key)
            append_event(s, actor=actor.name, action="user.remove", entity_type="user",
                         entity_id=key, payload={"name": key, "role": info.role.value})
            return info

    @staticmethod
    def _existing(s: Session, key: str) -> UserAccount:
        row = repo.get_user(s, name=key)
        if row is None:
            raise NotFoundError(f"No user named {key}; `cstudio user list` shows them.")
        return row

    @staticmethod
    def _keep_an_admin(s: Session, row: UserAccount, what: str) -> None:
        """Refuse a change that would leave no enabled admin (no one could manage users)."""
        if row.role != Role.ADMIN.value or row.disabled:
            return
        admins = repo.enabled_admin_names(s, lock=True)
        if admins == [row.name]:
            raise ValidationError(f"Cannot {what}: {row.name} is the last admin. Make another "
                                  "user an admin first.")

