"""GPU smoke check (issue 19): SFT, reward model, DPO, GRPO and PPO on SmolLM2 in bf16 on one
GPU, through the real stage entry point; samples/s and peak GPU memory per stage go to
bench/results/gpu_smoke.json (and a row in docs/benchmarks.md with ``--record``).

Run by bench/gpu_smoke.sh on a machine with a CUDA GPU, sized to finish within 10 minutes
(few steps per stage). The GPU machine has no network: the model must be a local directory
or already in the Hub cache (``--model``); ``--model random`` builds a random ~100M-parameter
Llama instead (no download). ``--device cpu`` is a dry run of the script with tiny settings.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ("careful", "kind", "honest", "useful", "clear", "safe", "patient", "brief")


def build_random_model(directory: Path) -> Path:
    """A random Llama (hidden 1024, 8 layers) with the demo tokenizer (offline)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from backend.engines.tiny import build_tiny_model

    tiny = build_tiny_model(directory.parent / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816,
                         num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def run_stage(settings: Any, job_id: int, kind: str, config: dict[str, Any],
              samples_per_step: int) -> dict[str, Any]:
    """Run one stage in process; its samples/s, peak GPU memory and wall time."""
    import torch

    from backend.training import entry

    job_dir = settings.data_dir / "jobs" / str(job_id)
    job_dir.mkdir(parents=True)
    (job_dir / "job.json").write_text(json.dumps({
        "job_id": job_id, "kind": kind, "config": config,
        "database_url": settings.resolved_database_url(), "data_dir": str(settings.data_dir),
        "seed": 0}), encoding="utf-8")
    cuda = torch.cuda.is_available() and config["device"] != "cpu"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    code = entry.main(["--job-dir", str(job_dir)])
    wall = time.perf_counter() - started
    if code != 0:
        return {"error": f"the {kind} stage exited with {code}; see the output above",
                "wall_s": wall}
    summary: dict[str, Any] = json.loads((job_dir / "result.json").read_text())["summary"]
    steps = int(summary.get("global_step") or 0)
    runtime = float(summary.get("train_runtime") or wall)
    rate = summary.get("train_samples_per_second") or (steps * samples_per_step / runtime)
    return {"samples_per_second": float(rate), "steps": steps, "wall_s": wall,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "model_dir": str(job_dir / "output")}


def seed_data(services: Any) -> tuple[int, int, int]:
    """(sl_cai dataset, human pair dataset, AI preference dataset) of synthetic rows."""
    from backend.access import local_admin
    from db import training_repo

    with services.db.write() as s:
        sl = training_repo.create_dataset(
            s, kind="sl_cai", name="smoke", job_id=None, constitution_version_id=None,
            model="synthetic", config={}, source="synthetic", source_sha256="",
            created_by="bench")
        pref = training_repo.create_dataset(
            s, kind="preference", name="smoke", job_id=None, constitution_version_id=None,
            model="synthetic", config={}, source="synthetic", source_sha256="",
            created_by="bench")
        assert sl.id is not None and pref.id is not None
        training_repo.insert_sl_cai_samples(s, dataset_id=sl.id, rows=[
            {"position": i, "prompt": f"Question {i}: how should I be {WORDS[i % 8]}?",
             "response": "", "revision": " ".join(WORDS[(i + j) % 8] for j in range(40)),
             "chain_id": f"c{i}", "record_ids": [], "principle_keys": [],
             "content_hash": f"{i:064d}"} for i in range(512)])
        training_repo.insert_ai_pairs(s, dataset_id=pref.id, rows=[
            {"position": i, "prompt": f"Tell me how to be {WORDS[i % 8]} {i}.",
             "response_a": f"Be {' '.join(WORDS[:1 + i % 8])}.", "response_b": f"No {i}.",
             "p_a": 0.8, "verdict_chain_id": f"v{i}", "response_record_ids": [],
             "verdict_record_ids": [], "principle_keys": ["k"], "variants": [],
             "content_hash": f"{i:064d}"} for i in range(512)])
        sl_id, pref_id = sl.id, pref.id
    lines = [json.dumps({"chosen": f"\n\nHuman: task {i}?\n\nAssistant: a careful answer "
                         f"{' '.join(WORDS[:1 + i % 8])}",
                         "rejected": f"\n\nHuman: task {i}?\n\nAssistant: no {i}"})
             for i in range(512)]
    pairs = services.datasets.import_file("smoke.jsonl", "\n".join(lines).encode(), "hh_rlhf",
                                          actor=local_admin("bench"))
    return sl_id, pairs.id, pref_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct",
                        help="local directory or Hub id already in the cache; 'random': a "
                             "random ~100M Llama")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stages", default="sft,reward,dpo,grpo,ppo")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script only")
    args = parser.parse_args()

    import torch

    from backend.services.container import start
    from backend.settings import Settings

    cpu = args.device == "cpu"
    if not cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible; this check is for a GPU machine")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", user="bench", database_url=None)
        services = start(settings)
        model = str(build_random_model(Path(tmp) / "models" / "llama-100m")) \
            if args.model == "random" else args.model
        sl_id, pairs_id, pref_id = seed_data(services)
        batch = args.batch_size
        common = {"model": model, "max_steps": args.steps, "save_steps": args.steps,
                  "batch_size": batch, "learning_rate": 1e-5, "max_length": args.max_length,
                  "device": args.device, "mixed_precision": "no" if cpu else "bf16",
                  "report_to": "none"}
        rl = {**common, "max_prompts": 64, "max_completion_length": 32 if not cpu else 4,
              "reward_models": [{"model": str(settings.data_dir / "jobs" / "2" / "output"),
                                 "weight": 1.0}]}
        plan: list[tuple[str, str, dict[str, Any], int]] = [
            ("sft", "sft", {**common, "sl_cai_dataset_id": sl_id}, batch),
            ("reward", "reward", {**common, "label_source": "human",
                                  "pair_dataset_id": pairs_id, "eval_pairs": 32}, batch),
            ("dpo", "dpo", {**common, "preference_dataset_id": pref_id}, batch),
            ("grpo", "rl", {**rl, "algorithm": "grpo", "num_generations": 4}, batch),
            ("ppo", "rl", {**rl, "algorithm": "ppo", "ppo_epochs": 1}, batch),
        ]
        for job_id, (name, kind, config, per_step) in enumerate(plan, start=1):
            if name in stages:
                print(f"--- {name}", flush=True)
                results[name] = run_stage(settings, job_id, kind, config, per_step)
        services.close()
    gpu = torch.cuda.get_device_name(0) if not cpu else "cpu (dry run)"
    out = {"gpu": gpu, "model": args.model, "steps": args.steps, "batch_size": batch,
           "stages": results}
    print(json.dumps(out, indent=2))
    if args.record and not cpu:
        from bench.results import record

        figures: dict[str, float] = {"steps": float(args.steps)}
        for name, r in results.items():
            if "error" not in r:
                figures[f"{name}_samples_per_s"] = r["samples_per_second"]
                figures[f"{name}_peak_gib"] = r["peak_memory_gib"] or 0.0
        record("gpu_smoke", figures, "samples/s, GiB", "bash bench/gpu_smoke.sh",
               f"SFT, RM, DPO, GRPO, PPO on {args.model} in bf16, one {gpu}; failed: "
               + (", ".join(n for n, r in results.items() if "error" in r) or "none"))
    if any("error" in r for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
