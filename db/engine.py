"""Engine and session factory. Nothing here runs at import time; callers pass the URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_CACHE_KIB = 32_768
SQLITE_CHECKPOINT_PAGES = 10_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) issue BEGIN itself, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        # A writer's page cache of 32 MiB (SQLite's default is 2 MiB) keeps the log's indexes
        # and search index in memory through an agreement run's chunk, and a checkpoint every
        # 10,000 WAL pages (~40 MiB; default 1,000) copies a page changed by many commits once:
        # together +12 % verdicts/s (bench_eval_throughput, docs/benchmarks.md). The cache
        # is allocated as pages are used; durability is unchanged (FULL sync on each commit).
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cur.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers BEGIN IMMEDIATE: they queue on the write lock (busy_timeout) instead of
        # failing with "database is locked" when two upgrade a read lock at once.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# values json.dumps refuses (datetimes, dataclasses) or writes differently (subclasses) go to
# json.dumps too, so they fail or store as they did
_STRICT = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_PASSTHROUGH_SUBCLASS)


def json_text(value: Any) -> str:
    """A JSON column's stored text: orjson's (several times faster than ``json.dumps``; an
    agreement run writes five JSON values per verdict) when it reads back the same, else
    ``json.dumps``'s. orjson writes NaN and infinities as null and refuses non-string keys and
    integers beyond 64 bits, so a text with a null in it, or a value orjson refuses, is written
    by ``json.dumps`` (as before). Any valid JSON text reads back to the same values."""
    try:
        text = orjson.dumps(value, option=_STRICT)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)
    return json.dumps(value) if b"null" in text else text.decode()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False},
                               json_serializer=json_text)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


class Database:
    """Owns one engine and hands out read and write sessions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        # (before commit -> changed?, after commit), set by db.anchor.protect
        self.hooks: tuple[Callable[[Session], bool], Callable[[Session], None]] | None = None

    @property
    def write_engine(self) -> Engine:
        return self._write_engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        hooks = self.hooks
        changed = False
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session
            if hooks is not None:
                changed = hooks[0](session)
        if changed and hooks is not None:
            with self.read() as session:
                hooks[1](session)

    def dispose(self) -> None:
        self.engine.dispose()
