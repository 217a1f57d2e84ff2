"""Comparison runs: policies × prompt set × constitution version (issue 16).

A comparison is stored first, with its policies and prompts fixed. A background thread (as
for agreement runs) then (1) has each policy answer every prompt, in batches, one policy's
model loaded at a time, and (2) has the judge (the studio's active engine) label every pair of
policies on every prompt under the constitution: both orders, soft labels, k principles,
optional CoT. Each batch's responses or verdicts are committed with the progress counter; at
most one response per (policy, prompt) and one verdict per (prompt, pair) can exist, so a
cancelled, crashed or restarted run resumes with what is missing. Generations and verdicts are
in the critique log (response records carry the comparison id in their params); the stored
response is the text the judge was shown (``judgeable``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from backend.access import Action, Principal, require
from backend.cai.constitution import normalise_newlines, text_problem
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.pair_formats import first_human_turn
from backend.cai.parsed_judge import JUDGE_MODES, hard_label_fields
from backend.cai.steplog import StepLogger, StepRecord, new_chain_id
from backend.engines.base import GenerationParams, Prompt
from backend.errors import EngineError, NotFoundError, ValidationError
from backend.services.constitutions import ConstitutionService
from backend.services.critique_log import CritiqueLogService
from backend.services.engines import EngineManager
from backend.services.policies import Policy, PolicyResolver
from db import comparison_repo as repo
from db.audit_chain import append_event
from db.comparison_models import Comparison
from db.engine import Database

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
MAX_PROMPT_CHARS = 2000
MAX_RESPONSE_CHARS = 8000


@dataclass(frozen=True)
class ComparisonConfig:
    max_prompts: int = 20
    max_new_tokens: int = 128
    temperature: float = 0.0
    batch_size: int = 16
    cot: bool = False
    both_orders: bool = True
    k_principles: int = 1
    cot_clamp: tuple[float, float] | None = (0.4, 0.6)
    form: str = "chat"
    seed: int = 0
    reward_models: tuple[str, ...] = ()  # job:<id> of succeeded reward-model jobs
    reward_max_length: int = 512
    judge: str = "scored"  # scored: soft labels (logprobs); parsed: hard labels from answers

    def label_config(self) -> LabelConfig:
        return LabelConfig(cot=self.cot, both_orders=self.both_orders,
                           k_principles=self.k_principles, cot_clamp=self.cot_clamp,
                           form="raw" if self.form == "raw" else "chat", seed=self.seed,
                           judge="parsed" if self.judge == "parsed" else "scored")

    def generation(self) -> GenerationParams:
        return GenerationParams(max_tokens=self.max_new_tokens, temperature=self.temperature,
                                seed=self.seed)

    def validate(self) -> None:
        if self.judge not in JUDGE_MODES:
            raise ValidationError(f"Judge mode {self.judge!r}: use scored or parsed.")
        if not 1 <= self.max_prompts <= 5000:
            raise ValidationError("max_prompts must be between 1 and 5000.")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValidationError("max_new_tokens must be between 1 and 4096.")
        if not 0.0 <= self.temperature <= 5.0:
            raise ValidationError("temperature must be between 0 and 5.")
        if not 1 <= self.batch_size <= 1024:
            raise ValidationError("batch_size must be between 1 and 1024.")
        if not 16 <= self.reward_max_length <= 8192:
            raise ValidationError("reward_max_length must be between 16 and 8192 tokens.")
        self.label_config().validate()

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cot_clamp"] = list(self.cot_clamp) if self.cot_clamp else None
        data["reward_models"] = list(self.reward_models)
        return data

    @staticmethod
    def of(data: dict[str, object]) -> ComparisonConfig:
        clamp = data.get("cot_clamp")
        values = {k: v for k, v in data.items() if k in ComparisonConfig.__dataclass_fields__}
        values["cot_clamp"] = tuple(clamp) if isinstance(clamp, list) else None
        rms = data.get("reward_models")
        values["reward_models"] = tuple(str(r) for r in rms) if isinstance(rms, list) else ()
        return ComparisonConfig(**values)  # type: ignore[arg-type]


class RewardScorer(Protocol):
    def score(self, prompts: list[str], completions: list[str]) -> list[float]: ...


@dataclass(frozen=True)
class PromptItem:
    text: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComparisonInfo:
    id: int
    name: str
    constitution_version_id: int
    policies: list[Policy]
    prompts: list[PromptItem]
    prompt_source: str
    judge_model: str
    config: ComparisonConfig
    status: str
    done_count: int
    total_count: int
    error: str
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def progress(self) -> float:
        return self.done_count / self.total_count if self.total_count else 0.0

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(combinations(range(len(self.policies)), 2))

    @staticmethod
    def of(row: Comparison) -> ComparisonInfo:
        assert row.id is not None
        prompts = [PromptItem(str(p["text"]), _tag_list(p.get("tags"))) for p in row.prompts]
        return ComparisonInfo(row.id, row.name, row.constitution_version_id,
                              [Policy.of(p) for p in row.policies], prompts, row.prompt_source,
                              row.judge_model, ComparisonConfig.of(dict(row.config)), row.status,
                              row.done_count, row.total_count, row.error, row.created_by,
                              row.created_at, row.updated_at)


def judgeable(text: str) -> str:
    """A response as the judge is shown it (and as the comparison stores it): characters the
    labeller refuses (control, bidi and non-characters) become U+FFFD, an empty response reads
    "(empty response)" and a very long one is cut. The raw text stays in the critique log."""
    text = normalise_newlines(text)
    text = "".join("\ufffd" if text_problem(ch, multiline=True) else ch for ch in text)
    text = text[:MAX_RESPONSE_CHARS]
    return text if text.strip() else "(empty response)"


def _tag_list(value: object) -> tuple[str, ...]:
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _tags_of(row: dict[str, object], default: tuple[str, ...]) -> tuple[str, ...]:
    for key in ("tags", "tag", "category", "kind"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return (value.strip().lower(),)
        if isinstance(value, list):
            return tuple(str(v).strip().lower() for v in value if str(v).strip())
    return default


def load_prompt_items(path: Path, limit: int) -> tuple[list[PromptItem], str]:
    """Unique prompts (a ``prompt`` field, or the first human turn of ``chosen``) and their
    tags (``tags``/``tag``/``category`` fields; else ``harmless``/``helpful`` from the file
    name), with the file's sha256."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"Cannot read the prompt set {path}: {exc.strerror}.") from exc
    text = gzip.decompress(raw).decode("utf-8") if path.suffix == ".gz" else raw.decode("utf-8")
    name = path.name.lower()
    default = (("harmless",) if "harmless" in name or "harmful" in name
               else ("helpful",) if "helpful" in name else ())
    found: dict[str, PromptItem] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if len(found) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path.name} line {n} is not JSON.") from exc
        if not isinstance(row, dict):
            continue
        prompt = row.get("prompt")
        if not isinstance(prompt, str):
            chosen = row.get("chosen")
            prompt = first_human_turn(chosen) if isinstance(chosen, str) else None
        if prompt and prompt.strip() and len(prompt) <= MAX_PROMPT_CHARS:
            found.setdefault(prompt.strip(), PromptItem(prompt.strip(), _tags_of(row, default)))
    if not found:
        raise ValidationError(f"{path.name} has no usable prompts (a 'prompt' field or HH-RLHF "
                              "'chosen' dialogues).")
    return list(found.values()), hashlib.sha256(raw).hexdigest()


