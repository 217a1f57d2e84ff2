"""`cstudio compare`: the base model (offline: the tiny demo model) against an SFT job's output,
created, run and reported from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.services.container import start
from backend.settings import Settings
from studio.cli import app
from tests.backend.services.comparison_data import finished_sft_job, perturbed_checkpoint

pytestmark = pytest.mark.slow
runner = CliRunner()


def cli(data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # warnings (e.g. file modes) go to stderr


def test_compare_create_run_report(tmp_path: Path, tiny_model_path: Path,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="tester"))
    ckpt = perturbed_checkpoint(tiny_model_path, tmp_path_factory.getbasetemp() / "tiny-perturbed")
    job_id = finished_sft_job(services, ckpt)
    services.close()
    prompts = tmp_path / "harmless-prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n"
                               for i in range(3)), encoding="utf-8")

    listed = cli(data_dir, "compare", "policies")
    assert "base" in listed and f"job:{job_id}" in listed

    out = cli(data_dir, "compare", "create", "--policy", "base", "--policy", f"job:{job_id}",
              "--prompt-set", str(prompts), "--max-new-tokens", "6", "--batch-size", "4",
              "--name", "base vs sft", "--run")
    assert "Created comparison 1: 2 policies, 3 prompts, 9 steps" in out
    assert "Comparison 1: done, 9/9" in out

    report = cli(data_dir, "compare", "report", "1", "--n-boot", "100")
    assert "3 judged pairs" in report and "Elo" in report and f"job:{job_id}" in report
    data = json.loads(cli(data_dir, "compare", "report", "1", "--json", "--n-boot", "100"))
    assert [p["ref"] for p in data["policies"]] == ["base", f"job:{job_id}"]
    assert data["policies"][0]["elo"]["value"] == 0.0
    assert set(data["by_axis"]) == {"harmless"}  # from the file name
    assert "done" in cli(data_dir, "compare", "list")

    cli(data_dir, "compare", "create", "-p", "base", "-p", f"job:{job_id}", "--prompt-set",
        str(prompts), "--max-new-tokens", "6", "--max-prompts", "2", "--one-order", "--run")
    since = cli(data_dir, "compare", "report", "2", "--since", "1", "--n-boot", "100")
    assert "Since comparison 1" in since and "Elo before" in since
