"""Pipelines (issue 17): one launch queues the five chained jobs with their dependencies; the
worker's claim skips a job until the jobs it needs succeeded; a failed stage stops the rest
with a message naming it; resume queues them again; dataset job references are filled in
when a job is claimed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import PermissionDeniedError, StudioError, ValidationError
from backend.jobs.dependencies import fill_dataset_refs
from backend.services.container import Services
from backend.services.pipelines import STAGES, PipelineInfo
from db import job_repo, pipeline_repo, training_repo
from db.base_models import utcnow
from tests.backend.services.pipeline_data import tiny_spec

ADMIN = local_admin("tester")


def _claim(services: Services) -> int | None:
    with services.db.write() as s:
        pipeline_repo.stop_blocked(s)
        job = job_repo.claim_next(s, worker="test-worker")
        return None if job is None else job.id


def _finish(services: Services, job_id: int, status: str, error: str = "") -> None:
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job_id, status=status, error=error,
                            finished_at=utcnow())


def _launch(services: Services) -> PipelineInfo:
    return services.pipelines.launch(tiny_spec(), actor=ADMIN)


def test_launch_queues_the_chain_with_dependencies_and_job_references(
        services: Services) -> None:
    info = _launch(services)
    assert [s.stage for s in info.stages] == list(STAGES)
    ids = {s.stage: s.job.id for s in info.stages}
    assert all(s.job.status == "queued" for s in info.stages)
    needs = {s.stage: s.needs for s in info.stages}
    assert needs == {"sl_cai_data": [], "sft": [ids["sl_cai_data"]], "preference_data":
                     [ids["sft"]], "reward": [ids["preference_data"]],
                     "rl": sorted([ids["sft"], ids["reward"]])}
    configs = {s.stage: s.job.config for s in info.stages}
    assert configs["sft"]["sl_cai_dataset_id"] == f"job:{ids['sl_cai_data']}"
    assert configs["preference_data"]["model"] == f"job:{ids['sft']}"
    assert configs["reward"]["preference_dataset_id"] == f"job:{ids['preference_data']}"
    assert configs["rl"]["model"] == f"job:{ids['sft']}"
    assert configs["rl"]["reward_models"] == [{"model": f"job:{ids['reward']}",
                                               "weight": 1.0}]
    assert configs["sft"]["max_steps"] == 1  # the stage's own fields, defaults filled in
    assert configs["sft"]["lora_r"] == 16
    # every job carries the pipeline's constitution version (for the manifest and model card)
    assert {s.job.constitution_version_id for s in info.stages} == {
        info.constitution_version_id}
    written = json.loads((Path(info.stages[1].job.artifact_dir) / "job.json").read_text())
    assert written["config"]["sl_cai_dataset_id"] == f"job:{ids['sl_cai_data']}"
    assert info.status == "queued"


def test_the_claim_waits_for_every_job_a_job_needs(services: Services) -> None:
    info = _launch(services)
    ids = [s.job.id for s in info.stages]
    assert _claim(services) == ids[0]
    assert _claim(services) is None  # sft needs the data stage, which is still running
    _finish(services, ids[0], "succeeded")
    assert _claim(services) == ids[1]
    _finish(services, ids[1], "succeeded")
    assert _claim(services) == ids[2]
    assert _claim(services) is None  # reward needs the preference data; rl needs reward too


def test_a_failed_stage_stops_the_rest_naming_it_and_resume_queues_them_again(
        services: Services) -> None:
    info = _launch(services)
    ids = [s.job.id for s in info.stages]
    assert _claim(services) == ids[0]
    _finish(services, ids[0], "succeeded")
    assert _claim(services) == ids[1]
    _finish(services, ids[1], "failed", "The stage exited with code 1.")
    assert _claim(services) is None
    after = services.pipelines.advance(info.id)
    assert after.status == "failed"
    for stage in after.stages[2:]:
        assert stage.job.status == "failed"
        assert stage.job.error.startswith("Not run: the sft stage (job #")
        assert f"(job #{ids[1]}) failed" in stage.job.error
    assert after.stages[1].job.error == "The stage exited with code 1."

    resumed = services.pipelines.resume(info.id, actor=Principal("an-author", Role.AUTHOR))
    assert [s.job.status for s in resumed.stages] == ["succeeded"] + ["queued"] * 4
    assert _claim(services) == ids[1]  # the failed stage first, as its next attempt
    assert services.jobs.get(ids[1]).attempt == 2


def test_a_cancelled_stage_cancels_the_rest(services: Services) -> None:
    info = _launch(services)
    ids = [s.job.id for s in info.stages]
    services.jobs.cancel(ids[0], actor=ADMIN)
    after = services.pipelines.advance(info.id)
    assert [s.job.status for s in after.stages] == ["cancelled"] * 5
    assert "the sl_cai_data stage" in after.stages[4].job.error
    assert after.status == "cancelled"


def test_revision_preferences_name_the_pipelines_sl_cai_data(services: Services) -> None:
    spec = tiny_spec()
    spec = tiny_spec(stages={**(spec.stages or {}), "preference_data": {
        **(spec.stages or {}).get("preference_data", {}), "source": "revisions"}})
    info = services.pipelines.launch(spec, actor=ADMIN)
    ids = {s.stage: s.job.id for s in info.stages}
    config = {s.stage: s.job.config for s in info.stages}["preference_data"]
    assert (config["source"], config["sl_cai_dataset_id"]) == (
        "revisions", f"job:{ids['sl_cai_data']}")
    assert _launch(services).stages[2].job.config["sl_cai_dataset_id"] is None
    with pytest.raises(ValidationError, match="come from the earlier stages"):
        services.pipelines.launch(tiny_spec(stages={"preference_data": {
            "source": "revisions", "sl_cai_dataset_id": 1}}), actor=ADMIN)


def test_dataset_references_are_filled_in_when_the_job_is_claimed(services: Services) -> None:
    info = _launch(services)
    data_job, sft_job = info.stages[0].job.id, info.stages[1].job.id
    with services.db.write() as s:
        ds = training_repo.create_dataset(
            s, kind="sl_cai", name="made by the data stage", job_id=data_job,
            constitution_version_id=None, model="tiny", config={}, source="t",
            source_sha256="0" * 64, created_by="t")
    _finish(services, data_job, "succeeded")
    with services.db.read() as s:
        row = job_repo.get_job(s, job_id=sft_job)
        assert row is not None
        s.expunge(row)
    fill_dataset_refs(services.db, row)
    assert services.jobs.get(sft_job).config["sl_cai_dataset_id"] == ds.id
    written = json.loads((Path(row.artifact_dir) / "job.json").read_text())
    assert written["config"]["sl_cai_dataset_id"] == ds.id
    assert oct((Path(row.artifact_dir) / "job.json").stat().st_mode & 0o777) == "0o600"


def test_a_reference_to_a_job_that_made_no_dataset_is_refused(services: Services) -> None:
    info = _launch(services)
    with services.db.read() as s:
        row = job_repo.get_job(s, job_id=info.stages[1].job.id)
        assert row is not None
        s.expunge(row)
    with pytest.raises(StudioError, match="made no sl_cai dataset"):
        fill_dataset_refs(services.db, row)


def test_a_bad_stage_config_queues_nothing_and_names_the_stage(services: Services) -> None:
    spec = tiny_spec(stages={"sft": {"max_steps": 0}, "rl": {"batch_size": 3}})
    with pytest.raises(ValidationError) as exc:
        services.pipelines.launch(spec, actor=ADMIN)
    assert any(p.startswith("sft.max_steps") for p in exc.value.problems)
    assert any(p.startswith("rl.batch_size") for p in exc.value.problems)
    assert services.jobs.list_jobs()[1] == 0 and services.pipelines.list_all() == []
    with pytest.raises(ValidationError, match="come from the earlier stages"):
        services.pipelines.launch(tiny_spec(stages={"sft": {"sl_cai_dataset_id": 3}}),
                                  actor=ADMIN)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AUDITOR])
def test_readers_may_not_launch_a_pipeline(services: Services, role: Role) -> None:
    with pytest.raises(PermissionDeniedError):
        services.pipelines.launch(tiny_spec(), actor=Principal("someone", role))
    assert services.pipelines.list_all() == []


def test_authors_and_operators_launch(services: Services) -> None:
    for role in (Role.AUTHOR, Role.OPERATOR):
        info = services.pipelines.launch(tiny_spec(), actor=Principal(f"a-{role.value}", role))
        assert info.created_by == f"a-{role.value}"
