"""`cstudio pipeline launch|list|show|cancel|resume` and `cstudio job export-data` (issue 17):
the Pipelines tab's launch from a YAML spec, and a generated dataset as a `datasets` folder."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from backend.services.container import start
from backend.settings import Settings
from studio.cli import app
from tests.backend.services.pipeline_data import TINY_COMPARISON, TINY_STAGES
from tests.backend.training.conftest import insert_sl_cai_dataset

runner = CliRunner()


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)],
                           env={"CSTUDIO_USER": "tester"})
    return result.exit_code, result.output + (str(result.exception or ""))


def test_launch_show_cancel_resume_from_a_yaml_spec(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(yaml.safe_dump({"base_model": "tiny", "device": "cpu",
                                    "stages": TINY_STAGES, "comparison": TINY_COMPARISON}))

    code, out = cli(data_dir, "pipeline", "launch", "--config", str(spec),
                    "--set", "name=from the cli")
    assert code == 0, out
    assert "Pipeline 1 'from the cli': queued" in out
    for stage in ("sl_cai_data", "sft", "preference_data", "reward", "rl"):
        assert stage in out

    code, out = cli(data_dir, "pipeline", "list")
    assert code == 0 and "from the cli" in out and "queued" in out, out

    code, out = cli(data_dir, "pipeline", "cancel", "1")
    assert code == 0 and "cancelled" in out, out
    code, out = cli(data_dir, "pipeline", "resume", "1")
    assert code == 0 and "queued" in out, out
    code, out = cli(data_dir, "pipeline", "show", "1")
    assert code == 0 and "Pipeline 1" in out, out


def test_a_spec_with_an_unknown_field_is_refused_by_name(tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text("base_model: tiny\nstagez: {}\n")
    code, out = cli(tmp_path / "data", "pipeline", "launch", "--config", str(spec))
    assert code != 0 and "stagez" in out


def test_export_data_writes_a_folder_that_loads_back(tmp_path: Path) -> None:
    from datasets import load_from_disk

    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="tester"))
    dataset_id = insert_sl_cai_dataset(services, n=4)
    services.close()

    code, out = cli(data_dir, "job", "export-data", str(dataset_id))
    assert code == 0, out
    folder = next(data_dir.rglob("hf"))
    assert len(load_from_disk(str(folder))) == 4
    assert next(data_dir.rglob("*.parquet")).is_file()
