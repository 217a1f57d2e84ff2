"""The ``cstudio`` command: builds Settings once, wires the services, runs what was asked.

It lives in ``studio`` because ``serve`` starts the UI; the UI itself (gradio) is imported
only inside ``serve`` so the other commands start fast.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError as SettingsError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from backend.errors import StudioError
from backend.services.constitution_io import ExportFormat
from backend.services.container import Services, build_services, start
from backend.settings import Settings

app = typer.Typer(help="Constitution Studio: write, test and train on AI constitutions.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
constitution_app = typer.Typer(help="List, show, import, export and diff constitutions.",
                               no_args_is_help=True)
audit_app = typer.Typer(help="Verify the audit trail.", no_args_is_help=True)
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
        return Settings(**values)
    except SettingsError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudioError(f"Invalid setting: {problems}") from exc


def _services(data_dir: Path | None, database_url: str | None) -> Services:
    return start(make_settings(data_dir, database_url))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Start the studio in the browser."""
    settings = make_settings(data_dir, database_url, host=host, port=port)
    if not settings.binds_locally:
        raise StudioError(
            f"Refusing to bind to {settings.host}: sign-in is not configured, so anyone on the "
            "network could edit constitutions. Bind to 127.0.0.1 (the default), or reach it "
            "through an authenticating reverse proxy that forwards to 127.0.0.1."
        )
    services = start(settings)
    # Load the model in the background so the page opens at once; the header says when it is in.
    threading.Thread(target=services.engines.health, name="engine-warm-up", daemon=True).start()
    resumed = services.evaluations.resume_unfinished(actor=settings.user)
    if resumed:
        out.print(f"Resuming evaluation runs {resumed} where they stopped.")
    from studio.app import build_app, launch  # gradio loads only for this command

    out.print(f"Constitution Studio on http://{settings.host}:{settings.port}  "
              f"(database: {services.db.dialect}, data: {settings.data_dir})")
    launch(build_app(settings, services), settings)


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
    detail = services.constitution_io.import_files(loaded, actor=services.settings.user,
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
def audit_verify(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Walk the audit hash chain and recheck every version's content hash."""
    services = build_services(make_settings(data_dir, database_url))
    report = services.audit.verify()
    if report.ok:
        out.print(f"OK: {report.events_checked} audit events and {report.versions_checked} "
                  f"versions verified; chain head {report.head_hash}")
        return
    for problem in report.problems:
        err.print(f"BROKEN: {problem}", markup=False, highlight=False)
    err.print(f"{report.events_checked} events verified before the first broken link.")
    raise typer.Exit(1)


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
    if not path.is_file():
        raise StudioError(f"{path} does not exist or is not a file.")
    services = _services(data_dir, database_url)
    info = services.datasets.import_file(path.name, path.read_bytes(), fmt,
                                         actor=services.settings.user, name=name,
                                         mapping=mapping, swap_seed=swap_seed)
    out.print(f"Imported dataset {info.id} {info.name!r}: {info.item_count} pairs, "
              f"{info.skipped_duplicates} duplicates skipped, sha256 {info.source_sha256}",
              markup=False, highlight=False)


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
    info = services.datasets.import_hub(repo_id, actor=services.settings.user,
                                        data_dir=hub_data_dir, split=split, name=name,
                                        limit=limit)
    out.print(f"Imported dataset {info.id} {info.name!r}: {info.item_count} pairs",
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
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an agreement run (then `cstudio eval run ID`, or start it in the studio)."""
    from backend.services.evaluations import EvaluationConfig

    services = _services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    config = EvaluationConfig(sample_size=sample, seed=seed, cot=cot, both_orders=both_orders,
                              k_principles=k, batch_size=batch_size)
    info = services.evaluations.create(dataset_id=dataset, version_id=detail.info.id,
                                       config=config, actor=services.settings.user)
    out.print(f"Created run {info.id}: {info.total_count} pairs", markup=False)


@eval_app.command("run")
def eval_run(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Judge the items of a run that have no verdict yet (resumes where it stopped)."""
    services = _services(data_dir, database_url)
    info = services.evaluations.run(
        run_id, actor=services.settings.user,
        on_chunk=lambda done, total: out.print(f"{done}/{total}", markup=False))
    out.print(f"Run {info.id}: {info.status}, {info.done_count}/{info.total_count}",
              markup=False)


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


def main() -> None:
    """Console-script entry: typed studio errors become one clear line, not a stack trace."""
    try:
        app()
    except StudioError as exc:
        err.print(f"Error: {exc}", markup=False, highlight=False)
        sys.exit(2)
