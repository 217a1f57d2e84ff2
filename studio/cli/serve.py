"""``cstudio serve``, ``cstudio worker`` and ``cstudio db upgrade``: the long-running processes
and the schema. Gradio is imported only inside ``serve``, so the other commands start fast."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from backend.access import local_admin
from backend.errors import StudioError
from backend.heap import settle_heap
from backend.services.container import Services, build_services, start
from backend.threads import apply_torch_threads
from studio.cli.common import DataDir, DbUrl, make_settings, out

if TYPE_CHECKING:
    from backend.jobs.worker import Worker as JobWorker

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    worker: Annotated[bool | None, typer.Option(
        "--worker/--no-worker", help="Also run a training-job worker in this process "
        "(default: $CSTUDIO_EMBEDDED_WORKER, on).")] = None,
) -> None:
    """Start the studio in the browser."""
    settings = make_settings(data_dir, database_url, host=host, port=port,
                             embedded_worker=worker)
    services = start(settings)
    apply_torch_threads(settings.torch_threads)
    if not settings.binds_locally and not services.users.any_users():
        services.close()
        raise StudioError(
            f"Refusing to bind to {settings.host}: sign-in is not configured, so anyone on the "
            "network could edit constitutions. Add an admin first (`cstudio user add NAME "
            "--role admin`; sign-in is then required), or bind to 127.0.0.1 (the default)."
        )
    # Load the model in the background so the page opens at once; the header says when it is in.
    threading.Thread(target=services.engines.health, name="engine-warm-up", daemon=True).start()
    # Runs left running are resumed by the process owner (recorded under settings.user).
    resumed = services.evaluations.resume_unfinished(actor=local_admin(settings.user))
    if resumed:
        out.print(f"Resuming evaluation runs {resumed} where they stopped.")
    compared = services.comparisons.resume_unfinished(actor=local_admin(settings.user))
    if compared:
        out.print(f"Resuming comparisons {compared} where they stopped.")
    from studio.app import build_app, launch  # gradio loads only for this command

    out.print(f"Constitution Studio on http://{settings.host}:{settings.port}  "
              f"(database: {services.db.dialect}, data: {settings.data_dir})")
    signed = "sign-in required" if services.users.any_users() else "single local user"
    out.print(f"Access: {signed}.")
    job_worker = _embedded_worker(services)
    app = build_app(settings, services)
    settle_heap()  # what start-up built stays: out of the garbage collector's walks
    try:
        launch(app, settings, services=services)
    finally:
        if job_worker is not None:
            job_worker.stop(timeout=settings.job_cancel_grace_s + 20)


def _embedded_worker(services: Services) -> JobWorker | None:
    """The job worker `cstudio serve` runs in a thread (unless --no-worker)."""
    if not services.settings.embedded_worker:
        return None
    from backend.jobs.worker import Worker

    job_worker = Worker(services.settings, services.db)
    job_worker.start_thread()
    out.print(f"Training jobs run in this process (worker {job_worker.name}); start more with "
              "`cstudio worker`.", markup=False)
    return job_worker


def worker(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    once: Annotated[bool, typer.Option("--once", help="Run the oldest queued job (if any), "
                                       "then exit.")] = False,
) -> None:
    """Run queued training jobs. Ctrl-C or SIGTERM stops it; a job it was running is marked
    interrupted and can be resumed from its last checkpoint."""
    import signal

    from backend.jobs.worker import Worker

    settings = make_settings(data_dir, database_url)
    services = build_services(settings)
    apply_torch_threads(settings.torch_threads)
    job_worker = Worker(settings, services.db)
    if once:
        job_id = job_worker.run_one()
        out.print("No queued job." if job_id is None else
                  f"Job {job_id}: {services.jobs.get(job_id).status}", markup=False)
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: job_worker.stop())
    out.print(f"Worker {job_worker.name} waiting for jobs (database: {services.db.dialect}, "
              f"data: {settings.data_dir}).", markup=False)
    job_worker.run_forever()


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Migrate the database to the newest schema."""
    from db import migrate

    services = build_services(make_settings(data_dir, database_url), upgrade=False)
    before = migrate.current_revision(services.db)
    migrate.upgrade(services.db)
    out.print(f"Database schema: {before or 'empty'} → {migrate.current_revision(services.db)}")
