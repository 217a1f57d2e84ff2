"""Agreement runs: judge a dataset (or a seeded sample) under one constitution version.

A run is stored first (its item list fixed at creation), then judged in chunks in a background
thread: that thread makes the model calls while one writer thread stores finished chunks from a
bounded queue, one transaction per chunk holding its critique-log records (one multi-row
insert), its verdicts and the progress counter. At most one verdict per (run, item) can exist,
so a run that stops for any reason — cancel, crash, restart — resumes with the items that have
no verdict yet; nothing acknowledged is redone or lost, and since log records commit with their
verdicts, an interrupted chunk leaves nothing behind. An item the engine cannot score is stored
as unscorable (with the engine's top tokens) and the run goes on; a run that fails records why
and is marked ``failed``, which start-up does not resume.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.access import Action, Principal, require
from backend.cai.labeling import LabelConfig, PairItem, Verdict, label_pairs
from backend.cai.parsed_judge import JUDGE_MODES, hard_label_fields
from backend.errors import NotFoundError, ValidationError
from backend.services.constitutions import ConstitutionService
from backend.services.critique_log import CritiqueLogService, DeferredStepLogger
from backend.services.engines import EngineManager
from backend.services.judging import JudgingService
from db import dataset_repo
from db import evaluation_repo as repo
from db.audit_chain import append_event
from db.engine import Database
from db.evaluation_models import Evaluation

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class EvaluationConfig:
    sample_size: int | None = None  # None: every item of the dataset
    seed: int = 0
    cot: bool = False
    both_orders: bool = True
    k_principles: int = 1
    cot_clamp: tuple[float, float] | None = (0.4, 0.6)
    form: str = "chat"
    batch_size: int = 32
    use_few_shots: bool = True  # the constitution's labelling examples in front of questions
    judge: str = "scored"  # scored: soft labels (logprobs); parsed: hard labels from answers

    def label_config(self) -> LabelConfig:
        return LabelConfig(cot=self.cot, both_orders=self.both_orders,
                           k_principles=self.k_principles, cot_clamp=self.cot_clamp,
                           form="raw" if self.form == "raw" else "chat", seed=self.seed,
                           use_few_shots=self.use_few_shots,
                           judge="parsed" if self.judge == "parsed" else "scored")

    def validate(self) -> None:
        if self.judge not in JUDGE_MODES:
            raise ValidationError(f"Judge mode {self.judge!r}: use scored or parsed.")
        if self.sample_size is not None and self.sample_size < 1:
            raise ValidationError("sample_size must be at least 1 (or empty for all items).")
        if not 1 <= self.batch_size <= 1024:
            raise ValidationError("batch_size must be between 1 and 1024.")
        self.label_config().validate()


@dataclass(frozen=True)
class EvaluationInfo:
    id: int
    name: str
    dataset_id: int
    constitution_version_id: int
    engine_kind: str
    model: str
    config: dict[str, object]
    status: str
    done_count: int
    total_count: int
    error: str
    created_at: datetime
    updated_at: datetime

    @property
    def progress(self) -> float:
        return self.done_count / self.total_count if self.total_count else 0.0

    @staticmethod
    def of(row: Evaluation) -> EvaluationInfo:
        assert row.id is not None
        return EvaluationInfo(row.id, row.name, row.dataset_id, row.constitution_version_id,
                              row.engine_kind, row.model, dict(row.config), row.status,
                              row.done_count, row.total_count, row.error, row.created_at,
                              row.updated_at)


@dataclass(frozen=True)
class UnscorableInfo:
    item_id: int
    reason: str
    top_tokens: dict[str, object]
    record_ids: list[int]


@dataclass
class _Running:
    thread: threading.Thread
    cancel: threading.Event = field(default_factory=threading.Event)


class EvaluationService(JudgingService):
    # chunks the writer may store in one commit when it has fallen behind (group commit)
    commit_group = 4

    def __init__(self, db: Database, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService) -> None:
        super().__init__(db, constitutions, engines, critique_log)
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()

    # --- creating and reading ------------------------------------------------------------------

    def create(self, *, dataset_id: int, version_id: int, config: EvaluationConfig,
               actor: Principal, name: str = "") -> EvaluationInfo:
        require(actor, Action.RUN_EVALUATION)
        config.validate()
        version = self._constitutions.version(version_id)
        engine = self._engines.get()
        with self._db.write() as s:
            ids = (dataset_repo.item_ids(s, dataset_id=dataset_id) if config.sample_size is None
                   else dataset_repo.sample_item_ids(s, dataset_id=dataset_id,
                                                     n=config.sample_size, seed=config.seed))
            if not ids:
                raise NotFoundError(f"Dataset {dataset_id} has no items; import pairs first.")
            label = name.strip() or (f"{version.constitution.name} v{version.info.number} · "
                                     f"{len(ids)} pairs")
            row = repo.create_evaluation(
                s, name=label[:200], dataset_id=dataset_id, constitution_version_id=version_id,
                engine_kind=engine.info.kind, model=engine.info.model[:300],
                config=_config_dict(config), item_ids=ids, total_count=len(ids),
                created_by=actor.name)
            append_event(s, actor=actor.name, action="evaluation.create",
                         entity_type="evaluation", entity_id=str(row.id),
                         payload={"name": row.name, "dataset_id": dataset_id,
                                  "constitution_version_id": version_id,
                                  "model": row.model, "items": len(ids)})
            return EvaluationInfo.of(row)

    def get(self, evaluation_id: int) -> EvaluationInfo:
        with self._db.read() as s:
            row = repo.get_evaluation(s, evaluation_id=evaluation_id)
            if row is None:
                raise NotFoundError(f"No evaluation with id {evaluation_id}.")
            return EvaluationInfo.of(row)

    def unscorable(self, evaluation_id: int) -> list[UnscorableInfo]:
        """The run's items the engine could not score: why, and the engine's top tokens."""
        with self._db.read() as s:
            return [UnscorableInfo(r.item_id, r.reason, dict(r.top_tokens), list(r.record_ids))
                    for r in repo.unscorable_items(s, evaluation_id=evaluation_id)]

    def list_all(self) -> list[EvaluationInfo]:
        with self._db.read() as s:
            return [EvaluationInfo.of(r) for r in repo.list_evaluations(s)]

    # --- running -------------------------------------------------------------------------------

    def start(self, evaluation_id: int, *, actor: Principal) -> None:
        """Judge the remaining items in a background thread (no-op if already running)."""
        require(actor, Action.RUN_EVALUATION)
        with self._lock:
            running = self._running.get(evaluation_id)
            if running is not None and running.thread.is_alive():
                return
            state = _Running(threading.Thread(target=self._run_logged,
                                              args=(evaluation_id, actor),
                                              name=f"evaluation-{evaluation_id}", daemon=True))
            self._running[evaluation_id] = state
        self._set_status(evaluation_id, "running")
        state.thread.start()

    def cancel(self, evaluation_id: int, *, actor: Principal) -> None:
        require(actor, Action.RUN_EVALUATION)
        self.get(evaluation_id)  # NotFoundError for an unknown run
        with self._db.write() as s:
            append_event(s, actor=actor.name, action="evaluation.cancel",
                         entity_type="evaluation", entity_id=str(evaluation_id), payload={})
        with self._lock:
            running = self._running.get(evaluation_id)
        if running is not None:
            running.cancel.set()
        else:
            self._set_status(evaluation_id, "cancelled")

    def wait(self, evaluation_id: int, timeout: float | None = None) -> EvaluationInfo:
        with self._lock:
            running = self._running.get(evaluation_id)
        if running is not None:
            running.thread.join(timeout)
        return self.get(evaluation_id)

    def resume_unfinished(self, *, actor: Principal) -> list[int]:
        """On start-up: restart runs that were queued or running when the process stopped."""
        with self._db.read() as s:
            ids = [r.id for r in repo.evaluations_with_status(s, statuses=ACTIVE) if r.id]
        for evaluation_id in ids:
            self.start(evaluation_id, actor=actor)
        return ids

    def run(self, evaluation_id: int, *, actor: Principal,
            cancel: threading.Event | None = None,
            on_chunk: Callable[[int, int], None] | None = None) -> EvaluationInfo:
        """Judge the items that have no verdict yet, chunk by chunk, in this thread (the
        model calls) and one writer thread (the stores). A run that fails is marked
        ``failed`` with the reason, and is not resumed at start-up again."""
        require(actor, Action.RUN_EVALUATION)
        try:
            return self._run(evaluation_id, actor, cancel or threading.Event(), on_chunk)
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._set_status(evaluation_id, "failed", str(message)[:2000])
            raise

    def _run(self, evaluation_id: int, actor: Principal, cancel: threading.Event,
             on_chunk: Callable[[int, int], None] | None) -> EvaluationInfo:
        info = self.get(evaluation_id)
        config = _config_from(info.config)
        version = self._constitutions.version(info.constitution_version_id)
        engine = self._engines.get()
        _require_same_judge(info, engine.info.kind, engine.info.model)
        with self._db.read() as s:
            row = repo.get_evaluation(s, evaluation_id=evaluation_id)
            assert row is not None
            done = (repo.judged_item_ids(s, evaluation_id=evaluation_id)
                    | repo.unscorable_item_ids(s, evaluation_id=evaluation_id))
            remaining = [i for i in row.item_ids if i not in done]
        self._set_status(evaluation_id, "running")
        writer = _ChunkWriter(self._db, evaluation_id, info.total_count, on_chunk, cancel,
                              group=self.commit_group)
        writer.start()
        cancelled = False
        try:
            for start in range(0, len(remaining), config.batch_size):
                if cancel.is_set():
                    cancelled = True
                    break
                if writer.failed:
                    break
                chunk = remaining[start:start + config.batch_size]
                with self._db.read() as s:
                    items = repo.pair_texts(s, ids=chunk)
                # the item id keys its principles: batch size, position and resume change nothing
                pairs = [PairItem(*items[i][:3], key=i) for i in chunk]
                logger = DeferredStepLogger(actor.name)
                verdicts = label_pairs(engine, version.content, version.info.id, pairs,
                                       config.label_config(), logger)
                writer.put(_Chunk(chunk, [items[i][3] for i in chunk], verdicts, logger))
        finally:
            writer.close()  # everything handed over is stored (or the writer's error is kept)
        if writer.error is not None:
            raise writer.error
        # a cancel that came after the last chunk was handed over still dropped what waited
        self._set_status(evaluation_id,
                         "cancelled" if cancelled or writer.dropped else "done")
        return self.get(evaluation_id)

    def _run_logged(self, evaluation_id: int, actor: Principal) -> None:
        with self._lock:
            cancel = self._running[evaluation_id].cancel
        try:
            self.run(evaluation_id, actor=actor, cancel=cancel)
        except Exception:  # run() has recorded why it stopped
            log.exception("evaluation %s failed", evaluation_id)

    def _set_status(self, evaluation_id: int, status: str, error: str = "") -> None:
        with self._db.write() as s:
            repo.set_status(s, evaluation_id=evaluation_id, status=status, error=error)


def _require_same_judge(info: EvaluationInfo, kind: str, model: str) -> None:
    """A run is judged by one engine and model from start to end (its row names them)."""
    if (kind, model[:300]) != (info.engine_kind, info.model):
        raise ValidationError(
            f"Run {info.id} was judged by {info.model} ({info.engine_kind}); the engine now "
            f"selected is {model} ({kind}). Select {info.model} ({info.engine_kind}) in "
            "Settings to resume it, or start a new run with the current engine.")


def _config_dict(config: EvaluationConfig) -> dict[str, object]:
    data = asdict(config)
    data["cot_clamp"] = list(config.cot_clamp) if config.cot_clamp else None
    return data


def _config_from(data: dict[str, object]) -> EvaluationConfig:
    clamp = data.get("cot_clamp")
    values = {k: v for k, v in data.items() if k in EvaluationConfig.__dataclass_fields__}
    values["cot_clamp"] = tuple(clamp) if isinstance(clamp, list) else None
    return EvaluationConfig(**values)  # type: ignore[arg-type]


@dataclass
class _Chunk:
    item_ids: list[int]
    human: list[float]
    verdicts: list[Verdict]
    logger: DeferredStepLogger


class _ChunkWriter:
    """One thread that stores chunks from a bounded queue, one transaction per chunk (or per
    group of chunks already waiting, see ``_take``): its critique-log records, its verdicts
    (or unscorable items) and the run's progress. The model
    calls for the next chunks go on meanwhile; at most ``depth`` chunks wait in the queue.
    ``on_chunk`` is called after each commit (an acknowledged verdict is a stored one). Once
    the run is cancelled, chunks still waiting are dropped (not acknowledged, judged again on
    resume), so a cancel stops the run where its last acknowledgement left it."""

    def __init__(self, db: Database, evaluation_id: int, total: int,
                 on_chunk: Callable[[int, int], None] | None, cancel: threading.Event,
                 depth: int = 4, group: int = 1) -> None:
        self._db = db
        self._evaluation_id = evaluation_id
        self._total = total
        self._on_chunk = on_chunk
        self._cancel = cancel
        self._queue: queue.Queue[_Chunk | None] = queue.Queue(maxsize=depth)
        self._group = group
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"evaluation-{evaluation_id}-writer")
        self.error: BaseException | None = None
        self.dropped = 0  # chunks not stored because the run was cancelled

    @property
    def failed(self) -> bool:
        return self.error is not None

    def start(self) -> None:
        self._thread.start()

    def put(self, chunk: _Chunk | None) -> None:
        """Hand a chunk over (None: no more); waits while the queue is full, unless the writer
        has stopped."""
        while self._thread.is_alive():
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            group = self._take()
            if not group:
                return
            try:
                counts = self._store_group(group)
            except BaseException as exc:  # the run stops and records why
                self.error = exc
                return
            if self._on_chunk is not None:
                for count in counts:
                    self._on_chunk(count, self._total)
            if group[-1] is None:
                return

    def _take(self) -> list[_Chunk | None]:
        """The next chunk (waiting for it) and those already waiting behind it, up to
        ``group`` chunks: when the writer falls behind, one commit stores several (fewer
        commits, seals and anchor lines per verdict); a chunk is acknowledged only after the
        commit that holds it. A None (no more) ends the group. Once the run is cancelled,
        chunks still waiting are dropped."""
        out: list[_Chunk | None] = []
        chunk = self._queue.get()
        while True:
            if chunk is None:
                out.append(None)
                return out
            if self._cancel.is_set():  # cancelled: what is not stored yet is judged on resume
                self.dropped += 1
            else:
                out.append(chunk)
            if len(out) >= self._group:
                return out
            try:
                chunk = self._queue.get_nowait()
            except queue.Empty:
                return out

    def _store_group(self, group: list[_Chunk | None]) -> list[int]:
        chunks = [c for c in group if c is not None]
        if not chunks:
            return []
        try:
            with self._db.write() as s:
                return [self._store(s, c) for c in chunks]
        except IntegrityError:  # another runner stored some of these items first
            if len(chunks) > 1:  # store the others, each on its own
                return [n for c in chunks for n in self._store_group([c])]
            log.warning("evaluation %s: chunk already judged elsewhere", self._evaluation_id)
            return []

    def _store(self, s: Session, chunk: _Chunk) -> int:
        ids = chunk.logger.write(s)
        verdicts, unscorable = [], []
        for item_id, human, v in zip(chunk.item_ids, chunk.human, chunk.verdicts,
                                     strict=True):
            if v.unscorable is not None:
                unscorable.append({"item_id": item_id, "reason": v.unscorable[:2000],
                                   "top_tokens": v.top_tokens,
                                   "record_ids": [ids.get(x.record_id, x.record_id)
                                                  for x in v.variants]})
            else:
                verdicts.append(_verdict_row(item_id, v, human, ids))
        return repo.insert_chunk(s, evaluation_id=self._evaluation_id, verdicts=verdicts,
                                 unscorable=unscorable)


def _verdict_row(item_id: int, verdict: Verdict, human: float | None = None,
                 ids: dict[int, int] | None = None) -> dict[str, object]:
    """A verdict's columns; ``ids`` maps placeholder record ids to stored ones."""
    ids = ids or {}
    by_order: dict[str, list[float]] = {"AB": [], "BA": []}
    for v in verdict.variants:
        by_order[v.order].append(v.p_a)
    decision = 1.0 if verdict.p_a > 0.5 else 0.0 if verdict.p_a < 0.5 else 0.5
    return {
        "item_id": item_id,
        "p_a": verdict.p_a,
        "confidence": max(verdict.p_a, 1.0 - verdict.p_a),
        "disagrees": None if human is None else decision != human,
        "human_label": human,
        "principle_key": (next(iter(verdict.per_principle))
                          if len(verdict.per_principle) == 1 else None),
        "p_a_ab": sum(by_order["AB"]) / len(by_order["AB"]) if by_order["AB"] else None,
        "p_a_ba": sum(by_order["BA"]) / len(by_order["BA"]) if by_order["BA"] else None,
        "principle_keys": list(verdict.per_principle),
        "variants": [{"principle": v.principle_key, "order": v.order, "p_a": v.p_a,
                      "p_first": v.p_first, "clamped": v.clamped, "cot": v.cot,
                      "record_id": ids.get(v.record_id, v.record_id),
                      **hard_label_fields(v)}
                     for v in verdict.variants],
        "record_ids": [ids.get(v.record_id, v.record_id) for v in verdict.variants],
        "bounded": sum(1 for v in verdict.variants if v.bounded),
    }
