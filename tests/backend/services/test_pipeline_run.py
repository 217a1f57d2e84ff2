"""A whole pipeline on the tiny model through the real job system (worker, stage processes):
every stage succeeds, each reads its upstream's output, every artifact records the
constitution version's content hash, trained models carry a model card, and the final
comparison of the RL policy against the base and the SFT policy is judged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.access import local_admin
from backend.jobs.worker import Worker
from backend.services.container import Services, start
from backend.settings import Settings
from tests.backend.services.pipeline_data import tiny_spec

ADMIN = local_admin("tester")


@pytest.fixture
def run_services(tmp_path: Path, database_url: str, tiny_engine: Any) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", user="tester", database_url=database_url,
                        job_launcher="python", job_poll_s=0.2, job_heartbeat_s=0.5)
    services = start(settings)
    services.engines.use(tiny_engine, "tiny test model")
    worker = Worker(settings, services.db)
    worker.start_thread()
    yield services
    worker.stop(timeout=60)
    services.close()


@pytest.mark.slow
def test_a_tiny_pipeline_runs_every_stage_and_ends_with_the_comparison(
        run_services: Services) -> None:
    services = run_services
    info = services.pipelines.launch(tiny_spec(), actor=ADMIN)
    done = services.pipelines.wait(info.id, timeout=900)
    assert done.status == "succeeded", [(s.stage, s.job.status, s.job.error[-400:])
                                        for s in done.stages] + [done.error]
    version = services.constitutions.version(done.constitution_version_id)
    digest = version.info.content_hash
    ids = {s.stage: s.job.id for s in done.stages}
    for stage in done.stages:
        folder = Path(stage.job.artifact_dir)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["constitution"]["content_hash"] == digest, stage.stage
        result = json.loads((folder / "result.json").read_text())
        assert result["outputs"]["constitution"]["content_hash"] == digest, stage.stage
        if stage.stage in ("sft", "reward", "rl"):
            card = (folder / "output" / "README.md").read_text()
            assert digest in card and version.constitution.name in card
            assert f"cstudio job submit {stage.stage}" in card
    # each later stage read its upstream's output
    sft_manifest = json.loads((Path(done.job_of("sft").artifact_dir) / "manifest.json")
                              .read_text())
    assert sft_manifest["datasets"]["sl_cai"]["id"] == services.jobs.get(
        ids["sl_cai_data"]).result["outputs"]["dataset_id"]  # type: ignore[index]
    rl_config = services.jobs.get(ids["rl"]).config
    assert rl_config["model"] == f"job:{ids['sft']}"
    comparison = done.comparison
    assert comparison is not None and comparison.status == "done"
    assert [p.ref for p in comparison.policies][1:] == [f"job:{ids['sft']}", f"job:{ids['rl']}"]
    assert comparison.config.reward_models == (f"job:{ids['reward']}",)
    report = services.comparison_reports.report(comparison.id, n_boot=50)
    assert report.verdicts > 0 and len(report.ratings) == 3
