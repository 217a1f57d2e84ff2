"""Training tab, issue 14: a failed job says why in one line first (the full error folded
away), progress as step-of-total with an ETA, cancel only for unfinished jobs, job and dataset
labels that do not go stale or repeat themselves, and the RL form's reward-model list follows
a reward model job that just succeeded."""

from __future__ import annotations

import re
from datetime import timedelta

import gradio as gr
import pytest

from backend.access import local_admin
from backend.services.container import Services
from db import job_repo, training_repo
from db.base_models import utcnow
from studio.render import error_cause
from studio.training_handlers import InputSlot, TrainingHandlers
from tests.backend.services.test_jobs import sft_config, sl_cai_dataset
from tests.studio.test_training_handlers import finish, stage

ADMIN = local_admin("tester")
TRACEBACK = ("The stage exited with code 1. Last lines of log.txt:\n"
             "Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n"
             "    main()\nOSError: We couldn't connect to 'https://huggingface.co' to load "
             "the files of nobody/model.\n")


@pytest.fixture
def h(services: Services) -> TrainingHandlers:
    return TrainingHandlers(services)


def test_error_cause_is_the_exception_line() -> None:
    assert error_cause(TRACEBACK).startswith("OSError: We couldn't connect")
    assert error_cause("Cancelled on request.") == "Cancelled on request."
    assert error_cause("") == ""


def test_failed_job_says_why_first_and_folds_the_traceback(services: Services,
                                                           h: TrainingHandlers) -> None:
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)), actor=ADMIN)
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job.id, status="failed", exit_code=1, error=TRACEBACK,
                            finished_at=utcnow())
    status = h.status(job.id)
    first = status.split("\n", 1)[0]
    assert first.startswith("**Why it failed:** OSError\\: We couldn\\'t connect")
    assert "Traceback" not in status and "File" not in status
    cancel, resume, details = h.controls(job.id)
    assert cancel["interactive"] is False and resume["interactive"] is True
    assert details == TRACEBACK


def test_cancel_only_while_unfinished(services: Services, h: TrainingHandlers) -> None:
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)), actor=ADMIN)
    cancel, resume, details = h.controls(job.id)
    assert cancel["interactive"] is True and resume["interactive"] is False and details == ""
    finish(services, job.id)
    assert h.controls(job.id)[0]["interactive"] is False
    assert h.controls(None)[0]["interactive"] is False


def test_progress_shows_step_of_total_and_eta(services: Services, h: TrainingHandlers) -> None:
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services), max_steps=100),
                               actor=ADMIN)
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job.id, status="running",
                            started_at=utcnow() - timedelta(seconds=50), heartbeat_at=utcnow())
        job_repo.add_metrics(s, job_id=job.id, attempt=1, new_offset=2,
                             points=[(0, 0, 1.0, {"loss": 2.0}), (1, 49, 2.0, {"loss": 1.0})])
    status = h.status(job.id)
    assert "step 49 of 100" in status
    assert h.queue(1, "")[0][0][5] == "49 / 100"
    # 50 steps took about 50 s: the 51 left take about as long
    assert re.search(r"about (5\d) s left", status), status


def test_labels_do_not_go_stale_or_repeat(services: Services, h: TrainingHandlers) -> None:
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)), actor=ADMIN,
                               name="first")
    assert h.job_choices() == [(f"#{job.id} first · sft", job.id)]
    with services.db.write() as s:
        training_repo.create_dataset(
            s, kind="sl_cai", name=f"SL-CAI data (job {job.id})", job_id=job.id,
            constitution_version_id=None, model="m", config={}, source="s",
            source_sha256="1" * 64, created_by="t")
    spec = next(f for f in stage(services, "sft").fields if f.name == "sl_cai_dataset_id")
    labels = [c[0] for c in h.slot_update(InputSlot("sft", spec))["choices"]]
    assert any(label.endswith(f"(job {job.id})") for label in labels)
    assert not any(f"(job {job.id}) (job {job.id})" in label for label in labels)


def test_reward_models_follow_a_succeeded_job(services: Services, h: TrainingHandlers) -> None:
    spec = next(f for f in stage(services, "rl").fields if f.name == "reward_models")
    before = h.slot_update(InputSlot("rl", spec))
    assert "No reward model" in before["info"]
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)), actor=ADMIN)
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job.id, kind="reward")
    finish(services, job.id)
    after = h.slot_update(InputSlot("rl", spec))
    assert after["value"] == f"job:{job.id}=1.0" and "No reward model" not in after["info"]
    assert gr.skip() != after


def test_a_job_that_succeeds_refreshes_the_forms_on_the_next_poll(
        services: Services, h: TrainingHandlers) -> None:
    spec = next(f for f in stage(services, "rl").fields if f.name == "reward_models")
    slots = [InputSlot("rl", spec)]
    updates, seen = h.refresh_if_new(slots, None)  # the first poll only takes note
    assert updates == [gr.skip()] and seen == 0
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)), actor=ADMIN)
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job.id, kind="reward")
    finish(services, job.id)  # not the job the page follows: it still shows up
    updates, seen = h.refresh_if_new(slots, seen)
    assert seen == 1 and updates[0]["value"] == f"job:{job.id}=1.0"
    assert h.refresh_if_new(slots, seen) == ([gr.skip()], 1)
    relisted = h.relist_inputs(slots)[0]  # opening the tab: new lists, the user's pick kept
    assert "value" not in relisted and f"job:{job.id}" in relisted["info"]
