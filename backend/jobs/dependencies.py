"""Job references in a queued job's config, filled in when the worker claims it (issue 17).

A pipeline queues its jobs before any has run, so a later stage's config names the outputs of
earlier stages by job: ``model: "job:12"`` (already read by the stages: the job's output model)
and, for datasets, ``sl_cai_dataset_id: "job:11"`` / ``preference_dataset_id: "job:13"``: the
dataset that job made. The worker claims a job only when every job it needs has succeeded
(``db.job_repo.claim_next``); then :func:`fill_dataset_refs` puts the dataset ids in the job's
config and in its job.json, so the stage sees an ordinary config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from backend.common.job_files import JobDir
from backend.errors import StudioError
from db import job_repo, training_repo
from db.engine import Database
from db.job_models import Job

JOB_REF = re.compile(r"^job:(\d+)$")
# config field -> the kind of dataset the referenced job made
DATASET_FIELDS = {"sl_cai_dataset_id": "sl_cai", "preference_dataset_id": "preference"}


def job_ref(value: object) -> int | None:
    """The job id of a ``job:<id>`` reference, else None."""
    if isinstance(value, str) and (match := JOB_REF.match(value.strip())):
        return int(match.group(1))
    return None


def fill_dataset_refs(db: Database, job: Job) -> None:
    """Replace in the job every dataset field that names a job replaced by that job's dataset id
    (stored in the row and in job.json); StudioError when the job made no such dataset."""
    assert job.id is not None
    config = dict(job.config)
    changed = False
    with db.read() as s:
        for name, kind in DATASET_FIELDS.items():
            upstream = job_ref(config.get(name))
            if upstream is None:
                continue
            row = training_repo.dataset_of_job(s, job_id=upstream, kind=kind)
            if row is None or row.id is None:
                raise StudioError(f"{name}: job {upstream} made no {kind} dataset; run that "
                                  "stage (or resume it) first.")
            config[name] = row.id
            changed = True
    if not changed:
        return
    with db.write() as s:
        job_repo.update_job(s, job_id=job.id, config=config)
    files = JobDir(Path(job.artifact_dir))
    data = files.read_job_json()
    data["config"] = config
    data.pop("format_version", None)
    files.write_job_json(data)
    os.chmod(files.job_json, 0o600)  # it holds the database URL
    job.config = config
