"""``cstudio job submit|list|show|logs|cancel|resume``: the Training tab's jobs from the command
line, validated by the same stage registry (backend/services/jobs.py). A config is a YAML (or
JSON) file, ``--set field=value`` flags (values read as YAML: numbers, booleans, lists), or
both (flags win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from backend.errors import StudioError, ValidationError
from studio.cli.common import DataDir, DbUrl, cli_actor, open_services, out

JobId = Annotated[int, typer.Argument(help="Job id.")]

job_app: typer.Typer = typer.Typer(help="Training jobs: submit, list, show, logs, cancel, resume.",
                                   no_args_is_help=True)


def load_config(config_file: Path | None, sets: list[str]) -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StudioError(f"Cannot read the config {config_file}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise StudioError(f"{config_file} must hold a mapping of field: value.")
        config.update(loaded or {})
    for item in sets:
        field, sep, raw = item.partition("=")
        if not sep or not field.strip():
            raise StudioError(f"--set {item!r}: write FIELD=VALUE, e.g. max_steps=20")
        try:
            config[field.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            config[field.strip()] = raw
    return config


@job_app.command("submit")
def job_submit(
    kind: Annotated[str, typer.Argument(help="Stage: sl_cai_data, sft, preference_data, "
                                        "reward, rl or dpo.")],
    config_file: Annotated[Path | None, typer.Option("--config", "-c",
                                                     help="YAML or JSON config file.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s",
                                                   help="FIELD=VALUE (repeatable).")] = None,
    name: str = "",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Validate a config and queue the job (a worker runs it: `cstudio worker`)."""
    services = open_services(data_dir, database_url)
    config = load_config(config_file, sets or [])
    try:
        info = services.jobs.create(kind, config, actor=cli_actor(services), name=name)
    except ValidationError as exc:
        raise StudioError(f"Not queued. {exc}") from exc
    out.print(f"Queued job {info.id} ({info.kind}): {info.name}", markup=False, highlight=False)
    if info.config.get("model") == "tiny" and "model" not in config:
        out.print("Note: no model was set, so this job uses the demo model `tiny` (random "
                  "weights: its outputs are meaningless). For real text pass --set "
                  "model=smollm2 (bundled, offline) or a Hub id or path.", markup=False,
                  highlight=False)


@job_app.command("list")
def job_list(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds.")] = None,
    limit: int = 20,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Jobs, newest first."""
    services = open_services(data_dir, database_url)
    rows, total = services.jobs.list_jobs(limit=limit, statuses=status or None,
                                          kinds=kind or None)
    table = Table("id", "kind", "name", "status", "attempt", "created by", "updated (UTC)")
    for j in rows:
        table.add_row(str(j.id), j.kind, escape(j.name), j.status, str(j.attempt),
                      escape(j.created_by), j.updated_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)
    out.print(f"{len(rows)} of {total} jobs", markup=False)


@job_app.command("show")
def job_show(job_id: JobId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """A job's status, config, last step and result."""
    import json

    services = open_services(data_dir, database_url)
    j = services.jobs.get(job_id)
    lines = [f"Job {j.id} ({j.kind}): {j.name}", f"status: {j.status} (attempt {j.attempt})",
             f"created by {j.created_by} at {j.created_at:%Y-%m-%d %H:%M:%S}",
             f"last step: {services.jobs.last_step(job_id)}", f"folder: {j.artifact_dir}"]
    if j.error:
        lines.append(f"error: {j.error}")
    lines.append("config: " + json.dumps(j.config, sort_keys=True, default=str))
    if j.result is not None:
        lines.append("result: " + json.dumps(j.result, sort_keys=True, default=str))
    out.print("\n".join(lines), markup=False, highlight=False)


@job_app.command("logs")
def job_logs(job_id: JobId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The end of the job's log."""
    services = open_services(data_dir, database_url)
    out.print(services.jobs.log_tail(job_id) or "(no log yet)", markup=False, highlight=False)


@job_app.command("cancel")
def job_cancel(job_id: JobId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    services = open_services(data_dir, database_url)
    info = services.jobs.cancel(job_id, actor=cli_actor(services))
    state = "cancel requested" if info.cancel_requested and not info.finished else info.status
    out.print(f"Job {info.id}: {state}", markup=False)


@job_app.command("resume")
def job_resume(job_id: JobId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Queue an interrupted, failed or cancelled job again (continues from its checkpoint)."""
    services = open_services(data_dir, database_url)
    info = services.jobs.resume(job_id, actor=cli_actor(services))
    out.print(f"Job {info.id}: queued again as attempt {info.attempt}", markup=False)
