"""``cstudio pipeline launch|list|show|cancel|resume`` and ``cstudio job export-data``: the
Pipelines tab from the command line (issue 17), and the generated datasets as Hugging Face
``datasets`` folders. A pipeline spec is a YAML (or JSON) file of the PipelineSpec fields
(``base_model``, ``constitution_version_id``, ``prompt_set``, ``seed``, ``device``, ``name``,
``stages: {kind: {field: value}}``, ``comparison: {...}``); ``--set`` flags override top-level
fields."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.errors import StudioError
from backend.services.pipelines import PipelineInfo, PipelineSpec
from studio.cli.common import DataDir, DbUrl, cli_actor, open_services, out, print_table
from studio.cli.jobs import load_config

PipelineId = Annotated[int, typer.Argument(help="Pipeline id.")]

pipeline_app: typer.Typer = typer.Typer(
    help="The whole CAI recipe as one launch: SL-CAI data → SFT → preference data → reward → "
    "RL, then a comparison.", no_args_is_help=True)


def spec_from(config: dict[str, Any]) -> PipelineSpec:
    """A PipelineSpec from a loaded config; unknown keys are refused by name."""
    known = {f.name for f in fields(PipelineSpec)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise StudioError(f"Unknown pipeline field(s) {', '.join(unknown)}; the fields are "
                          f"{', '.join(sorted(known))}.")
    for key in ("stages", "comparison"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise StudioError(f"{key} must be a mapping, e.g. stages: {{sft: {{max_steps: 2}}}}")
    return PipelineSpec(**config)


def _show(info: PipelineInfo) -> None:
    out.print(f"Pipeline {info.id} {info.name!r}: {info.status} (constitution version "
              f"{info.constitution_version_id})", markup=False, highlight=False)
    print_table(("stage", "job", "status", "needs", "error"),
                [(s.stage, str(s.job.id), s.job.status, ", ".join(map(str, s.needs)),
                  s.job.error.splitlines()[0] if s.job.error else "") for s in info.stages])
    if info.error:
        out.print(f"Error: {info.error}", markup=False, highlight=False)
    if info.comparison is not None:
        c = info.comparison
        out.print(f"Comparison {c.id}: {c.status} ({c.done_count}/{c.total_count}); "
                  f"report: cstudio compare report {c.id}", markup=False, highlight=False)


@pipeline_app.command("launch")
def pipeline_launch(
    config_file: Annotated[Path | None, typer.Option("--config", "-c",
                                                     help="YAML or JSON pipeline spec.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s",
                                                   help="FIELD=VALUE (repeatable).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Validate every stage and queue the chained jobs (a worker runs them: `cstudio worker`)."""
    spec = spec_from(load_config(config_file, sets or []))
    services = open_services(data_dir, database_url)
    info = services.pipelines.launch(spec, actor=cli_actor(services))
    _show(info)


@pipeline_app.command("list")
def pipeline_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Every pipeline, newest first, with its status."""
    services = open_services(data_dir, database_url)
    print_table(("id", "name", "status", "stages", "comparison"),
                [(str(p.id), p.name, p.status, str(len(p.stages)),
                  "" if p.comparison_id is None else str(p.comparison_id))
                 for p in services.pipelines.list_all()])


@pipeline_app.command("show")
def pipeline_show(
    pipeline_id: PipelineId,
    wait: Annotated[float, typer.Option(help="Wait up to this many seconds for the pipeline "
                                        "to finish (advancing it: the final comparison "
                                        "starts when every stage succeeded).")] = 0.0,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """The stages, their jobs and the final comparison."""
    services = open_services(data_dir, database_url)
    info = (services.pipelines.wait(pipeline_id, timeout=wait) if wait > 0
            else services.pipelines.advance(pipeline_id))
    _show(info)


@pipeline_app.command("cancel")
def pipeline_cancel(pipeline_id: PipelineId, data_dir: DataDir = None,
                    database_url: DbUrl = None) -> None:
    """Cancel the unfinished stages and the comparison."""
    services = open_services(data_dir, database_url)
    _show(services.pipelines.cancel(pipeline_id, actor=cli_actor(services)))


@pipeline_app.command("resume")
def pipeline_resume(pipeline_id: PipelineId, data_dir: DataDir = None,
                    database_url: DbUrl = None) -> None:
    """Queue every stopped stage again (each continues from its newest checkpoint)."""
    services = open_services(data_dir, database_url)
    _show(services.pipelines.resume(pipeline_id, actor=cli_actor(services)))


def job_export_data(
    dataset_id: Annotated[int, typer.Argument(help="An SL-CAI or preference dataset id (from "
                                              "the job that made it).")],
    push: Annotated[str | None, typer.Option(help="Also push to the Hub as owner/name "
                                             "(online only).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Export a generated dataset as a Hugging Face `datasets` folder and Parquet file."""
    services = open_services(data_dir, database_url)
    actor = cli_actor(services)
    done = services.dataset_exports.export(dataset_id, actor=actor)
    out.print(f"Exported {done.rows} rows of {done.kind} dataset {done.dataset_id}: "
              f"{done.hf_dir} (datasets.load_from_disk), {done.parquet}", markup=False,
              highlight=False)
    if push:
        url = services.dataset_exports.publish(done, push, actor=actor)
        out.print(f"Pushed to {url}", markup=False, highlight=False)
