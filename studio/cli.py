"""The ``cstudio`` command: builds Settings once, wires the services, runs what was asked.

It lives in ``studio`` because ``serve`` starts the UI; the UI itself (gradio) is imported
only inside ``serve`` so the other commands start fast.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError as SettingsError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from backend.access import Principal, local_admin
from backend.errors import PermissionDeniedError, StudioError
from backend.services.constitution_io import ExportFormat
from backend.services.container import Services, build_services, start
from backend.services.datasets import import_report
from backend.settings import Settings
from backend.threads import apply_torch_threads

if TYPE_CHECKING:
    from backend.jobs.worker import Worker as JobWorker

app = typer.Typer(help="Constitution Studio: write, test and train on AI constitutions.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
constitution_app = typer.Typer(help="List, show, import, export and diff constitutions.",
                               no_args_is_help=True)
audit_app = typer.Typer(help="Verify and export the audit trail.", no_args_is_help=True)
dataset_app = typer.Typer(help="Import and list human-labelled pair datasets.",
                          no_args_is_help=True)
eval_app = typer.Typer(help="Agreement runs: AI verdicts against human labels.",
                       no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(constitution_app, name="constitution")
app.add_typer(audit_app, name="audit")
app.add_typer(dataset_app, name="dataset")
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory "
                                              "(default: $CSTUDIO_DATA_DIR or ~/.local/share).")]
DbUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: "
                                           "$DATABASE_URL or SQLite in the data directory).")]


def make_settings(data_dir: Path | None = None, database_url: str | None = None,
                  **overrides: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    try:
        settings = Settings(**values)
    except SettingsError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudioError(f"Invalid setting: {problems}") from exc
    _private_data_dir(settings)
    return settings


def _private_data_dir(settings: Settings) -> None:
    """Data directory 0700, new files 0600; warn once if something in it is wider."""
    from backend.services.private_files import make_private, warning_for

    try:
        make_private(settings.data_dir)
    except OSError as exc:
        raise StudioError(f"Cannot create the data directory {settings.data_dir}: "
                          f"{exc.strerror}. Set CSTUDIO_DATA_DIR to a folder you own.") from exc
    warning = warning_for(settings.data_dir)
    if warning:
        err.print(warning, markup=False, highlight=False, soft_wrap=True)


def _services(data_dir: Path | None, database_url: str | None) -> Services:
    return start(make_settings(data_dir, database_url))


def cli_actor(services: Services) -> Principal:
    """Who a CLI command acts as: the local user (CSTUDIO_USER, default $USER) as admin while
    no users exist; once users exist, the studio user of that name, with that user's role."""
    name = services.settings.user
    if not services.users.any_users():
        return local_admin(name)
    found = services.users.active_principal(name)
    if found is None:
        raise PermissionDeniedError(
            f"Users are configured and {name!r} is not an active one, so this command may not "
            "change anything. Run it as your studio user: CSTUDIO_USER=NAME cstudio ...")
    return found


@app.command()
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
    try:
        launch(build_app(settings, services), settings, services=services)
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


@app.command()
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


@constitution_app.command("list")
def constitution_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List constitutions with their head version."""
    services = _services(data_dir, database_url)
    table = Table("id", "name", "head", "content hash", "saved by", "saved at")
    for c in services.constitutions.list_all():
        table.add_row(str(c.id), c.name, c.head.label, c.head.content_hash[:12], c.head.author,
                      c.head.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@constitution_app.command("show")
def constitution_show(
    name: Annotated[str, typer.Argument(help="Constitution name or id.")],
    version: Annotated[int | None, typer.Option(help="Version number (default: head).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Print one version as YAML."""
    services = _services(data_dir, database_url)
    summary = services.constitutions.find(name)
    number = version or summary.head.number
    detail = services.constitutions.version_by_number(summary.id, number)
    exported = services.constitution_io.export(detail.info.id, "yaml")
    sys.stdout.write(exported.data.decode("utf-8"))


