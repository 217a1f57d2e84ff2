"""Stage ``sl_cai_data``: the critique → revision loop over a prompt set.

Every model call goes to the critique log; each (prompt, final revision) sample is stored with
the ids of its response, critique and revision records and the principle of each round. Chunks
of prompts are stored in one transaction each; a restarted job skips the chunks it stored.
"""

from __future__ import annotations

import hashlib
import json

from backend.cai.critique_loop import LoopConfig, LoopContext, clean_text, run_critique_loop
from backend.cai.sampling import derived_seed
from backend.engines.base import GenerationParams
from backend.errors import ValidationError
from backend.training.context import StageContext, StageResult
from backend.training.data_common import (
    CritiqueLogWriter,
    build_engine,
    job_dataset,
    pending_chunks,
)
from backend.training.inputs import load_constitution, load_prompts, note_dataset
from db import training_repo


def usable_prompts(raw: list[str]) -> list[str]:
    out: list[str] = []
    for prompt in raw:
        try:
            out.append(clean_text(prompt, "prompt"))
        except ValidationError:
            continue
    return out


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    version_id = int(cfg["constitution_version_id"])
    content = load_constitution(ctx.db, version_id)
    prompt_set = load_prompts(str(cfg["prompt_set"]), int(cfg["max_prompts"]))
    prompts = usable_prompts(prompt_set.prompts)
    note_dataset(ctx, "prompt_set", {"source": prompt_set.source, "sha256": prompt_set.sha256,
                                     "prompts": len(prompts)})
    dataset_id = job_dataset(ctx, "sl_cai", name=f"SL-CAI data (job {ctx.job_id})",
                             model=str(cfg["model"]), source=prompt_set.source,
                             source_sha256=prompt_set.sha256)
    with ctx.db.read() as s:
        done = training_repo.done_positions(s, dataset_id=dataset_id, kind="sl_cai")
    resumed = len(done)
    if resumed:
        ctx.inputs["resumed_from"] = f"{resumed} samples"
    metrics = ctx.metrics
    engine = build_engine(ctx, str(cfg["model"]), "engine")
    logger = CritiqueLogWriter(ctx.db, ctx.actor)
    stored = len(done)
    try:
        for k, positions in pending_chunks(len(prompts), int(cfg["chunk_size"]), done):
            seed = derived_seed(ctx.seed, "sl_cai", k)
            params = GenerationParams(int(cfg["max_new_tokens"]), float(cfg["temperature"]),
                                      seed=seed)
            loop = LoopConfig(rounds=int(cfg["rounds"]), form=cfg["form"], seed=seed,
                              use_few_shots=bool(cfg["use_few_shots"]), response_params=params,
                              critique_params=params, revision_params=params)
            chains = run_critique_loop(LoopContext(engine, content, version_id, logger),
                                       [prompts[p] for p in positions], loop)
            rows = []
            for position, chain in zip(positions, chains, strict=True):
                record_ids = ([chain.response_record] if chain.response_record else []) + \
                    [i for r in chain.rounds for i in (r.critique_record, r.revision_record)]
                rows.append({
                    "position": position, "prompt": chain.prompt, "response": chain.response,
                    "revision": chain.final, "chain_id": chain.chain_id,
                    "response_record_id": chain.response_record,
                    "final_record_id": chain.rounds[-1].revision_record if chain.rounds
                    else chain.response_record,
                    "record_ids": record_ids,
                    "principle_keys": [r.principle.key for r in chain.rounds],
                    "content_hash": _hash([chain.prompt, chain.final, record_ids]),
                })
            with ctx.db.write() as s:
                training_repo.insert_sl_cai_samples(s, dataset_id=dataset_id, rows=rows)
            stored += len(rows)
            metrics.write(stored, progress=stored / len(prompts), samples=stored)
    finally:
        engine.close()
    return StageResult(outputs={"dataset_id": dataset_id, "samples": stored},
                       summary={"samples": stored, "resumed_samples": resumed,
                                "prompts": len(prompts), "rounds": int(cfg["rounds"])})


def _hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
