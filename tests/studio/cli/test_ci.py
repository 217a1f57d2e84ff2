"""Constitution CI from the command line: aliases, `golden check` exiting 1 on a broken golden
case, and `eval compare --fail-on-regression`."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.access import local_admin
from backend.services.container import start
from backend.settings import Settings
from studio.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
OWNER = local_admin("owner")


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    error = result.exception
    shown = "" if error is None or isinstance(error, SystemExit) else str(error)
    return result.exit_code, result.output + shown


def test_aliases_and_golden_check(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="tester"))
    summary = services.constitutions.list_all()[0]
    name = summary.name
    # the same pair both ways round, both expecting A: exactly one verdict can agree
    ids = [services.golden.add(summary.id, "Is this kind?", a, b, "A", actor=OWNER).id
           for a, b in (("Yes, gently.", "No, rudely."), ("No, rudely.", "Yes, gently."))]
    services.close()

    code, out = cli(data_dir, "alias", "set", name, "production", "1")
    assert code == 0 and "production -> v1" in out, out
    code, out = cli(data_dir, "alias", "set", name, "Bad Name", "1")
    assert code != 0
    code, out = cli(data_dir, "alias", "list", name)
    assert code == 0 and "production" in out and "v1" in out

    # every principle for every case, both orders: the two verdicts are exact complements
    code, out = cli(data_dir, "golden", "check", name, "--version", "production", "--k", "64")
    assert code == 1 and "1/2 golden cases pass" in out, out
    failed = int(re.search(r"FAIL case (\d+)", out).group(1))  # type: ignore[union-attr]
    assert failed in ids
    services = start(Settings(data_dir=data_dir, user="tester"))
    services.golden.delete(failed, actor=OWNER)
    services.close()
    code, out = cli(data_dir, "golden", "check", name, "--version", "1", "--k", "64")
    assert code == 0 and "1/1 golden cases pass" in out, out
    code, out = cli(data_dir, "golden", "check", name, "--version", "staging")
    assert code != 0 and "no version or alias 'staging'" in out

    code, out = cli(data_dir, "alias", "remove", name, "production")
    assert code == 0
    code, out = cli(data_dir, "alias", "list", name)
    assert "production" not in out


def test_eval_compare_fail_on_regression(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("prompt,response_a,response_b,label\nHi?,Hello!,Go away.,A\n"
                     "Help?,Sure.,No.,A\nBye?,Farewell.,Get lost.,A\n", encoding="utf-8")
    code, out = cli(data_dir, "dataset", "import", str(pairs), "--format", "csv",
                    *[f"--column={c}={c}" for c in ("prompt", "response_a", "response_b",
                                                     "label")])
    assert code == 0, out
    services = start(Settings(data_dir=data_dir, user="tester"))
    name = services.constitutions.list_all()[0].name
    services.close()
    for _ in range(2):
        assert cli(data_dir, "eval", "create", "1", name, "--one-order")[0] == 0
    assert cli(data_dir, "eval", "run", "1")[0] == 0
    assert gc.get_freeze_count() > 0  # a run settles the heap first (backend.heap)
    assert cli(data_dir, "eval", "run", "2")[0] == 0
    code, out = cli(data_dir, "eval", "compare", "1", "2", "--fail-on-regression",
                    "--n-boot", "200")
    assert code == 0 and "accuracy: +0.0000" in out and "no regression" in out, out
    code, out = cli(data_dir, "eval", "compare", "1", "2", "--metric", "nonsense")
    assert code != 0
