"""Reading a stage's inputs from the store and files: constitution versions, prompt sets,
pair datasets and datasets made by earlier stages (db repositories only)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from backend.cai.constitution import ConstitutionContent, FewShotExample, Principle
from backend.errors import ValidationError
from backend.training.context import StageContext
from db import constitution_repo, dataset_repo, prompt_set_repo, training_repo
from db.engine import Database


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


@dataclass(frozen=True)
class PromptSet:
    source: str
    sha256: str
    prompts: list[str]


def load_prompts(db: Database, prompt_set: str, limit: int) -> PromptSet:
    """The prompts of a stored prompt set: ``prompt_set`` is 'default' (the built-in set,
    seeded at start) or an id from ``cstudio prompts list``; never a file path."""
    with db.read() as s:
        row = prompt_set_repo.resolve(s, prompt_set)
        if row is None or row.id is None:
            raise ValidationError(
                f"prompt_set {prompt_set!r}: no such prompt set. Give 'default' or an id from "
                "`cstudio prompts list` (import a file with `cstudio prompts import FILE`).")
        items = list(prompt_set_repo.items(s, set_id=row.id, limit=limit))
        source = f"prompt_set:{row.id} {row.name}"
        digest = row.source_sha256
    prompts = list(dict.fromkeys(i.prompt for i in items))
    if not prompts:
        raise ValidationError(f"{source} holds no prompts.")
    return PromptSet(source, digest, prompts)


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
