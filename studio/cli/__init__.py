"""The ``cstudio`` command: builds Settings once, wires the services, runs what was asked.

This package root is the composition root: it joins the command groups (one module each in
``studio/cli/``) into one Typer app. The groups share ``studio/cli/common.py`` and never import
this root, so nothing here is circular.

It lives in ``studio`` because ``serve`` starts the UI; the UI itself (gradio) is imported
only inside ``serve`` so the other commands start fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from backend.errors import StudioError
from studio.cli.audit import audit_app
from studio.cli.backup import backup, restore
from studio.cli.ci import alias_app, eval_compare, golden_app
from studio.cli.common import err
from studio.cli.compare import compare_app
from studio.cli.constitutions import constitution_app
from studio.cli.datasets import dataset_app
from studio.cli.evals import eval_app
from studio.cli.files import disk_full_line
from studio.cli.jobs import job_app
from studio.cli.pipelines import job_export_data, pipeline_app
from studio.cli.prompts import prompts_app
from studio.cli.serve import db_app, serve, worker
from studio.cli.users import user_app

app = typer.Typer(help="Constitution Studio: write, test and train on AI constitutions.",
                  no_args_is_help=True, add_completion=False)
# One table of the command groups (`cstudio <group> ...`) and one of the single commands.
GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("db", db_app), ("constitution", constitution_app), ("audit", audit_app),
    ("dataset", dataset_app), ("eval", eval_app), ("user", user_app), ("prompts", prompts_app),
    ("compare", compare_app), ("job", job_app), ("alias", alias_app), ("golden", golden_app),
    ("pipeline", pipeline_app))
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("serve", serve), ("worker", worker), ("backup", backup), ("restore", restore))
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)
for _name, _command in COMMANDS:
    app.command(_name)(_command)
job_app.command("export-data")(job_export_data)  # the datasets that jobs made
eval_app.command("compare")(eval_compare)  # a CI check, kept with the other checks in ci.py


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