@dataclass
class _Running:
    thread: threading.Thread
    cancel: threading.Event = field(default_factory=threading.Event)


class ComparisonService:
    def __init__(self, db: Database, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService, policies: PolicyResolver,
                 default_prompt_set: Path | None) -> None:
        self._db = db
        self._constitutions = constitutions
        self._engines = engines
        self._log = critique_log
        self.policies = policies
        self._default_prompts = default_prompt_set
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()

    # --- creating and reading ------------------------------------------------------------------

    def create(self, *, policies: list[str], version_id: int, config: ComparisonConfig,
               actor: Principal, prompt_set: str = "", prompts: list[PromptItem] | None = None,
               name: str = "") -> ComparisonInfo:
        """Fix the policies, prompts and constitution version of a new comparison."""
        require(actor, Action.RUN_EVALUATION)
        config.validate()
        refs = list(dict.fromkeys(r.strip() for r in policies if r.strip()))
        if len(refs) < 2:
            raise ValidationError("Pick at least two different policies to compare.")
        resolved = [self.policies.resolve(r) for r in refs]
        for ref in config.reward_models:
            self.policies.reward_model(ref)
        version = self._constitutions.version(version_id)
        if prompts is None:
            path = Path(prompt_set) if prompt_set.strip() not in ("", "default") \
                else self._default_prompts
            if path is None:
                raise ValidationError("No prompt set: give a .jsonl(.gz) file of prompts "
                                      "(CSTUDIO_PROMPT_SET_PATH sets the default).")
            items, sha = load_prompt_items(path, config.max_prompts)
            source = str(path)
        else:
            items = [p for p in prompts if p.text.strip()][:config.max_prompts]
            if not items:
                raise ValidationError("Give at least one prompt.")
            sha = hashlib.sha256("\n".join(p.text for p in items).encode()).hexdigest()
            source = "inline"
        judge = self._engines.get().info
        n_pairs = len(resolved) * (len(resolved) - 1) // 2
        total = len(items) * (len(resolved) + n_pairs)
        label = name.strip() or (f"{' vs '.join(r.ref for r in resolved)} · "
                                 f"{version.constitution.name} v{version.info.number}")
        with self._db.write() as s:
            row = repo.create_comparison(
                s, name=label[:200], constitution_version_id=version_id,
                policies=[p.as_dict() for p in resolved],
                prompts=[{"text": p.text, "tags": list(p.tags)} for p in items],
                prompt_source=source[:500], prompt_sha256=sha, judge_kind=judge.kind,
                judge_model=judge.model[:300], config=config.as_dict(), total_count=total,
                created_by=actor.name)
            append_event(s, actor=actor.name, action="comparison.create",
                         entity_type="comparison", entity_id=str(row.id),
                         payload={"name": row.name, "policies": refs,
                                  "constitution_version_id": version_id,
                                  "prompts": len(items), "prompt_sha256": sha,
                                  "judge": judge.model})
            return ComparisonInfo.of(row)

    def get(self, comparison_id: int) -> ComparisonInfo:
        with self._db.read() as s:
            row = repo.get_comparison(s, comparison_id=comparison_id)
            if row is None:
                raise NotFoundError(f"No comparison with id {comparison_id}.")
            return ComparisonInfo.of(row)

    def list_all(self) -> list[ComparisonInfo]:
        with self._db.read() as s:
            return [ComparisonInfo.of(r) for r in repo.list_comparisons(s)]

    # --- running -------------------------------------------------------------------------------

    def start(self, comparison_id: int, *, actor: Principal) -> None:
        """Run the remaining steps in a background thread (no-op if already running)."""
        require(actor, Action.RUN_EVALUATION)
        self.get(comparison_id)
        with self._lock:
            running = self._running.get(comparison_id)
            if running is not None and running.thread.is_alive():
                return
            state = _Running(threading.Thread(target=self._run_logged,
                                              args=(comparison_id, actor),
                                              name=f"comparison-{comparison_id}", daemon=True))
            self._running[comparison_id] = state
        self._set_status(comparison_id, "running")
        state.thread.start()

    def cancel(self, comparison_id: int, *, actor: Principal) -> None:
        require(actor, Action.RUN_EVALUATION)
        self.get(comparison_id)
        with self._db.write() as s:
            append_event(s, actor=actor.name, action="comparison.cancel",
                         entity_type="comparison", entity_id=str(comparison_id), payload={})
        with self._lock:
            running = self._running.get(comparison_id)
        if running is not None and running.thread.is_alive():
            running.cancel.set()
        else:
            self._set_status(comparison_id, "cancelled")

    def wait(self, comparison_id: int, timeout: float | None = None) -> ComparisonInfo:
        with self._lock:
            running = self._running.get(comparison_id)
        if running is not None:
            running.thread.join(timeout)
        return self.get(comparison_id)

    def resume_unfinished(self, *, actor: Principal) -> list[int]:
        with self._db.read() as s:
            ids = [r.id for r in repo.comparisons_with_status(s, statuses=ACTIVE) if r.id]
        for comparison_id in ids:
            self.start(comparison_id, actor=actor)
        return ids

    def run(self, comparison_id: int, *, actor: Principal,
            cancel: threading.Event | None = None,
            on_step: Callable[[int, int], None] | None = None) -> ComparisonInfo:
        """Generate the missing responses, then judge the missing pairs, in this thread."""
        require(actor, Action.RUN_EVALUATION)
        cancel = cancel or threading.Event()
        info = self.get(comparison_id)
        config = info.config
        self._set_status(comparison_id, "running")
        logger = self._log.logger(actor.name)
        scorers: list[tuple[str, RewardScorer]] | None = None
        for index, policy in enumerate(info.policies):
            with self._db.read() as s:
                done = repo.responded(s, comparison_id=comparison_id, policy_index=index)
            todo = [i for i in range(len(info.prompts)) if i not in done]
            if not todo:
                continue
            if cancel.is_set():
                return self._cancelled(comparison_id)
            if scorers is None:
                scorers = [(ref, self._scorer(ref, config)) for ref in config.reward_models]
            with self.policies.engine(policy) as engine:
                for start in range(0, len(todo), config.batch_size):
                    if cancel.is_set():
                        return self._cancelled(comparison_id)
                    chunk = todo[start:start + config.batch_size]
                    params = config.generation()
                    gens = engine.generate([Prompt.chat(("user", info.prompts[i].text))
                                            for i in chunk], params)
                    ids = logger.log([StepRecord(
                        kind="response", chain_id=new_chain_id(), prompt_sent=g.prompt_sent,
                        output=g.text, engine=engine.info,
                        params={**params.as_dict(), "comparison_id": comparison_id,
                                "policy": policy.ref, "prompt_index": i},
                        constitution_version_id=None, seed=config.seed, latency_s=g.latency_s)
                        for i, g in zip(chunk, gens, strict=True)])
                    shown = [judgeable(g.text) for g in gens]
                    asked = [info.prompts[i].text for i in chunk]
                    scores = {ref: scorer.score(asked, shown) for ref, scorer in scorers}
                    rows = [{"policy_index": index, "prompt_index": i, "response": text,
                             "record_id": rid, "finish_reason": g.finish_reason[:20],
                             "reward_scores": {ref: v[k] for ref, v in scores.items()}}
                            for k, (i, g, rid, text) in enumerate(
                                zip(chunk, gens, ids, shown, strict=True))]
                    self._store(comparison_id, rows, verdicts=False, on_step=on_step,
                                total=info.total_count)
        self._judge(info, cancel, logger, on_step)
        if cancel.is_set():
            return self._cancelled(comparison_id)
        self._set_status(comparison_id, "done")
        return self.get(comparison_id)

    def _scorer(self, ref: str, config: ComparisonConfig) -> RewardScorer:
        from backend.training.rl_common import RewardModelScorer

        location = self.policies.reward_model(ref)
        device = "cpu"
        with suppress(ImportError):
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return RewardModelScorer(ref, location, device, config.reward_max_length)

    def _judge(self, info: ComparisonInfo, cancel: threading.Event, logger: StepLogger,
               on_step: Callable[[int, int], None] | None) -> None:
        config = info.config
        version = self._constitutions.version(info.constitution_version_id)
        with self._db.read() as s:
            done = repo.judged(s, comparison_id=info.id)
            texts = {(r.policy_index, r.prompt_index): r.response
                     for r in repo.responses(s, comparison_id=info.id)}
        todo = [(p, a, b) for p in range(len(info.prompts)) for a, b in info.pairs
                if (p, a, b) not in done]
        if not todo:
            return
        judge = self._engines.get()
        if judge.info.model != info.judge_model:
            raise EngineError(f"Comparison {info.id} was judged by {info.judge_model} but the "
                              f"active engine is now {judge.info.model}; switch back in "
                              "Settings to finish it, or start a new comparison.")
        for start in range(0, len(todo), config.batch_size):
            if cancel.is_set():
                return
            chunk = todo[start:start + config.batch_size]
            # the (comparison, prompt, pair) keys each item's principles, whatever the batching
            items = [PairItem(info.prompts[p].text, texts[(a, p)], texts[(b, p)],
                              key=f"cmp{info.id}:{p}:{a}:{b}") for p, a, b in chunk]
            verdicts = label_pairs(judge, version.content, version.info.id, items,
                                   config.label_config(), logger)
            rows = [{"prompt_index": p, "policy_a": a, "policy_b": b, "p_a": v.p_a,
                     "chain_id": v.chain_id, "per_principle": v.per_principle,
                     "variants": [{"principle": x.principle_key, "order": x.order, "p_a": x.p_a,
                                   "p_first": x.p_first, "clamped": x.clamped, "cot": x.cot,
                                   "record_id": x.record_id, **hard_label_fields(x)}
                                  for x in v.variants],
                     "record_ids": [x.record_id for x in v.variants]}
                    for (p, a, b), v in zip(chunk, verdicts, strict=True) if v.scored]
            if len(rows) < len(chunk):  # never a silent 0.5: left unjudged, retried on resume
                log.warning("comparison %s: %d pairs the judge could not score", info.id,
                            len(chunk) - len(rows))
            self._store(info.id, rows, verdicts=True, on_step=on_step, total=info.total_count)

    def _store(self, comparison_id: int, rows: list[dict[str, object]], *, verdicts: bool,
               on_step: Callable[[int, int], None] | None, total: int) -> None:
        try:
            with self._db.write() as s:
                insert = repo.insert_verdicts if verdicts else repo.insert_responses
                count = insert(s, comparison_id=comparison_id, rows=rows)
        except IntegrityError:  # another runner stored these first
            log.warning("comparison %s: a batch was already stored elsewhere", comparison_id)
            return
        if on_step is not None:
            on_step(count, total)

    def _cancelled(self, comparison_id: int) -> ComparisonInfo:
        self._set_status(comparison_id, "cancelled")
        return self.get(comparison_id)

    def _run_logged(self, comparison_id: int, actor: Principal) -> None:
        with self._lock:
            cancel = self._running[comparison_id].cancel
        try:
            self.run(comparison_id, actor=actor, cancel=cancel)
        except Exception as exc:  # a background run must record why it stopped
            log.exception("comparison %s failed", comparison_id)
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._set_status(comparison_id, "failed", str(message)[:2000])

    def _set_status(self, comparison_id: int, status: str, error: str = "") -> None:
        with self._db.write() as s:
            repo.set_status(s, comparison_id=comparison_id, status=status, error=error)
