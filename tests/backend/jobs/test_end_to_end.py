"""The real sft stage through the whole job system: `cstudio worker` launches it with
accelerate, the worker is SIGKILLed mid-training, the job turns `interrupted` with no process
left, and the resumed attempt continues from the last HF Trainer checkpoint."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from backend.jobs.worker import Worker
from backend.services.jobs import JobService
from backend.settings import Settings
from db import migrate, training_repo
from db.engine import Database
from tests.backend.jobs.conftest import ADMIN, job_settings
from tests.backend.jobs.test_worker import _worker_process, job_processes, wait_for


@pytest.mark.slow
def test_real_sft_survives_a_killed_worker_and_resumes_from_its_checkpoint(
        tmp_path: Path, database_url: str) -> None:
    settings: Settings = job_settings(tmp_path, database_url,
                                      job_entry_module="backend.training.entry",
                                      job_stale_after_s=3.0)
    db = Database(settings.resolved_database_url())
    migrate.upgrade(db)
    try:
        with db.write() as s:
            ds = training_repo.create_dataset(
                s, kind="sl_cai", name="e2e", job_id=None, constitution_version_id=None,
                model="test", config={}, source="test", source_sha256="0" * 64,
                created_by="t")
            assert ds.id is not None
            training_repo.insert_sl_cai_samples(s, dataset_id=ds.id, rows=[
                {"position": i, "prompt": f"Question {i}?", "response": "no",
                 "revision": f"A careful answer number {i}.", "chain_id": f"c{i}",
                 "record_ids": [], "principle_keys": ["k"], "content_hash": f"{i:064d}"}
                for i in range(8)])
        svc = JobService(db, settings)
        info = svc.create("sft", {"model": "tiny", "sl_cai_dataset_id": ds.id, "max_steps": 40,
                                  "save_steps": 3, "batch_size": 2, "max_length": 32,
                                  "learning_rate": 1e-3, "device": "cpu"}, actor=ADMIN)
        ckpts = Path(info.artifact_dir) / "checkpoints"
        worker = _worker_process(settings, entry="backend.training.entry")
        try:
            wait_for(lambda: (ckpts / "checkpoint-3" / "trainer_state.json").is_file(), 240,
                     "the first checkpoint")
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        wait_for(lambda: not job_processes(info.artifact_dir), 20, "the stage to end")
        stopped = svc.last_step(info.id) or 0
        assert stopped < 40
        wait_for(lambda: svc.list_jobs()[0][0].status == "interrupted", 20, "interrupted")
        saved = max(int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")
                    if (p / "trainer_state.json").is_file())

        svc.resume(info.id, actor=ADMIN)
        assert Worker(settings, db).run_one() == info.id
        done = svc.get(info.id)
        assert done.status == "succeeded", done.error
        metrics = svc.metrics(info.id)
        assert metrics.attempt_starts[2] == saved + 1  # not from zero
        assert metrics.series["loss"].steps == list(range(1, 41))
        manifest = json.loads((Path(info.artifact_dir) / "manifest.json").read_text())
        assert json.dumps(manifest).count(f"checkpoint-{saved}") >= 1
    finally:
        db.dispose()
