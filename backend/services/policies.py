"""Policies a comparison can include, and the engine that answers for each.

A policy reference is ``base`` (the active engine's model), ``job:<id>`` (the ``output/`` model
of a succeeded SFT, RL or DPO job), ``server:<model>`` (a model on the configured
OpenAI-compatible server) or a local model directory. Local checkpoints are loaded one at a
time and closed after use, so a comparison of several trained models needs only one in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from backend.engines import factory
from backend.engines.base import Engine
from backend.errors import EngineError, NotFoundError, ValidationError
from backend.services.engines import EngineManager
from backend.services.jobs import JobService
from backend.training.models import job_output_dir
from db.engine import Database


@dataclass(frozen=True)
class Policy:
    ref: str
    label: str
    kind: str  # base | job | server | local
    location: str  # the model name or directory
    job_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def of(data: dict[str, object]) -> Policy:
        job_id = data.get("job_id")
        return Policy(str(data["ref"]), str(data["label"]), str(data["kind"]),
                      str(data["location"]), int(job_id) if isinstance(job_id, int) else None)


class PolicyResolver:
    def __init__(self, db: Database, engines: EngineManager, jobs: JobService,
                 data_dir: Path) -> None:
        self._db = db
        self._engines = engines
        self._jobs = jobs
        self._data_dir = data_dir

    def options(self) -> list[Policy]:
        """The base model, every succeeded model-training job (newest first), and the
        configured server's model."""
        found: list[Policy] = []
        with suppress(EngineError):  # no engine could be built: the trained models still are
            found.append(self.resolve("base"))
        for job in self._jobs.finished_of_kinds(self._jobs.policy_kinds()):
            try:
                found.append(self.resolve(f"job:{job.id}"))
            except ValidationError:  # its output was removed
                continue
        config = self._engines.config
        if config.base_url and config.model and config.kind in ("auto", "openai_compat"):
            found.append(self.resolve(f"server:{config.model}"))
        return found

    def resolve(self, ref: str) -> Policy:
        ref = ref.strip()
        if ref == "base":
            info = self._engines.get().info
            return Policy("base", f"base · {info.model}", "base", info.model)
        if ref.startswith("job:"):
            try:
                job_id = int(ref[4:])
            except ValueError:
                raise ValidationError(f"{ref!r}: write a job reference as job:<id>.") from None
            try:
                job = self._jobs.get(job_id)
            except NotFoundError:
                raise ValidationError(f"{ref!r}: there is no job {job_id}.") from None
            if job.kind not in self._jobs.policy_kinds():
                raise ValidationError(f"{ref!r} is a {job.kind} job, which makes no policy; "
                                      f"pick a {', '.join(self._jobs.policy_kinds())} job.")
            where = job_output_dir(job_id, db=self._db, data_dir=self._data_dir)
            return Policy(ref, f"job:{job_id} {job.kind} · {job.name}"[:120], "job", str(where),
                          job_id)
        if ref.startswith("server:"):
            model = ref[7:].strip()
            if not (model and self._engines.config.base_url):
                raise ValidationError(f"{ref!r}: configure the server's base URL "
                                      "(CSTUDIO_ENGINE_BASE_URL) and name its model.")
            return Policy(ref, f"server · {model}", "server", model)
        path = Path(ref).expanduser()
        if path.is_dir() and (path / "config.json").is_file():
            return Policy(ref, f"local · {path.name}", "local", str(path.resolve()))
        raise ValidationError(f"Unknown policy {ref!r}; use base, job:<id>, server:<model> or a "
                              "saved model directory.")

    def reward_model(self, ref: str) -> str:
        """The model folder of a succeeded reward-model job (``job:<id>``)."""
        ref = ref.strip()
        if not ref.startswith("job:") or not ref[4:].isdigit():
            raise ValidationError(f"Reward model {ref!r}: write it as job:<id> of a reward job.")
        job_id = int(ref[4:])
        try:
            job = self._jobs.get(job_id)
        except NotFoundError:
            raise ValidationError(f"Reward model {ref!r}: there is no job {job_id}.") from None
        if job.kind != "reward":
            raise ValidationError(f"Reward model {ref!r} is a {job.kind} job; pick a reward "
                                  "job.")
        return str(job_output_dir(job_id, db=self._db, data_dir=self._data_dir))

    def reward_options(self) -> list[str]:
        return [f"job:{j.id}" for j in self._jobs.finished_of_kinds(["reward"])]

    def build(self, policy: Policy) -> tuple[Engine, bool]:
        """The engine that answers for ``policy`` and whether the caller owns it (must close
        it): the base model is the studio's own engine; the others are built here."""
        if policy.kind == "base":
            engine = self._engines.get()
            if engine.info.model != policy.location:
                raise EngineError(f"The comparison's base model was {policy.location} but the "
                                  f"active engine is now {engine.info.model}; switch back in "
                                  "Settings, or start a new comparison.")
            return engine, False
        if policy.kind == "server":
            config = self._engines.config
            return factory.build_openai_compat(config.base_url, policy.location, config.api_key,
                                               max_in_flight=config.max_in_flight,
                                               timeout_s=config.timeout_s), True
        return factory.build_local(policy.location, display_name=policy.label), True

    @contextmanager
    def engine(self, policy: Policy) -> Iterator[Engine]:
        """The engine that answers for ``policy`` (built for the block, then closed; the base
        model is the studio's own engine and stays open)."""
        built, owned = self.build(policy)
        try:
            yield built
        finally:
            if owned:
                built.close()
