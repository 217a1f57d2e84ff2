"""``cstudio compare policies|create|run|list|report|vote|votes|adjudicate``: comparisons of
policies under a constitution (backend/services/comparisons.py) and the people's votes on their
pairs (backend/services/comparison_votes.py), with the same checks as the Compare tab."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from studio.cli.common import DataDir, DbUrl, VersionOpt, cli_actor, open_services, out
from studio.compare_charts import fmt, ratings_rows

JUDGES = ("scored", "parsed")
JudgeOpt = Annotated[str, typer.Option(
    help="scored: soft labels from the judge's logprobs; parsed: hard labels read from its "
    "written answer (for APIs without logprobs).")]


def check_judge(judge: str) -> str:
    """The --judge value, or a usage error naming the choices."""
    if judge not in JUDGES:
        raise typer.BadParameter("must be scored or parsed", param_hint="--judge")
    return judge


compare_app: typer.Typer = typer.Typer(
    help="Compare policies (base model, trained jobs, server models) under a constitution: "
    "win rates and Elo.", no_args_is_help=True)


@compare_app.command("policies")
def compare_policies(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List the policies a comparison can include."""
    services = open_services(data_dir, database_url)
    table = Table("reference", "label", "model")
    for p in services.comparisons.policies.options():
        table.add_row(escape(p.ref), escape(p.label), escape(p.location))
    out.print(table)


