"""Several workers on one PostgreSQL queue (on several hosts in production: here separate
processes, each with its own connection pool) never take the same job twice; a claim passes
over a job another transaction is claiming instead of waiting for it (FOR UPDATE SKIP
LOCKED)."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlmodel import select

from db import job_repo, migrate
from db.engine import Database
from db.job_models import Job
from tests.databases import on_postgres

pytestmark = pytest.mark.skipif(
    not on_postgres(), reason="needs PostgreSQL (row locks): set CSTUDIO_TEST_DATABASE_URL, "
    "e.g. from `.ci/postgres up`; SQLite serialises writers and has its own claim test")


def _queue(db: Database, n: int) -> set[int]:
    ids = set()
    with db.write() as s:
        for i in range(n):
            row = job_repo.create_job(s, kind="fake", status="queued", config={"i": i},
                                      created_by="tester", artifact_dir="")
            assert row.id is not None
            ids.add(row.id)
    return ids


def _worker(url: str, name: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    db = Database(url)
    claimed = []
    try:
        while True:
            with db.write() as s:
                job = job_repo.claim_next(s, worker=name)
                if job is None:
                    break
                assert job.worker == name and job.status == "running"
                claimed.append(int(job.id or 0))
    finally:
        db.dispose()
        out.put((name, claimed))


def test_three_worker_processes_claim_twelve_jobs_once_each(database_url: str):
    db = Database(database_url)
    migrate.upgrade(db)
    ids = _queue(db, 12)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(database_url, f"host{i}", out))
             for i in range(3)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    claimed = [j for jobs in results.values() for j in jobs]
    assert sorted(claimed) == sorted(ids)  # every job exactly once
    with db.read() as s:
        rows = job_repo.list_jobs(s, limit=100)
        assert {r.status for r in rows} == {"running"}
        assert {r.id: r.worker for r in rows} == {j: w for w, js in results.items() for j in js}
    db.dispose()


def test_a_claim_skips_a_job_another_transaction_holds(database_url: str):
    from sqlalchemy import text

    db = Database(database_url)
    migrate.upgrade(db)
    first, second = sorted(_queue(db, 2))
    with db.write() as holder:  # another worker is mid-claim on the oldest job
        held = holder.exec(select(Job).where(Job.id == first)
                           .with_for_update()).one()
        assert held.id == first
        with db.write() as s:
            # without SKIP LOCKED this claim would wait for the holder: fail fast instead
            s.connection().execute(text("SET LOCAL lock_timeout = '3s'"))
            job = job_repo.claim_next(s, worker="other")
            assert job is not None and job.id == second
    db.dispose()
