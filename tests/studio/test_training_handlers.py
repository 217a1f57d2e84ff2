"""Training tab handlers against real services (no browser): form values become configs, bad
configs come back as messages naming the field, the queue pages, the chain of inputs picks the
newest upstream results, curves and comparisons are drawn from stored metrics, and downloads
stay inside the job directory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest

from backend.access import local_admin
from backend.services.container import Services
from db import job_repo
from db.base_models import utcnow
from studio.training_handlers import InputSlot, TrainingHandlers, config_from_form
from studio.training_tab import CHAINED
from tests.backend.services.test_jobs import sft_config, sl_cai_dataset
from tests.studio.engine_stub import DescribedEngine

ADMIN = local_admin("tester")


@pytest.fixture
def h(services: Services) -> TrainingHandlers:
    return TrainingHandlers(services)


def stage(services: Services, kind: str):
    return next(s for s in services.jobs.stages() if s.kind == kind)


def finish(services: Services, job_id: int, *, result: dict[str, object] | None = None,
           points: list[tuple[int, dict[str, float]]] = ()) -> None:
    """Mark a job succeeded with some metric points, as a worker would."""
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job_id, status="succeeded", exit_code=0,
                            finished_at=utcnow(), result=result)
        job_repo.add_metrics(s, job_id=job_id, attempt=1, new_offset=len(points),
                             points=[(i, step, 1.0 + i, m) for i, (step, m)
                                     in enumerate(points)])


def test_form_values_become_a_config(services: Services) -> None:
    info = stage(services, "sft")
    config = config_from_form(info, {"model": "tiny", "sl_cai_dataset_id": 3,
                                     "max_steps": 12.0, "learning_rate": None,
                                     "helpful_dataset_id": "", "lora": True,
                                     "deepspeed_stage": "", "device": "cpu"})
    assert config == {"model": "tiny", "sl_cai_dataset_id": 3, "max_steps": 12, "lora": True,
                      "device": "cpu"}
    assert isinstance(config["max_steps"], int)


def test_launch_queues_or_names_the_bad_fields(services: Services, h: TrainingHandlers
                                               ) -> None:
    dataset = sl_cai_dataset(services)
    message, *_ = h.launch(None, "sft", "", {"model": "tiny", "sl_cai_dataset_id": dataset,
                                             "max_steps": -1, "device": "cuda:5"})
    assert "Not queued" in message
    assert "max\\_steps\\: must be a positive integer" in message
    assert "device\\: cuda\\:5 does not exist" in message
    assert services.jobs.list_jobs()[1] == 0
    message, rows, page_info, job = h.launch(None, "sft", "mine", sft_config(dataset))
    assert "Queued job **#1**" in message
    assert rows[0][:5] == [1, "mine", "sft", "queued", 1] and page_info.startswith("Page 1 of 1")
    assert job["value"] == 1


def test_queue_pages(services: Services, h: TrainingHandlers) -> None:
    dataset = sl_cai_dataset(services)
    for _ in range(12):
        services.jobs.create("sft", sft_config(dataset), actor=ADMIN)
    rows, info = h.queue(1, "")
    assert [r[0] for r in rows] == list(range(12, 2, -1)) and info == "Page 1 of 2 · 12 jobs"
    page, rows, info = h.page_moved(1, 1, "")
    assert page == 2 and [r[0] for r in rows] == [2, 1]
    page, rows, _ = h.page_moved(2, 5, "")  # past the end: the last page
    assert page == 2
    services.jobs.cancel(5, actor=ADMIN)
    rows, info = h.queue(1, "cancelled")
    assert [r[0] for r in rows] == [5] and info.endswith("1 jobs")


def test_inputs_chain_from_earlier_runs(services: Services, h: TrainingHandlers) -> None:
    older = sl_cai_dataset(services)
    newer = sl_cai_dataset(services)
    sft_stage = stage(services, "sft")
    dataset_spec = next(f for f in sft_stage.fields if f.name == "sl_cai_dataset_id")
    update = h.slot_update(InputSlot("sft", dataset_spec))
    assert update["value"] == newer and [c[1] for c in update["choices"]] == ["", newer, older]

    sft_job = services.jobs.create("sft", sft_config(newer), actor=ADMIN)
    finish(services, sft_job.id, result={"outputs": {"model_dir": "/x"}})
    dpo_model = next(f for f in stage(services, "dpo").fields if f.name == "model")
    update = h.slot_update(InputSlot("dpo", dpo_model))
    assert update["value"] == f"job:{sft_job.id}"  # DPO starts from the SL-CAI model
    assert ("tiny (demo model, random weights)", "tiny") in update["choices"]
    assert ("smollm2 (SmolLM2-135M-Instruct, real, offline)", "smollm2") in update["choices"]

    reward_job = services.jobs.create("sft", sft_config(newer), actor=ADMIN)
    with services.db.write() as s:
        job_repo.update_job(s, job_id=reward_job.id, kind="reward")
    finish(services, reward_job.id)
    rm_spec = next(f for f in stage(services, "rl").fields if f.name == "reward_models")
    assert h.slot_update(InputSlot("rl", rm_spec))["value"] == f"job:{reward_job.id}=1.0"
    version_spec = next(f for f in stage(services, "sl_cai_data").fields
                        if f.name == "constitution_version_id")
    versions = h.slot_update(InputSlot("sl_cai_data", version_spec))["choices"]
    assert versions[0][1] == "" and "Studio default v1" in versions[1][0]


def test_view_tick_compare_and_downloads(services: Services, h: TrainingHandlers) -> None:
    dataset = sl_cai_dataset(services)
    a = services.jobs.create("sft", sft_config(dataset), actor=ADMIN, name="run <a>")
    b = services.jobs.create("sft", sft_config(dataset), actor=ADMIN, name="run b")
    finish(services, a.id, points=[(1, {"loss": 2.0, "learning_rate": 1e-3}),
                                   (2, {"loss": 1.0, "learning_rate": 1e-3})])
    finish(services, b.id, points=[(1, {"loss": 3.0, "kl": 0.1})])
    Path(a.artifact_dir, "log.txt").write_text("line one\nline two\n")
    Path(a.artifact_dir, "manifest.json").write_text(json.dumps({"seed": 0}))

    status, log, figure, files, shown = h.view(a.id)
    assert "**succeeded**" in status and "step 2" in status and "run \\<a\\>" in status
    assert log == "line one\nline two\n"
    panels = [ann.text for ann in figure.layout.annotations]
    assert panels == ["loss", "learning rate"]
    assert [list(t.y) for t in figure.data] == [[2.0, 1.0], [1e-3, 1e-3]]
    assert files["value"] == "manifest.json" and shown == [a.id, "succeeded", 1, 2]

    out = h.tick(a.id, 1, "", shown)  # nothing moved: the plot is not redrawn
    assert out[2] == status and out[4] == gr.skip() and out[-1] == shown
    out = h.tick(a.id, 1, "", [])  # the view showed something else: redrawn
    assert out[4] is not None and out[4] != gr.skip()

    figure, table = h.compare([a.id, b.id])
    assert {t.name for t in figure.data} == {f"#{a.id} run ‹a›", f"#{b.id} run b"}
    assert "| \\#1 run \\<a\\> | 2 | 1 | – | 0.001 |" in table
    assert "| \\#2 run b | 1 | 3 | 0.1 | – |" in table
    assert h.compare([a.id])[0] is None

    path, message = h.download_file(a.id, "manifest.json")
    assert message == "" and json.loads(Path(path).read_text()) == {"seed": 0}
    path, message = h.download_file(a.id, "../../studio.db")
    assert path is None and "No download" in message
    path, message = h.download_model(a.id)
    assert path is None and "no folder" in message


def test_export_dataset_of_a_job_downloads_a_zip_that_loads_back(
        services: Services, h: TrainingHandlers, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from datasets import load_from_disk

    from db import training_repo

    job = services.jobs.create("sl_cai_data", {}, actor=ADMIN, name="data")
    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="sl_cai", name="made", job_id=job.id, constitution_version_id=None,
            model="tiny", config={}, source="job", source_sha256="0" * 64, created_by="t")
        assert row.id is not None
        training_repo.insert_sl_cai_samples(s, dataset_id=row.id, rows=[
            {"position": i, "prompt": f"<b>prompt {i}</b>", "response": "r",
             "revision": f"revised {i}", "chain_id": f"c{i}", "record_ids": [],
             "principle_keys": ["k"], "content_hash": f"{i:064d}"} for i in range(3)])
    path, message = h.export_dataset(job.id, "", None)
    assert message.startswith(f"Exported 3 rows of sl_cai dataset {row.id}")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    loaded = load_from_disk(str(tmp_path / "unzipped" / "hf"))
    assert loaded["revision"] == ["revised 0", "revised 1", "revised 2"]
    assert loaded[0]["prompt"] == "<b>prompt 0</b>"
    assert (tmp_path / "unzipped" / f"sl_cai-{row.id}.parquet").is_file()

    monkeypatch.setattr(services.dataset_exports, "_online", lambda: False)
    path, message = h.export_dataset(job.id, "me/data", None)  # exported, not pushed
    assert path is not None and "**Not pushed.**" in message and "not reachable" in message

    sft = services.jobs.create("sft", sft_config(row.id), actor=ADMIN)
    path, message = h.export_dataset(sft.id, "", None)
    assert path is None and "**Not exported.**" in message and "made no dataset" in message
    assert h.export_dataset(None, "", None)[0] is None


def _initial(h: TrainingHandlers, services: Services) -> dict[tuple[str, str], object]:
    """What each chained input of every form starts at when the page opens."""
    slots = [InputSlot(info.kind, spec) for info in services.jobs.stages()
             for spec in info.fields if spec.type in CHAINED or spec.name in CHAINED]
    return {(slot.kind, slot.spec.name): update for slot, update
            in zip(slots, h.initial_inputs(slots), strict=True)}


def test_forms_start_at_the_studio_model_not_the_demo_model(services: Services,
                                                           h: TrainingHandlers) -> None:
    services.engines.use(DescribedEngine("smollm2", "SmolLM2-135M-Instruct"))
    dataset = sl_cai_dataset(services)
    sft_job = services.jobs.create("sft", sft_config(dataset), actor=ADMIN)
    finish(services, sft_job.id, result={"outputs": {"model_dir": "/x"}})
    start = _initial(h, services)
    for kind in ("sl_cai_data", "sft", "reward"):
        assert start[(kind, "model")]["value"] == "smollm2", kind
    for kind in ("preference_data", "rl", "dpo"):  # the chain still leads: the SL-CAI model
        assert start[(kind, "model")]["value"] == f"job:{sft_job.id}", kind
    assert "value" not in start[("preference_data", "labeler_model")]  # empty: the policy
    assert start[("sl_cai_data", "engine")]["value"] == "local"  # as the stage has it

    services.engines.use(DescribedEngine("openai_compat", "served/model"))
    services.engines._config = replace(services.engines.config, base_url="http://vllm:8000/v1",
                                       model="served/model")
    start = _initial(h, services)
    data_model = start[("sl_cai_data", "model")]
    assert data_model["value"] == "served/model"
    assert ("served/model (the studio's model)", "served/model") in data_model["choices"]
    assert start[("sl_cai_data", "engine")]["value"] == "openai_compat"
    assert start[("sl_cai_data", "base_url")]["value"] == "http://vllm:8000/v1"


def test_with_the_demo_model_the_forms_keep_the_stage_defaults(services: Services,
                                                               h: TrainingHandlers) -> None:
    services.engines.use(DescribedEngine("tiny", "tiny", is_demo=True))
    start = _initial(h, services)
    assert "value" not in start[("sl_cai_data", "model")]  # the form's own default: tiny
    assert start[("sl_cai_data", "engine")] == gr.skip()
