"""The bar: a 2,000-pair evaluation on the tiny model runs to completion in the background;
killing the process half-way and restarting resumes it without redoing or losing verdicts."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.access import local_admin
from backend.services.container import start
from backend.services.evaluations import EvaluationConfig
from backend.settings import Settings
from tests.conftest import SHARED_DATA

AS_T = local_admin("t")

HH = SHARED_DATA / "hh-rlhf" / "harmless-base-test.first2000.jsonl.gz"
pytestmark = pytest.mark.slow


def _verdicts(db_file: Path, run_id: int) -> dict[int, tuple[int, float]]:
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT item_id, id, p_a FROM verdict WHERE evaluation_id = ?",
                            (run_id,)).fetchall()
    return {item: (vid, p) for item, vid, p in rows}


def test_kill_half_way_then_resume_in_the_background(tmp_path: Path,
                                                     tiny_model_path: Path) -> None:
    if not HH.is_file():
        pytest.skip("shared HH-RLHF sample not available")
    env = {**os.environ, "CSTUDIO_DATA_DIR": str(tmp_path / "data"), "CSTUDIO_ENGINE": "local",
           "CSTUDIO_LOCAL_MODEL": str(tiny_model_path), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    settings = Settings(data_dir=tmp_path / "data", engine="local",
                        local_model=str(tiny_model_path), user="tester")
    services = start(settings)
    dataset = services.datasets.import_file(HH.name, HH.read_bytes(), "hh_rlhf", actor=AS_T)
    assert dataset.item_count > 1900
    head = services.constitutions.list_all()[0].head.id
    run = services.evaluations.create(dataset_id=dataset.id, version_id=head,
                                      config=EvaluationConfig(batch_size=64, use_few_shots=False),
                                      actor=AS_T)
    services.close()
    db_file = tmp_path / "data" / "studio.db"

    worker = subprocess.Popen(
        [sys.executable, "-c", "from studio.cli import main; main()", "eval", "run",
         str(run.id)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_verdicts(db_file, run.id)) < run.total_count // 2:
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else b""
        assert time.monotonic() < deadline, "the run made too little progress"
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    before = _verdicts(db_file, run.id)
    assert run.total_count // 2 <= len(before) < run.total_count

    services = start(settings)
    try:
        assert services.evaluations.get(run.id).status == "running"  # as the killed run left it
        resumed = services.evaluations.resume_unfinished(actor=AS_T)  # what `serve` does
        assert resumed == [run.id]
        finished = services.evaluations.wait(run.id, timeout=600)
        assert finished.status == "done" and finished.done_count == run.total_count
        after = _verdicts(db_file, run.id)
        assert len(after) == run.total_count
        assert {item: after[item] for item in before} == before  # nothing redone or lost
        assert services.critique_log.verify() == []
        report = services.agreement.report(run.id, n_boot=100)
        assert report.summary.n == run.total_count
    finally:
        services.close()
