"""Stage ``preference_data``: two sampled responses per prompt, labelled by the CAI labeller
(source ``labeller``, the paper), or an SL-CAI dataset's revisions preferred over its first
responses (source ``revisions``, see ``revision_pairs``).

The policy writes responses A and B (two seeded samples at ``temperature``; both go to the
critique log as ``response`` steps); the labeller (the policy itself or ``labeler_model``)
gives the soft label p(A better) in the configured mode (no-CoT / CoT with clamp, both orders,
k-principle ensemble). Each stored pair links to its response records and to every verdict
(and CoT) record. Pairs whose two samples are identical, or that the labeller refuses (empty,
control characters), are skipped and counted. Chunks are
stored in one transaction each; a restarted job skips stored chunks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from backend.cai import prompts as P
from backend.cai.critique_loop import clean_text
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.sampling import derived_seed
from backend.cai.steplog import StepRecord, new_chain_id
from backend.common.critique_log import DbStepLogger
from backend.engines.base import Engine, Generation, GenerationParams
from backend.errors import ValidationError
from backend.training.context import StageContext, StageResult
from backend.training.data_common import (
    build_engine,
    job_dataset,
    open_data_run,
    pending_chunks,
)
from backend.training.inputs import note_dataset
from db import training_repo


def _sample(engine: Engine, prompts: list[str], params: GenerationParams, form: P.PromptForm,
            logger: DbStepLogger, version_id: int) -> tuple[list[Generation], list[int]]:
    gens = engine.generate([P.response_prompt(p, form) for p in prompts], params)
    ids = logger.log([StepRecord(kind="response", chain_id=new_chain_id(),
                                 prompt_sent=g.prompt_sent, output=g.text, engine=engine.info,
                                 params=params.as_dict(), constitution_version_id=version_id,
                                 seed=params.seed, latency_s=g.latency_s) for g in gens])
    return gens, ids


def run(ctx: StageContext) -> StageResult:
    if ctx.config.get("source") == "revisions":
        return revision_pairs(ctx)
    cfg = ctx.config
    run_in = open_data_run(ctx, "preference", "AI preference pairs")
    version_id, content, prompts = run_in.version_id, run_in.content, run_in.prompts
    dataset_id, done = run_in.dataset_id, run_in.done
    if done:
        ctx.inputs["resumed_from"] = f"{len(done)} prompts"
    policy = build_engine(ctx, str(cfg["model"]), "policy")
    labeler_ref = str(cfg.get("labeler_model") or "")
    labeler = build_engine(ctx, labeler_ref, "labeler") if labeler_ref else policy
    logger = DbStepLogger(ctx.db, ctx.actor)
    form = cfg["form"]
    stored, identical, unusable, unscorable, handled = 0, 0, 0, 0, len(done)
    try:
        for k, positions in pending_chunks(len(prompts), int(cfg["chunk_size"]), done):
            texts = [prompts[p] for p in positions]
            pairs = []
            for side in ("a", "b"):
                params = GenerationParams(int(cfg["max_new_tokens"]), float(cfg["temperature"]),
                                          seed=derived_seed(ctx.seed, "pref", k, side))
                pairs.append(_sample(policy, texts, params, form, logger, version_id))
            (gens_a, ids_a), (gens_b, ids_b) = pairs
            keep = [i for i in range(len(texts)) if gens_a[i].text != gens_b[i].text]
            identical += len(texts) - len(keep)
            usable = [i for i in keep if _usable(gens_a[i].text) and _usable(gens_b[i].text)]
            unusable += len(keep) - len(usable)
            keep = usable
            label = LabelConfig(cot=bool(cfg["cot"]), both_orders=bool(cfg["both_orders"]),
                                k_principles=int(cfg["k_principles"]),
                                cot_clamp=(0.4, 0.6) if cfg["cot_clamp"] else None, form=form,
                                seed=derived_seed(ctx.seed, "label"),
                                use_few_shots=bool(cfg.get("use_label_few_shots", True)))
            # principles: from (job seed, prompt position), whatever the chunking
            items = [PairItem(texts[i], gens_a[i].text, gens_b[i].text, key=positions[i])
                     for i in keep]
            verdicts = label_pairs(labeler, content, version_id, items, label, logger) \
                if items else []
            rows: list[dict[str, Any]] = []
            for i, verdict in zip(keep, verdicts, strict=True):
                if not verdict.scored:  # the labeller's engine could not score it: skip, count
                    unscorable += 1
                    continue
                verdict_ids = [r for v in verdict.variants
                       for r in ((v.cot_record_id, v.record_id) if v.cot_record_id
                                 else (v.record_id,))]
                variants = [{"principle_key": v.principle_key, "order": v.order, "p_a": v.p_a,
                             "p_first": v.p_first, "clamped": v.clamped,
                             "record_id": v.record_id, "cot_record_id": v.cot_record_id}
                            for v in verdict.variants]
                rows.append({
                    "position": positions[i], "prompt": texts[i],
                    "response_a": gens_a[i].text, "response_b": gens_b[i].text,
                    "p_a": verdict.p_a, "verdict_chain_id": verdict.chain_id,
                    "response_record_ids": [ids_a[i], ids_b[i]], "verdict_record_ids": verdict_ids,
                    "principle_keys": list(verdict.per_principle), "variants": variants,
                    "content_hash": _hash([texts[i], gens_a[i].text, gens_b[i].text,
                                           verdict.p_a, verdict_ids])})
            with ctx.db.write() as s:
                training_repo.insert_ai_pairs(s, dataset_id=dataset_id, rows=rows)
            stored += len(rows)
            handled += len(positions)
            ctx.metrics.write(handled, progress=handled / len(prompts), pairs=stored,
                              mean_p_a=sum(float(r["p_a"]) for r in rows) / len(rows) if rows
                              else None)
    finally:
        policy.close()
        if labeler is not policy:
            labeler.close()
    with ctx.db.read() as s:
        total = training_repo.count_samples(s, dataset_id=dataset_id, kind="preference")
    return StageResult(outputs={"dataset_id": dataset_id, "pairs": total},
                       summary={"pairs": total, "new_pairs": stored,
                                "identical_skipped": identical,
                                "unusable_skipped": unusable,
                                "unscorable_skipped": unscorable, "prompts": len(prompts)})


def revision_pairs(ctx: StageContext) -> StageResult:
    """Source ``revisions``: one pair per SL-CAI sample, its final revision (A) preferred over
    its first response (B) with p = 1, as the critique→revision chain under the constitution
    judged it (the pairs of Hugging Face's open CAI recipe, 2024; no model is called). Each
    pair links to the sample's chain: the response and final revision records and every
    critique and revision in between. Samples whose revision equals the response are skipped
    and counted. All pairs are stored in one transaction, so a restart stores them once."""
    source_id = int(ctx.config["sl_cai_dataset_id"])
    with ctx.db.read() as s:
        source = training_repo.get_dataset(s, dataset_id=source_id)
        samples = list(training_repo.sl_cai_samples(s, dataset_id=source_id))
    if source is None or source.kind != "sl_cai":
        raise ValidationError(f"sl_cai_dataset_id: no SL-CAI dataset {source_id}; run the "
                              "SL-CAI data stage or pick another.")
    digest = _hash([x.content_hash for x in samples])
    note_dataset(ctx, "sl_cai_dataset", {"id": source_id, "samples": len(samples),
                                         "sha256": digest})
    dataset_id = job_dataset(ctx, "preference", name=f"Revision pairs (job {ctx.job_id})",
                             model=source.model, source=f"sl_cai:{source_id}",
                             source_sha256=digest,
                             constitution_version_id=source.constitution_version_id)
    with ctx.db.read() as s:
        done = training_repo.done_positions(s, dataset_id=dataset_id, kind="preference")
    rows: list[dict[str, Any]] = []
    identical = 0
    for x in samples:
        if x.position in done:
            continue
        if x.revision.strip() == x.response.strip():
            identical += 1
            continue
        # [A's record, B's record], as the labeller's pairs store them (none if one is unknown)
        response_ids = [x.final_record_id, x.response_record_id] \
            if x.final_record_id is not None and x.response_record_id is not None else []
        rows.append({
            "position": x.position, "prompt": x.prompt, "response_a": x.revision,
            "response_b": x.response, "p_a": 1.0, "verdict_chain_id": x.chain_id,
            "response_record_ids": response_ids, "verdict_record_ids": list(x.record_ids),
            "principle_keys": list(x.principle_keys), "variants": [],
            "content_hash": _hash([x.prompt, x.revision, x.response, 1.0, x.record_ids])})
    with ctx.db.write() as s:
        training_repo.insert_ai_pairs(s, dataset_id=dataset_id, rows=rows)
    total = len(rows) + len(done)
    ctx.metrics.write(len(samples), progress=1.0, pairs=total)
    return StageResult(outputs={"dataset_id": dataset_id, "pairs": total},
                       summary={"pairs": total, "new_pairs": len(rows),
                                "identical_skipped": identical, "samples": len(samples)})


def _usable(response: str) -> bool:
    """Whether the labeller accepts the text (non-empty, no control characters, not too long)."""
    try:
        clean_text(response, "response")
    except ValidationError:
        return False
    return True


def _hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
