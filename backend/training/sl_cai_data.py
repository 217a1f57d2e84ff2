"""Stage ``sl_cai_data``: the critique → revision loop over a prompt set.

Every model call goes to the critique log; each (prompt, final revision) sample is stored with
the ids of its response, critique and revision records and the principle of each round. Chunks
of prompts are stored in one transaction each; a restarted job skips the chunks it stored.
"""

from __future__ import annotations

import hashlib
import json

from backend.cai.critique_loop import LoopConfig, LoopContext, run_critique_loop
from backend.cai.sampling import derived_seed
from backend.common.critique_log import DbStepLogger
from backend.engines.base import GenerationParams
from backend.training.context import StageContext, StageResult
from backend.training.data_common import (
    build_engine,
    open_data_run,
    pending_chunks,
)
from db import training_repo


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    run_in = open_data_run(ctx, "sl_cai", "SL-CAI data")
    version_id, content, prompts = run_in.version_id, run_in.content, run_in.prompts
    dataset_id, done = run_in.dataset_id, run_in.done
    resumed = len(done)
    if resumed:
        ctx.inputs["resumed_from"] = f"{resumed} samples"
    metrics = ctx.metrics
    engine = build_engine(ctx, str(cfg["model"]), "engine")
    logger = DbStepLogger(ctx.db, ctx.actor)
    stored = len(done)
    try:
        for k, positions in pending_chunks(len(prompts), int(cfg["chunk_size"]), done):
            seed = derived_seed(ctx.seed, "sl_cai", k)
            params = GenerationParams(int(cfg["max_new_tokens"]), float(cfg["temperature"]),
                                      seed=seed)
            # principles: from (job seed, prompt position, round), whatever the chunking
            loop = LoopConfig(rounds=int(cfg["rounds"]), form=cfg["form"],
                              seed=derived_seed(ctx.seed, "sl_cai_principles"),
                              use_few_shots=bool(cfg["use_few_shots"]), response_params=params,
                              critique_params=params, revision_params=params)
            chains = run_critique_loop(LoopContext(engine, content, version_id, logger),
                                       [prompts[p] for p in positions], loop, keys=positions)
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
