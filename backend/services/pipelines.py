"""Pipelines: the paper's recipe queued by one launch (issue 17).

SL-CAI data → SFT → AI preference labels on the SFT model's samples → reward model → RL (KL to
the SFT policy), each an ordinary job, chained by ``job_dependency`` rows: the worker claims a
job only when the jobs it needs succeeded, and a failed or cancelled stage stops the jobs after
it with a message naming it (``db.pipeline_repo.stop_blocked``). Later stages name earlier
outputs by job reference (``model: job:<sft>``, ``sl_cai_dataset_id: job:<data>``, filled in
at claim time by ``backend.jobs.dependencies``). When the last job succeeded, :meth:`advance`
starts the comparison of the final policy against the base model and the SFT policy (judged by
the studio's engine under the pipeline's constitution version, scored by the pipeline's reward
model). Every stage resumes as a job does; :meth:`resume` resumes every stopped stage in order.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.access import Action, Principal, Role, require
from backend.common.job_files import JobDir
from backend.errors import NotFoundError, StudioError, ValidationError
from backend.services.comparisons import (
    ComparisonConfig,
    ComparisonInfo,
    ComparisonService,
    PromptItem,
)
from backend.services.constitutions import ConstitutionService
from backend.services.jobs import RESUMABLE, JobInfo, JobService
from db import job_repo, pipeline_repo
from db.engine import Database
from db.pipeline_models import Pipeline

log = logging.getLogger(__name__)
STAGES = ("sl_cai_data", "sft", "preference_data", "reward", "rl")
# the fields of each stage that name an earlier stage's output (checked when it is claimed)
DEFERRED: dict[str, frozenset[str]] = {
    "sl_cai_data": frozenset(), "sft": frozenset({"sl_cai_dataset_id"}),
    "preference_data": frozenset({"model", "sl_cai_dataset_id"}),
    "reward": frozenset({"preference_dataset_id"}),
    "rl": frozenset({"model", "reward_models"}),
}
COMMON_KEYS = ("seed", "device")


@dataclass(frozen=True)
class PipelineSpec:
    """What a launch names. ``stages`` holds each stage's own fields (overrides of the stage
    defaults, e.g. ``{"sft": {"max_steps": 2}}``); ``comparison`` the final comparison's
    settings (``max_prompts``, ``max_new_tokens``, ``batch_size``, ``prompts``: a list of
    prompt texts; none: the default prompt set)."""

    base_model: str = "tiny"
    constitution_version_id: int | None = None
    prompt_set: str = "default"
    seed: int = 0
    device: str = "auto"
    name: str = ""
    stages: dict[str, dict[str, Any]] | None = None
    comparison: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"base_model": self.base_model, "prompt_set": self.prompt_set, "seed": self.seed,
                "device": self.device, "stages": copy.deepcopy(self.stages or {}),
                "comparison": copy.deepcopy(self.comparison or {})}


@dataclass(frozen=True)
class StageView:
    position: int
    stage: str
    job: JobInfo
    needs: list[int]


@dataclass(frozen=True)
class PipelineInfo:
    id: int
    name: str
    constitution_version_id: int
    config: dict[str, Any]
    comparison_id: int | None
    error: str
    created_by: str
    created_at: datetime
    stages: list[StageView]
    comparison: ComparisonInfo | None

    @property
    def status(self) -> str:
        """queued, running, comparing, succeeded, or the status of the stage that stopped it."""
        statuses = [s.job.status for s in self.stages]
        for bad in ("failed", "cancelled", "interrupted"):
            if bad in statuses:
                return bad
        if "running" in statuses:
            return "running"
        if "queued" in statuses:
            return "queued"
        if self.error:
            return "failed"
        if self.comparison is None:
            return "comparing"
        return {"done": "succeeded", "failed": "failed",
                "cancelled": "cancelled"}.get(self.comparison.status, "comparing")

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def job_of(self, stage: str) -> JobInfo:
        return next(s.job for s in self.stages if s.stage == stage)


def stage_configs(spec: PipelineSpec, version_id: int, ids: dict[str, int]
                  ) -> dict[str, dict[str, Any]]:
    """Each stage's config; ``ids`` are the stages' job ids (later stages refer to them)."""
    over = spec.stages or {}
    unknown = set(over) - set(STAGES)
    if unknown:
        raise ValidationError(f"Unknown pipeline stages {sorted(unknown)}; use "
                              f"{', '.join(STAGES)}.")
    common: dict[str, Any] = {"seed": spec.seed, "device": spec.device}

    def ref(stage: str) -> str:
        return f"job:{ids[stage]}"

    base: dict[str, dict[str, Any]] = {
        "sl_cai_data": {"model": spec.base_model, "prompt_set": spec.prompt_set,
                        "constitution_version_id": version_id},
        "sft": {"model": spec.base_model, "sl_cai_dataset_id": ref("sl_cai_data")},
        "preference_data": {"model": ref("sft"), "prompt_set": spec.prompt_set,
                            "constitution_version_id": version_id},
        "reward": {"model": spec.base_model, "label_source": "ai",
                   "preference_dataset_id": ref("preference_data")},
        "rl": {"model": ref("sft"), "prompt_set": spec.prompt_set,
               "reward_models": [{"model": ref("reward"), "weight": 1.0}]},
    }
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        mine = dict(over.get(stage) or {})
        clash = DEFERRED[stage] & set(mine)
        if clash:
            raise ValidationError(f"{stage}: {sorted(clash)} come from the earlier stages of "
                                  "the pipeline; leave them out.")
        out[stage] = {**common, **base[stage], **mine}
    if out["preference_data"].get("source") == "revisions":  # pairs from the SL-CAI data
        out["preference_data"]["sl_cai_dataset_id"] = ref("sl_cai_data")
    return out


def _prompt_item(value: object) -> PromptItem:
    """A comparison prompt: a text, or {"text": ..., "tags": [...]} (tags such as helpful or
    red-team put it on an axis of the report)."""
    if isinstance(value, dict):
        tags = value.get("tags") or []
        return PromptItem(str(value.get("text", "")),
                          tuple(str(t) for t in tags) if isinstance(tags, list) else ())
    return PromptItem(str(value))


class PipelineService:
    def __init__(self, db: Database, settings_data_dir: Path, jobs: JobService,
                 comparisons: ComparisonService, constitutions: ConstitutionService) -> None:
        self._db = db
        self._data_dir = settings_data_dir
        self._jobs = jobs
        self._comparisons = comparisons
        self._constitutions = constitutions
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # --- launching -----------------------------------------------------------------------------

    def launch(self, spec: PipelineSpec, *, actor: Principal) -> PipelineInfo:
        """Validate every stage, then queue the five jobs with their dependencies in one
        transaction; nothing is queued when a stage's config has a problem."""
        require(actor, Action.LAUNCH_PIPELINE)
        version_id = self._version(spec.constitution_version_id)
        placeholder = {stage: 1 for stage in STAGES}
        problems: list[str] = []
        for stage, config in stage_configs(spec, version_id, placeholder).items():
            try:
                self._jobs.validate(stage, config, deferred=DEFERRED[stage])
            except ValidationError as exc:
                problems.extend(f"{stage}.{p}" for p in (exc.problems or [exc.message]))
        self._comparison_config(spec)
        if problems:
            raise ValidationError("The pipeline has problems; fix them and launch it again.",
                                  problems)
        version = self._constitutions.version(version_id)
        label = (spec.name.strip() or f"{version.constitution.name} v{version.info.number} · "
                 f"{spec.base_model}")[:200]
        with self._db.write() as s:
            row = pipeline_repo.create_pipeline(s, name=label, constitution_version_id=version_id,
                                                config=spec.as_dict(), created_by=actor.name)
            assert row.id is not None
            ids: dict[str, int] = {}
            for position, stage in enumerate(STAGES):
                # the configs of later stages name the job ids of earlier ones
                configs = stage_configs(spec, version_id, {**placeholder, **ids})
                config = self._jobs.validate(stage, configs[stage], deferred=DEFERRED[stage])
                job = job_repo.create_job(
                    s, kind=stage, name=f"pipeline {row.id} · {stage}", config=config,
                    status="queued", constitution_version_id=version_id,
                    created_by=actor.name)
                assert job.id is not None
                ids[stage] = job.id
                files = JobDir.of(self._data_dir, job.id)
                job.artifact_dir = str(files.root)
                s.add(job)
                self._jobs._write_job_json(job, files)
                needs = [ids[STAGES[position - 1]]] if position else []
                if stage == "rl":  # the reward model and the SFT policy
                    needs = [ids["sft"], ids["reward"]]
                pipeline_repo.add_stage(s, pipeline_id=row.id, position=position, stage=stage,
                                        job_id=job.id, needs=needs)
            from db.audit_chain import append_event

            append_event(s, actor=actor.name, action="pipeline.launch", entity_type="pipeline",
                         entity_id=str(row.id), payload={"name": label, "jobs": ids,
                                                         "constitution_version_id": version_id})
            pipeline_id = row.id
        return self.get(pipeline_id)

    def _version(self, version_id: int | None) -> int:
        if version_id is not None:
            self._constitutions.version(version_id)
            return version_id
        listed = self._constitutions.list_all()
        if not listed:
            raise ValidationError("There is no constitution yet; create one in the "
                                  "Constitution tab.")
        head = self._constitutions.head(min(c.id for c in listed))
        return head.info.id

    @staticmethod
    def _comparison_config(spec: PipelineSpec) -> ComparisonConfig:
        raw = dict(spec.comparison or {})
        raw.pop("prompts", None)
        known = set(ComparisonConfig.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValidationError(f"comparison: unknown settings {sorted(unknown)}.")
        config = ComparisonConfig.of({"seed": spec.seed, **raw})
        config.validate()
        return config

    # --- reading -------------------------------------------------------------------------------

    def get(self, pipeline_id: int) -> PipelineInfo:
        with self._db.read() as s:
            row = pipeline_repo.get_pipeline(s, pipeline_id=pipeline_id)
            if row is None:
                raise NotFoundError(f"No pipeline with id {pipeline_id}.")
            stages = [StageView(st.position, st.stage, JobInfo.of(job),
                                pipeline_repo.dependencies(s, job_id=job.id or 0))
                      for st, job in pipeline_repo.stages(s, pipeline_id=pipeline_id)]
            return self._info(row, stages)

    def _info(self, row: Pipeline, stages: list[StageView]) -> PipelineInfo:
        assert row.id is not None
        comparison = None
        if row.comparison_id is not None:
            comparison = self._comparisons.get(row.comparison_id)
        return PipelineInfo(row.id, row.name, row.constitution_version_id, dict(row.config),
                            row.comparison_id, row.error, row.created_by, row.created_at,
                            stages, comparison)

    def list_all(self) -> list[PipelineInfo]:
        with self._db.read() as s:
            ids = [r.id for r in pipeline_repo.list_pipelines(s) if r.id is not None]
        return [self.get(i) for i in ids]

    # --- moving on -----------------------------------------------------------------------------

    def advance(self, pipeline_id: int) -> PipelineInfo:
        """Stop the jobs a failed stage blocks, and start the final comparison once every job
        succeeded (idempotent; the UI's refresh, the watcher and ``wait`` call it)."""
        with self._db.write() as s:
            pipeline_repo.stop_blocked(s)
        with self._lock:
            info = self.get(pipeline_id)
            if info.comparison_id is not None or info.error or \
                    any(st.job.status != "succeeded" for st in info.stages):
                return info
            try:
                comparison = self._start_comparison(info)
            except StudioError as exc:
                with self._db.write() as s:
                    pipeline_repo.set_error(s, pipeline_id=pipeline_id,
                                            error=f"The final comparison could not start: "
                                                  f"{exc.message}")
                return self.get(pipeline_id)
            with self._db.write() as s:
                pipeline_repo.set_comparison(s, pipeline_id=pipeline_id,
                                             comparison_id=comparison.id)
        return self.get(pipeline_id)

    def _start_comparison(self, info: PipelineInfo) -> ComparisonInfo:
        spec = info.config
        config = self._comparison_config(PipelineSpec(
            seed=int(spec.get("seed", 0)), comparison=dict(spec.get("comparison") or {})))
        # the pipeline's reward model, and any named in the comparison settings (a judge
        # trained elsewhere, e.g. on human labels)
        rewards = [f"job:{info.job_of('reward').id}", *config.reward_models]
        config = ComparisonConfig.of({**config.as_dict(),
                                      "reward_models": list(dict.fromkeys(rewards))})
        from backend.training.models import resolve

        base = resolve(str(spec.get("base_model") or "tiny"), db=self._db,
                       data_dir=self._data_dir, build_tiny=True)
        texts = (spec.get("comparison") or {}).get("prompts")
        prompts = [_prompt_item(t) for t in texts] if isinstance(texts, list) else None
        actor = Principal(info.created_by, Role.AUTHOR)  # the launch authorised the comparison
        comparison = self._comparisons.create(
            policies=[base.location, f"job:{info.job_of('sft').id}",
                      f"job:{info.job_of('rl').id}"],
            version_id=info.constitution_version_id, config=config, actor=actor,
            prompts=prompts, name=f"pipeline {info.id} · base vs SFT vs RL")
        self._comparisons.start(comparison.id, actor=actor)
        return comparison

    def advance_all(self) -> None:
        for info in self.list_all():
            if not info.finished:
                try:
                    self.advance(info.id)
                except Exception:  # one broken pipeline must not stop the others
                    log.exception("pipeline %s: advancing failed", info.id)

    def start_watcher(self, poll_s: float = 2.0) -> None:
        """A daemon thread that advances unfinished pipelines (started with the UI)."""
        if self._watcher is not None and self._watcher.is_alive():
            return

        def loop() -> None:
            while not self._stop.wait(poll_s):
                self.advance_all()

        self._watcher = threading.Thread(target=loop, name="pipeline-watcher", daemon=True)
        self._watcher.start()

    def stop_watcher(self) -> None:
        self._stop.set()

    def wait(self, pipeline_id: int, timeout: float, poll: float = 1.0) -> PipelineInfo:
        """Advance until the pipeline (with its comparison) is finished or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.advance(pipeline_id)
            if info.comparison is not None and info.comparison.status in ("queued", "running"):
                self._comparisons.wait(info.comparison.id, timeout=poll)
                info = self.get(pipeline_id)
            if info.finished or time.monotonic() >= deadline:
                return info
            time.sleep(poll)

    # --- cancel and resume ---------------------------------------------------------------------

    def cancel(self, pipeline_id: int, *, actor: Principal) -> PipelineInfo:
        """Cancel every unfinished stage (the running one is asked to stop) and the comparison."""
        require(actor, Action.LAUNCH_PIPELINE)
        info = self.get(pipeline_id)
        stage_actor = Principal(actor.name, Role.OPERATOR)
        for st in reversed(info.stages):  # the last first, so none starts meanwhile
            if not self._jobs.get(st.job.id).finished:
                try:
                    self._jobs.cancel(st.job.id, actor=stage_actor)
                except ValidationError:  # it finished (or was stopped) just now
                    continue
        if info.comparison is not None and info.comparison.status in ("queued", "running"):
            self._comparisons.cancel(info.comparison.id, actor=Principal(actor.name, Role.AUTHOR))
        return self.advance(pipeline_id)

    def resume(self, pipeline_id: int, *, actor: Principal) -> PipelineInfo:
        """Queue every stopped stage again (each continues from its checkpoint, as a job's
        resume does), and resume or retry the final comparison."""
        require(actor, Action.LAUNCH_PIPELINE)
        info = self.get(pipeline_id)
        stage_actor = Principal(actor.name, Role.OPERATOR)
        resumed = [st for st in info.stages if st.job.status in RESUMABLE]
        for st in resumed:
            self._jobs.resume(st.job.id, actor=stage_actor)
        if info.error:
            with self._db.write() as s:
                pipeline_repo.set_error(s, pipeline_id=pipeline_id, error="")
        if info.comparison is not None and info.comparison.status in ("failed", "cancelled"):
            self._comparisons.start(info.comparison.id, actor=Principal(actor.name, Role.AUTHOR))
        elif not resumed and not info.error and info.comparison is None and \
                info.status != "comparing":
            raise ValidationError(f"Pipeline {pipeline_id} is {info.status}; nothing to resume.")
        return self.advance(pipeline_id)