@compare_app.command("create")
def compare_create(
    policy: Annotated[list[str], typer.Option(
        "--policy", "-p", help="A policy: base, job:<id>, server:<model> or a model folder "
        "(give two or more).")],
    constitution: Annotated[str, typer.Option(help="Constitution name or id.")] = "",
    version: VersionOpt = None,
    prompt_set: Annotated[str, typer.Option(help="A .jsonl(.gz) prompt file (default: the "
                                            "configured prompt set).")] = "default",
    max_prompts: int = 20,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    batch_size: int = 16,
    cot: bool = False,
    both_orders: Annotated[bool, typer.Option("--both-orders/--one-order")] = True,
    k: Annotated[int, typer.Option(help="Principles per verdict.")] = 1,
    seed: int = 0,
    judge: JudgeOpt = "scored",
    reward_model: Annotated[list[str] | None, typer.Option(
        "--reward-model", "-r", help="Also score every response with a reward job's model "
        "(job:<id>); repeatable.")] = None,
    name: str = "",
    run: Annotated[bool, typer.Option("--run", help="Run it now, in this process.")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a comparison (then `cstudio compare run ID`, or --run)."""
    from backend.services.comparisons import ComparisonConfig

    check_judge(judge)
    services = open_services(data_dir, database_url)
    summary = (services.constitutions.find(constitution) if constitution
               else services.constitutions.list_all()[0])
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    config = ComparisonConfig(max_prompts=max_prompts, max_new_tokens=max_new_tokens,
                              temperature=temperature, batch_size=batch_size, cot=cot,
                              both_orders=both_orders, k_principles=k, seed=seed,
                              judge=judge, reward_models=tuple(reward_model or ()))
    actor = cli_actor(services)
    info = services.comparisons.create(policies=policy, version_id=detail.info.id,
                                       config=config, actor=actor, prompt_set=prompt_set,
                                       name=name)
    out.print(f"Created comparison {info.id}: {len(info.policies)} policies, "
              f"{len(info.prompts)} prompts, {info.total_count} steps", markup=False)
    if run:
        _run(info.id, data_dir, database_url)


def _run(comparison_id: int, data_dir: DataDir, database_url: DbUrl) -> None:
    services = open_services(data_dir, database_url)
    info = services.comparisons.run(
        comparison_id, actor=cli_actor(services),
        on_step=lambda done, total: out.print(f"{done}/{total}", markup=False))
    out.print(f"Comparison {info.id}: {info.status}, {info.done_count}/{info.total_count}",
              markup=False)


@compare_app.command("run")
def compare_run(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Generate and judge what a comparison still lacks (resumes where it stopped)."""
    _run(comparison_id, data_dir, database_url)


@compare_app.command("list")
def compare_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List comparisons, newest first."""
    services = open_services(data_dir, database_url)
    table = Table("id", "name", "status", "progress", "judge")
    for c in services.comparisons.list_all():
        table.add_row(str(c.id), escape(c.name), c.status, f"{c.done_count}/{c.total_count}",
                      escape(c.judge_model))
    out.print(table)


@compare_app.command("report")
def compare_report(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    since: Annotated[int | None, typer.Option(
        help="Also show what changed since this earlier comparison.")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Win rates, Elo and Bradley–Terry ratings with 95 % bootstrap intervals."""
    services = open_services(data_dir, database_url)
    if since is not None and not as_json:
        table = Table("policy", "Elo before", "Elo now", "change")
        for c in services.comparison_reports.changes(comparison_id, since, n_boot=n_boot):
            table.add_row(escape(c.label), "—" if c.before is None else fmt(c.before),
                          fmt(c.after), "new" if c.elo_delta is None else f"{c.elo_delta:+.0f}")
        out.print(f"Since comparison {since}:", markup=False)
        out.print(table)
    report = services.comparison_reports.report(comparison_id, n_boot=n_boot)
    if as_json:
        def iv(i: object) -> dict[str, float]:
            return {k: getattr(i, k) for k in ("value", "low", "high")}

        data = {"comparison": comparison_id, "verdicts": report.verdicts,
                "judge": report.judge, "unparsed": report.unparsed,
                "policies": [{"ref": r.ref, "label": r.label, "win_rate": iv(r.win_rate),
                              "elo": iv(r.elo), "bt": iv(r.bt)} for r in report.ratings],
                "by_axis": {k: [iv(i) for i in v] for k, v in report.by_axis.items()},
                "by_principle": {k: [iv(i) for i in v]
                                 for k, v in report.by_principle.items()},
                "rewards": {k: [iv(i) for i in v] for k, v in report.rewards.items()}}
        out.print_json(json.dumps(data))
        return
    out.print(f"Comparison {comparison_id}: {report.verdicts} judged pairs; Elo relative to "
              f"{report.comparison.policies[0].label}", markup=False, highlight=False)
    out.print(f"Judge: {report.judge_note}", markup=False, highlight=False)
    table = Table("policy", "win rate", "Elo", "Bradley–Terry")
    for row in ratings_rows(report):
        table.add_row(*(escape(c) for c in row))
    out.print(table)


def _label(value: float) -> str:
    return "A" if value > 0.5 else "B" if value < 0.5 else "tie"


@compare_app.command("vote")
def compare_vote(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    pair: Annotated[int, typer.Argument(help="Judged pair id (see the response browser).")],
    label: Annotated[str, typer.Argument(help="A, B or tie.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Vote A, B or tie on a judged pair (your newest vote counts)."""
    services = open_services(data_dir, database_url)
    actor = cli_actor(services)
    services.comparison_votes.vote(comparison_id, pair, label, actor=actor)
    out.print(f"Comparison {comparison_id} pair #{pair}: {actor.name} votes {label}",
              markup=False, highlight=False)


@compare_app.command("votes")
def compare_votes(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """The voted pairs: each voter's vote, whether they disagree, and the ruling if any."""
    services = open_services(data_dir, database_url)
    pairs = services.comparison_votes.pair_votes(comparison_id)
    table = Table("pair", "votes", "disputed", "ruling")
    for p in pairs:
        votes = ", ".join(f"{voter}: {_label(v)}" for voter, v in sorted(p.votes.items()))
        ruling = "—" if p.ruling is None else f"{_label(p.ruling)} by {p.adjudicator}" + (
            f" ({p.reason})" if p.reason else "")
        table.add_row(f"#{p.verdict_id}", escape(votes), "yes" if p.disputed else "no",
                      escape(ruling))
    out.print(f"Comparison {comparison_id}: {len(pairs)} voted pairs, "
              f"{sum(p.disputed for p in pairs)} disputed", markup=False, highlight=False)
    out.print(table)


@compare_app.command("adjudicate")
def compare_adjudicate(
    comparison_id: Annotated[int, typer.Argument(help="Comparison id.")],
    pair: Annotated[int, typer.Argument(help="A disputed pair's id (see `compare votes`).")],
    label: Annotated[str, typer.Argument(help="A, B or tie.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Rule on a pair whose voters disagree (editors and admins); the ruling becomes the pair's
    label in the votes dataset, and a later ruling replaces it."""
    services = open_services(data_dir, database_url)
    ruled = services.comparison_votes.adjudicate(comparison_id, pair, label,
                                                  actor=cli_actor(services), reason=reason)
    out.print(f"Comparison {comparison_id} pair #{pair}: ruled {label} by {ruled.adjudicator}",
              markup=False, highlight=False)
