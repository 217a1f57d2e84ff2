"""Reading a stage's inputs from the store and files: constitution versions, prompt sets,
pair datasets and datasets made by earlier stages (db repositories only)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.cai.constitution import ConstitutionContent, FewShotExample, Principle
from backend.errors import ValidationError
from backend.training.context import StageContext
from db import constitution_repo, dataset_repo, training_repo
from db.engine import Database

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
DEFAULT_PROMPT_FILE = ("shared", "data", "hh-rlhf", "harmless-base-test.first2000.jsonl.gz")


def load_constitution(db: Database, version_id: int) -> ConstitutionContent:
    with db.read() as s:
        principles = tuple(
            Principle(r.key, r.title, r.critique_request, r.revision_request,
                      r.choice_instruction, tuple(r.tags), r.enabled)
            for r in constitution_repo.version_principles(s, version_id=version_id))
        few_shots = tuple(FewShotExample(r.kind, dict(r.data))
                          for r in constitution_repo.version_few_shots(s, version_id=version_id))
    if not principles:
        raise ValidationError(f"Constitution version {version_id} has no principles.")
    return ConstitutionContent(principles, few_shots)


def default_prompt_set() -> Path:
    configured = os.environ.get("CSTUDIO_PROMPT_SET_PATH")
    if configured:
        return Path(configured)
    path = Path(__file__).resolve().parents[3].joinpath(*DEFAULT_PROMPT_FILE)
    if not path.is_file():
        raise ValidationError("The default prompt set (the HH-RLHF sample) is not on this "
                              "machine; set prompt_set to a .jsonl(.gz) file.")
    return path


def _first_human_turn(dialogue: str) -> str | None:
    start = dialogue.find(HUMAN)
    if start == -1:
        return None
    rest = dialogue[start + len(HUMAN):]
    end = rest.find(ASSISTANT)
    turn = (rest if end == -1 else rest[:end]).strip()
    return turn or None


@dataclass(frozen=True)
class PromptSet:
    source: str
    sha256: str
    prompts: list[str]


def load_prompts(prompt_set: str, limit: int) -> PromptSet:
    """Unique first human turns (``chosen``), or a ``prompt`` field, of a .jsonl(.gz) file."""
    path = default_prompt_set() if prompt_set in ("", "default") else Path(prompt_set)
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode("utf-8") if path.suffix == ".gz" else raw.decode("utf-8")
    prompts: dict[str, None] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if len(prompts) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path.name} line {n} is not JSON.") from exc
        turn: str | None = None
        if isinstance(row, dict):
            if isinstance(row.get("prompt"), str):
                turn = row["prompt"].strip() or None
            elif isinstance(row.get("chosen"), str):
                turn = _first_human_turn(row["chosen"])
        if turn and len(turn) <= 2000:
            prompts[turn] = None
    if not prompts:
        raise ValidationError(f"{path} holds no prompts (expected 'chosen' dialogues or a "
                              "'prompt' field per line).")
    return PromptSet(str(path), hashlib.sha256(raw).hexdigest(), list(prompts))


def note_dataset(ctx: StageContext, role: str, info: dict[str, Any]) -> None:
    ctx.inputs.setdefault("datasets", {})[role] = info


def note_model(ctx: StageContext, role: str, ref: str, location: str) -> None:
    ctx.inputs.setdefault("models", {})[role] = {"ref": ref, "location": location}


def _digest(hashes: list[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HumanPair:
    prompt: str
    response_a: str
    response_b: str
    label: float  # 1: humans preferred A, 0: B, 0.5: tie


def human_pairs(ctx: StageContext, dataset_id: int, role: str) -> list[HumanPair]:
    with ctx.db.read() as s:
        row = dataset_repo.get_dataset(s, dataset_id=dataset_id)
        if row is None:
            raise ValidationError(f"No pair dataset {dataset_id}.")
        items = list(dataset_repo.dataset_items(s, dataset_id=dataset_id, limit=10_000_000))
    note_dataset(ctx, role, {"table": "pair_dataset", "id": dataset_id, "name": row.name,
                             "source_sha256": row.source_sha256, "items": len(items),
                             "items_sha256": _digest([i.content_hash for i in items])})
    return [HumanPair(i.prompt, i.response_a, i.response_b, i.human_label) for i in items]


def split_held_out(pairs: list[HumanPair], n_eval: int, seed: int
                   ) -> tuple[list[HumanPair], list[HumanPair]]:
    """(train, held-out): ``n_eval`` pairs drawn with ``seed``; the rest in dataset order."""
    if n_eval <= 0:
        return pairs, []
    if n_eval >= len(pairs):
        raise ValidationError(f"eval_pairs ({n_eval}) must be below the dataset size "
                              f"({len(pairs)}).")
    held = set(random.Random(seed).sample(range(len(pairs)), n_eval))
    return ([p for i, p in enumerate(pairs) if i not in held],
            [p for i, p in enumerate(pairs) if i in held])


def sl_cai_samples(ctx: StageContext, dataset_id: int) -> list[tuple[str, str]]:
    with ctx.db.read() as s:
        rows = list(training_repo.sl_cai_samples(s, dataset_id=dataset_id))
    note_dataset(ctx, "sl_cai", {"table": "training_dataset", "id": dataset_id,
                                 "samples": len(rows),
                                 "samples_sha256": _digest([r.content_hash for r in rows])})
    return [(r.prompt, r.revision) for r in rows]


@dataclass(frozen=True)
class AiPair:
    prompt: str
    response_a: str
    response_b: str
    p_a: float


def ai_pairs(ctx: StageContext, dataset_id: int) -> list[AiPair]:
    with ctx.db.read() as s:
        rows = list(training_repo.ai_pairs(s, dataset_id=dataset_id))
    note_dataset(ctx, "preference", {"table": "training_dataset", "id": dataset_id,
                                     "pairs": len(rows),
                                     "pairs_sha256": _digest([r.content_hash for r in rows])})
    return [AiPair(r.prompt, r.response_a, r.response_b, r.p_a) for r in rows]


def dialogue(prompt: str, response: str) -> str:
    """The text a reward model scores: the paper's Human/Assistant layout."""
    return f"Human: {prompt}\n\nAssistant: {response}"
