"""`cstudio job ...`: configs from YAML and --set flags are validated like the Training tab's
form; list, show, logs, cancel and resume act on the queue (no worker runs here)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from studio.cli import app

runner = CliRunner()


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    text = result.output + (str(result.exception) if result.exception else "")
    return result.exit_code, text


def test_submit_list_show_logs_cancel_resume(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "sl.yaml"
    config.write_text("max_prompts: 3\nrounds: 1\n", encoding="utf-8")
    code, out = cli(data_dir, "job", "submit", "sl_cai_data", "--config", str(config),
                    "--set", "max_new_tokens=8", "--set", "chunk_size=2", "--name", "cli job")
    assert code == 0 and "Queued job 1 (sl_cai_data): cli job" in out, out
    code, out = cli(data_dir, "job", "show", "1")
    assert code == 0 and "status: queued" in out
    assert '"max_new_tokens": 8' in out and '"rounds": 1' in out
    code, out = cli(data_dir, "job", "list")
    assert code == 0 and "cli job" in out and "1 of 1 jobs" in out
    code, out = cli(data_dir, "job", "logs", "1")
    assert code == 0 and "(no log yet)" in out
    code, out = cli(data_dir, "job", "cancel", "1")
    assert code == 0 and "Job 1: cancelled" in out
    code, out = cli(data_dir, "job", "resume", "1")
    assert code == 0 and "queued again as attempt 2" in out


def test_a_bad_config_is_refused_naming_the_field(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code, out = cli(data_dir, "job", "submit", "sft", "--set", "max_steps=-3")
    assert code != 0 and "Not queued" in out and "sl_cai_dataset_id" in out
    code, out = cli(data_dir, "job", "submit", "sft", "--set", "oops")
    assert code != 0 and "FIELD=VALUE" in out
    code, out = cli(data_dir, "job", "list")
    assert "0 of 0 jobs" in out


def test_a_job_left_on_the_demo_model_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code, out = cli(data_dir, "job", "submit", "sl_cai_data", "--set", "max_prompts=2")
    assert code == 0 and "demo model `tiny` (random weights" in out, out
    assert "--set model=smollm2" in out
    code, out = cli(data_dir, "job", "submit", "sl_cai_data", "--set", "model=tiny")
    assert code == 0 and "demo model" not in out, out  # asked for by name: no note
