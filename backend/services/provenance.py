"""Provenance of a trained model: from a training job back through the jobs it built on, to
the datasets it was trained on, the samples in them, and the critique-log records and
principles that produced each sample (then the Audit tab's record view takes over)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backend.errors import NotFoundError
from db import provenance_repo as repo
from db.audit_search_repo import SearchFilters
from db.engine import Database

TRAINING_DATASET_KEYS = ("sl_cai_dataset_id", "preference_dataset_id")
HUMAN_DATASET_KEYS = ("pair_dataset_id", "helpful_dataset_id")
_JOB_REF = re.compile(r"^job:(\d+)$")
MAX_DEPTH = 10


@dataclass(frozen=True)
class SampleLink:
    position: int
    prompt: str
    record_ids: list[int]
    principle_keys: list[str]


@dataclass(frozen=True)
class DatasetLink:
    id: int
    kind: str  # sl_cai | preference | human pairs
    name: str
    made_by_job: int | None
    constitution_version_id: int | None
    samples: int
    first_samples: list[SampleLink] = field(default_factory=list)

    @property
    def filters(self) -> SearchFilters | None:
        """Search filters showing every critique-log record behind this dataset."""
        return None if self.kind == "human pairs" else SearchFilters(training_dataset_id=self.id)


@dataclass(frozen=True)
class JobLink:
    id: int
    kind: str
    name: str
    status: str
    constitution_version_id: int | None
    via: str  # how the job we started from depends on it ("" for that job)


@dataclass(frozen=True)
class RunProvenance:
    jobs: list[JobLink]
    datasets: list[DatasetLink]


def _job_refs(config: dict[str, object]) -> list[tuple[str, int]]:
    refs: list[tuple[str, int]] = []
    model = config.get("model")
    if isinstance(model, str) and (m := _JOB_REF.match(model)):
        refs.append(("model", int(m.group(1))))
    rms = config.get("reward_models")
    if isinstance(rms, list):
        for rm in rms:
            ref = rm.get("model") if isinstance(rm, dict) else None
            if isinstance(ref, str) and (m := _JOB_REF.match(ref)):
                refs.append(("reward model", int(m.group(1))))
    return refs


class ProvenanceService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def run(self, job_id: int, *, samples: int = 5) -> RunProvenance:
        """The job, the jobs it built on (model and reward models, transitively), and every
        dataset they were trained on or made, with their first samples' links."""
        with self._db.read() as s:
            if repo.get_job(s, job_id=job_id) is None:
                raise NotFoundError(f"No training job with id {job_id}; see the Training tab.")
            jobs: list[JobLink] = []
            dataset_refs: dict[tuple[str, int], str] = {}
            queue: list[tuple[int, str, int]] = [(job_id, "", 0)]
            seen: set[int] = set()
            while queue:
                jid, via, depth = queue.pop(0)
                job = repo.get_job(s, job_id=jid)
                if job is None or jid in seen or depth > MAX_DEPTH:
                    continue
                seen.add(jid)
                config = dict(job.config)
                jobs.append(JobLink(jid, job.kind, job.name, job.status,
                                    job.constitution_version_id, via))
                for key in TRAINING_DATASET_KEYS + HUMAN_DATASET_KEYS:
                    value = config.get(key)
                    if isinstance(value, int):
                        kind = "training" if key in TRAINING_DATASET_KEYS else "human"
                        dataset_refs.setdefault((kind, value), key)
                for label, ref in _job_refs(config):
                    queue.append((ref, f"{label} of job {jid}", depth + 1))
            for made in repo.datasets_made_by(s, job_ids=sorted(seen)):
                if made.id is not None:
                    dataset_refs.setdefault(("training", made.id), "made")
            datasets: list[DatasetLink] = []
            for (kind, did), _ in sorted(dataset_refs.items(), key=lambda kv: kv[0][1]):
                if kind == "human":
                    pair = repo.get_pair_dataset(s, dataset_id=did)
                    if pair is not None:
                        datasets.append(DatasetLink(did, "human pairs", pair.name, None, None,
                                                    pair.item_count))
                    continue
                row = repo.get_training_dataset(s, dataset_id=did)
                if row is None:
                    continue
                links = [SampleLink(*x) for x in repo.sample_links(s, dataset_id=did,
                                                                   limit=samples)]
                datasets.append(DatasetLink(did, row.kind, row.name, row.job_id,
                                            row.constitution_version_id,
                                            repo.count_samples(s, dataset_id=did), links))
        return RunProvenance(jobs, datasets)
