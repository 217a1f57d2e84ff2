"""``cstudio eval create|run|report`` (and ``compare``, from studio/cli/ci.py): agreement runs."""

from __future__ import annotations

from typing import Annotated

import typer

from backend.heap import settle_heap
from backend.threads import apply_torch_threads
from studio.cli.common import DataDir, DbUrl, NameOrId, VersionOpt, cli_actor, open_services, out
from studio.cli.compare import JudgeOpt, check_judge

RunId = Annotated[int, typer.Argument(help="Run id.")]

eval_app = typer.Typer(help="Agreement runs: AI verdicts against human labels.",
                       no_args_is_help=True)


@eval_app.command("create")
def eval_create(
    dataset: Annotated[int, typer.Argument(help="Dataset id.")],
    constitution: NameOrId,
    version: VersionOpt = None,
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
    judge: JudgeOpt = "scored",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an agreement run (then `cstudio eval run ID`, or start it in the studio)."""
    from backend.services.evaluations import EvaluationConfig

    if form not in ("chat", "raw"):
        raise typer.BadParameter("must be chat or raw", param_hint="--form")
    check_judge(judge)
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    config = EvaluationConfig(sample_size=sample, seed=seed, cot=cot, both_orders=both_orders,
                              k_principles=k, batch_size=batch_size, use_few_shots=few_shots,
                              form=form, judge=judge)
    info = services.evaluations.create(dataset_id=dataset, version_id=detail.info.id,
                                       config=config, actor=cli_actor(services))
    out.print(f"Created run {info.id}: {info.total_count} pairs", markup=False)


@eval_app.command("run")
def eval_run(run_id: RunId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Judge the items of a run that have no verdict yet (resumes where it stopped)."""
    services = open_services(data_dir, database_url)
    apply_torch_threads(services.settings.torch_threads)
    settle_heap()
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
def eval_report(run_id: RunId, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Print agreement metrics with bootstrap intervals, and how the verdicts were made."""
    from backend.services.comparison_report import judge_note
    from studio.agreement_charts import metrics_table

    services = open_services(data_dir, database_url)
    report = services.agreement.report(run_id)
    out.print(metrics_table(report), markup=False, highlight=False)
    out.print(f"Judge: {judge_note(report.judge, report.unparsed_verdicts, report.summary.n)}",
              markup=False, highlight=False)