@constitution_app.command("import")
def constitution_import(
    paths: Annotated[list[Path], typer.Argument(help="A .yaml/.json file, the paper's JSON "
                                                "files, or a folder holding them.")],
    name: Annotated[str | None, typer.Option(help="Name for the new constitution.")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import a constitution file (or the paper's files) as a new constitution."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".json"
                                and p.name in _paper_names()))
        else:
            files.append(path)
    if not files:
        raise StudioError("No importable files found; give a .yaml/.json file or the paper's "
                          "JSON files.")
    services = _services(data_dir, database_url)
    limit = services.settings.max_import_bytes
    loaded = []
    for f in files:
        if not f.is_file():
            raise StudioError(f"{f} does not exist or is not a file.")
        if f.stat().st_size > limit:
            raise StudioError(f"{f} is {f.stat().st_size:,} bytes; the import limit is "
                              f"{limit:,} bytes (CSTUDIO_MAX_IMPORT_BYTES).")
        loaded.append((f.name, f.read_bytes()))
    detail = services.constitution_io.import_files(loaded, actor=cli_actor(services),
                                                   name=name)
    out.print(f"Imported {detail.constitution.name!r}: {len(detail.content.principles)} "
              f"principles, {len(detail.content.few_shots)} few-shot examples, "
              f"content hash {detail.info.content_hash}")


def _paper_names() -> set[str]:
    from backend.cai import formats

    return {formats.PAPER_CRITIQUES, formats.PAPER_CHOICES, *formats.PAPER_FEW_SHOT_FILES}


@constitution_app.command("export")
def constitution_export(
    name: Annotated[str, typer.Argument(help="Constitution name or id.")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write (a folder for "
                                           "--format paper).")],
    fmt: Annotated[str, typer.Option("--format", help="yaml, json or paper.")] = "yaml",
    version: Annotated[int | None, typer.Option(help="Version number (default: head).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Export a version in the studio's format or as the paper's files."""
    if fmt not in ("yaml", "json", "paper"):
        raise StudioError(f"Unknown format {fmt!r}; use yaml, json or paper.")
    services = _services(data_dir, database_url)
    summary = services.constitutions.find(name)
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    if fmt == "paper":
        out_path.mkdir(parents=True, exist_ok=True)
        for filename, body in services.constitution_io.paper_files(detail.info.id).items():
            (out_path / filename).write_text(body, encoding="utf-8")
        out.print(f"Wrote the paper's files for {summary.name} v{detail.info.number} to "
                  f"{out_path}/")
        return
    fmt_typed: ExportFormat = "yaml" if fmt == "yaml" else "json"
    exported = services.constitution_io.export(detail.info.id, fmt_typed)
    out_path.write_bytes(exported.data)
    out.print(f"Wrote {summary.name} v{detail.info.number} to {out_path}")


@constitution_app.command("diff")
def constitution_diff(
    name: Annotated[str, typer.Argument(help="Constitution name or id.")],
    old: Annotated[int, typer.Argument(help="Old version number.")],
    new: Annotated[int, typer.Argument(help="New version number.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Show what changed between two versions, principle by principle."""
    services = _services(data_dir, database_url)
    summary = services.constitutions.find(name)
    a = services.constitutions.version_by_number(summary.id, old)
    b = services.constitutions.version_by_number(summary.id, new)
    diff = services.constitutions.diff(a.info.id, b.info.id)
    if diff.is_empty:
        out.print(f"v{old} and v{new} have the same content.")
        return
    for change in diff.changes:
        where = change.new_position or change.old_position
        out.print(f"[bold]{change.kind.upper()}[/bold] #{where} {escape(change.key)}: "
                  f"{escape(change.title)}", markup=True, highlight=False)
        for f in change.fields:
            out.print(f.unified() or f"- {f.old}\n+ {f.new}", markup=False, highlight=False)
    if diff.few_shots_changed:
        out.print("Few-shot examples changed.")


@audit_app.command("verify")
def audit_verify(
    export: Annotated[Path | None, typer.Option(
        "--export", help="Also verify an evidence export folder against its manifest and the "
        "database.")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Verify the audit hash chain, every sealed record, version content hashes and
    critique-log record hashes, and the chain heads anchored outside the database; name the
    first broken link. Read-only: it never seals anything."""
    services = build_services(make_settings(data_dir, database_url))
    report = services.audit.verify()
    failed = not report.ok
    if report.ok:
        out.print(f"OK: {report.events_checked} audit events, {report.rows_checked} sealed "
                  f"rows, {report.versions_checked} versions and {report.records_checked} "
                  f"critique-log records verified against {report.anchors_checked} anchored "
                  f"heads; chain head {report.head_hash}; seal head {report.seal_head}",
                  markup=False, highlight=False)
        if report.unsealed:
            out.print(f"Not sealed (written before rows were sealed as they are written): "
                      f"{report.unsealed}", markup=False, highlight=False)
    else:
        err.print(f"FIRST BROKEN LINK: {report.first_broken}", markup=False, highlight=False)
        for problem in report.problems[1:]:
            err.print(f"BROKEN: {problem}", markup=False, highlight=False)
    if export is not None:
        check = services.evidence.verify(export)
        if check.ok:
            out.print(f"OK: export {export}: files match the manifest and all "
                      f"{check.records_checked} records match the database", markup=False,
                      highlight=False)
        else:
            failed = True
            for problem in check.problems:
                err.print(f"EXPORT BROKEN: {problem}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (must be new or "
                                          "empty); a .zip of it is written beside it.")],
    query: Annotated[str, typer.Option(help="Full-text search (words, \"phrases\", "
                                       "prefix*).")] = "",
    version_id: Annotated[int | None, typer.Option(help="Constitution version id.")] = None,
    principle: Annotated[str | None, typer.Option(help="Principle key.")] = None,
    kind: Annotated[str | None, typer.Option(help="response, critique, revision, cot or "
                                             "verdict.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name.")] = None,
    evaluation: Annotated[int | None, typer.Option(help="Evaluation (run) id.")] = None,
    flagged: Annotated[bool, typer.Option(help="Only flagged records.")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Export a filtered selection of the critique log as JSONL + CSV with a manifest."""
    from db.audit_search_repo import SearchFilters

    services = _services(data_dir, database_url)
    filters = SearchFilters(query=query, version_id=version_id, principle_key=principle,
                            kind=kind, model=model, evaluation_id=evaluation, flagged=flagged)
    result = services.evidence.export(filters, actor=cli_actor(services), directory=out_dir)
    out.print(f"Exported {result.count} records to {result.directory} ({result.archive.name}); "
              f"manifest sha256s: " + ", ".join(
                  f"{k} {v['sha256'][:12]}" for k, v in result.manifest["files"].items()),
              markup=False, highlight=False)


@dataset_app.command("import")
def dataset_import(
    path: Annotated[Path, typer.Argument(help="The pairs file.")],
    fmt: Annotated[str, typer.Option("--format", help="hh_rlhf, hhh_eval, harmful_vs_ethical, "
                                     "jsonl or csv.")] = "hh_rlhf",
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name).")
                    ] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="For jsonl/csv: FIELD=COLUMN for prompt, response_a, response_b, "
        "label (repeat the option).")] = None,
    label_values: Annotated[str | None, typer.Option(
        "--label-values", help="For jsonl/csv: what the label column's values mean, e.g. "
        "'1=A, 2=B, 0=tie' (needed for 0/1 labels).")] = None,
    swap_seed: Annotated[int, typer.Option(help="Seed for which side is shown as A.")] = 0,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import a file of human-labelled preference pairs."""
    mapping: dict[str, str] | None = None
    if column:
        mapping = {}
        for item in column:
            field, sep, col = item.partition("=")
            if not sep or not field or not col:
                raise StudioError(f"--column {item!r}: write FIELD=COLUMN, e.g. prompt=question")
            mapping[field.strip()] = col.strip()
    if label_values:
        if mapping is None:
            raise StudioError("--label-values goes with --column (the jsonl/csv formats).")
        mapping["label_values"] = label_values
    if not path.is_file():
        raise StudioError(f"{path} does not exist or is not a file.")
    services = _services(data_dir, database_url)
    info = services.datasets.import_file(path.name, read_bounded(
                                             path, services.settings.max_dataset_bytes,
                                             "CSTUDIO_MAX_DATASET_BYTES"), fmt,
                                         actor=cli_actor(services), name=name,
                                         mapping=mapping, swap_seed=swap_seed)
    out.print(f"Imported dataset {info.id} {info.name!r}: {import_report(info)} "
              f"sha256 {info.source_sha256}", markup=False, highlight=False)


@dataset_app.command("import-hub")
def dataset_import_hub(
    repo_id: Annotated[str, typer.Argument(help="Hub dataset, e.g. Anthropic/hh-rlhf.")],
    hub_data_dir: Annotated[str | None, typer.Option(
        "--hub-data-dir", help="Subset folder, e.g. harmless-base.")] = None,
    split: str = "test",
    limit: Annotated[int | None, typer.Option(help="Import at most N pairs.")] = None,
    name: str | None = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import HH-RLHF-style pairs from the Hugging Face Hub (needs network and the train
    extra)."""
    services = _services(data_dir, database_url)
    info = services.datasets.import_hub(repo_id, actor=cli_actor(services),
                                        data_dir=hub_data_dir, split=split, name=name,
                                        limit=limit)
    out.print(f"Imported dataset {info.id} {info.name!r}: {import_report(info)}",
              markup=False, highlight=False)


@dataset_app.command("list")
def dataset_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List datasets."""
    services = _services(data_dir, database_url)
    table = Table("id", "name", "format", "items", "duplicates", "sha256")
    for d in services.datasets.list_all():
        table.add_row(str(d.id), escape(d.name), d.source_format, str(d.item_count),
                      str(d.skipped_duplicates), d.source_sha256[:12])
    out.print(table)


@eval_app.command("create")
def eval_create(
    dataset: Annotated[int, typer.Argument(help="Dataset id.")],
    constitution: Annotated[str, typer.Argument(help="Constitution name or id.")],
    version: Annotated[int | None, typer.Option(help="Version number (default: head).")] = None,
    sample: Annotated[int | None, typer.Option(help="Judge a seeded sample of N pairs.")
                      ] = None,
    seed: int = 0,
    cot: bool = False,
    both_orders: Annotated[bool, typer.Option("--both-orders/--one-order")] = True,
    k: Annotated[int, typer.Option(help="Principles per verdict.")] = 1,
    batch_size: int = 32,
    few_shots: Annotated[bool, typer.Option(
        "--few-shots/--no-few-shots", help="The constitution's labelling examples.")] = True,
    form: Annotated[str, typer.Option(help="Prompt form: chat (the model's chat template) or "
                                           "raw (Human:/Assistant: text).")] = "chat",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an agreement run (then `cstudio eval run ID`, or start it in the studio)."""
    from backend.services.evaluations import EvaluationConfig

    if form not in ("chat", "raw"):
        raise typer.BadParameter("must be chat or raw", param_hint="--form")
    services = _services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    config = EvaluationConfig(sample_size=sample, seed=seed, cot=cot, both_orders=both_orders,
                              k_principles=k, batch_size=batch_size, use_few_shots=few_shots,
                              form=form)
    info = services.evaluations.create(dataset_id=dataset, version_id=detail.info.id,
                                       config=config, actor=cli_actor(services))
    out.print(f"Created run {info.id}: {info.total_count} pairs", markup=False)


@eval_app.command("run")
def eval_run(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Judge the items of a run that have no verdict yet (resumes where it stopped)."""
    services = _services(data_dir, database_url)
    apply_torch_threads(services.settings.torch_threads)
    info = services.evaluations.run(
        run_id, actor=cli_actor(services),
        on_chunk=lambda done, total: out.print(f"{done}/{total}", markup=False))
    out.print(f"Run {info.id}: {info.status}, {info.done_count}/{info.total_count}",
              markup=False)
    unscorable = services.evaluations.unscorable(run_id)
    if unscorable:
        out.print(f"{len(unscorable)} item(s) could not be scored and have no verdict (first: "
                  f"item {unscorable[0].item_id}: {unscorable[0].reason}; top tokens "
                  f"{unscorable[0].top_tokens}).", markup=False)


@eval_app.command("report")
def eval_report(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Print agreement metrics with bootstrap intervals."""
    from studio.agreement_charts import metrics_table

    services = _services(data_dir, database_url)
    out.print(metrics_table(services.agreement.report(run_id)), markup=False, highlight=False)


# `cstudio user ...` lives in its own module; it uses the helpers above, so it is imported here.
from studio.cli_users import user_app  # noqa: E402

app.add_typer(user_app, name="user")

from studio.cli_prompts import prompts_app  # noqa: E402

app.add_typer(prompts_app, name="prompts")

from studio.cli_compare import compare_app  # noqa: E402

app.add_typer(compare_app, name="compare")

from studio.cli_jobs import job_app  # noqa: E402

app.add_typer(job_app, name="job")

from studio.cli_ci import alias_app, eval_compare, golden_app  # noqa: E402

app.add_typer(alias_app, name="alias")
app.add_typer(golden_app, name="golden")
eval_app.command("compare")(eval_compare)

from studio.cli_backup import backup as _backup_cmd  # noqa: E402
from studio.cli_backup import restore as _restore_cmd  # noqa: E402

app.command("backup")(_backup_cmd)
app.command("restore")(_restore_cmd)


def read_bounded(path: Path, limit: int, setting: str) -> bytes:
    """The file's bytes, refused by its size before anything is read, and read in chunks that
    stop at ``limit`` (a file that grows meanwhile is refused too)."""
    size = path.stat().st_size
    too_big = StudioError(f"{path.name} is {size:,} bytes; the import limit is {limit:,} bytes "
                          f"({setting}). Split the file or import a part of it.")
    if size > limit:
        raise too_big
    chunks: list[bytes] = []
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
    return b"".join(chunks)


def disk_full_line(exc: BaseException) -> str | None:
    """One line for a full disk (OSError ENOSPC, or SQLite's 'database or disk is full')."""
    import errno

    where = None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = exc.filename
    elif "database or disk is full" in str(exc):
        where = "the database file"
    else:
        return None
    data_dir = os.environ.get("CSTUDIO_DATA_DIR") or "the data directory"
    return (f"Error: no space left on the disk holding {where or data_dir}; nothing was "
            "stored (the change was rolled back and the store is intact). Free some space and "
            "run the command again.")


def main() -> None:
    """Console-script entry: typed studio errors become one clear line, not a stack trace."""
    os.umask(0o077)  # every file the studio writes is private to its account
    try:
        app()
    except StudioError as exc:
        err.print(f"Error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except Exception as exc:
        line = disk_full_line(exc)
        if line is None:
            raise
        err.print(line, markup=False, highlight=False, soft_wrap=True)
        sys.exit(3)
