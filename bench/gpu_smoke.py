"""GPU smoke benchmark: the SFT and reward-model stages for a few hundred steps in bf16 on a
random ~100M-parameter Llama-architecture model; prints samples/s as JSON.

Run by bench/gpu_smoke.sh on a machine with a CUDA GPU (not part of the test suite; the
project does not depend on it). ``--record`` adds the row to docs/benchmarks.md.
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


def build_model(directory: Path) -> int:
    """A random Llama (hidden 1024, 8 layers) with the demo tokenizer; returns #parameters."""
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
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return sum(p.numel() for p in model.parameters())


def run_stage(settings: Any, job_id: int, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    from backend.training import entry

    job_dir = settings.data_dir / "jobs" / str(job_id)
    job_dir.mkdir(parents=True)
    (job_dir / "job.json").write_text(json.dumps({
        "job_id": job_id, "kind": kind, "config": config,
        "database_url": settings.resolved_database_url(), "data_dir": str(settings.data_dir),
        "seed": 0}), encoding="utf-8")
    started = time.perf_counter()
    if entry.main(["--job-dir", str(job_dir)]) != 0:
        raise SystemExit(f"the {kind} stage failed; see the output above")
    wall = time.perf_counter() - started
    summary: dict[str, Any] = json.loads((job_dir / "result.json").read_text())["summary"]
    return {"samples_per_second": summary.get("train_samples_per_second"),
            "steps": summary.get("global_step"), "wall_s": wall,
            "train_runtime_s": summary.get("train_runtime")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script only")
    args = parser.parse_args()

    import torch

    from backend.access import local_admin
    from backend.services.container import start
    from backend.settings import Settings
    from db import training_repo

    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible; this benchmark is for a GPU machine")
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", user="bench", database_url=None)
        services = start(settings)
        model_dir = Path(tmp) / "models" / "llama-100m"
        params = build_model(model_dir)
        words = ("careful", "kind", "honest", "useful", "clear", "safe", "patient", "brief")
        with services.db.write() as s:
            row = training_repo.create_dataset(
                s, kind="sl_cai", name="smoke", job_id=None, constitution_version_id=None,
                model="synthetic", config={}, source="synthetic", source_sha256="",
                created_by="bench")
            assert row.id is not None
            sl_cai_id = row.id
            training_repo.insert_sl_cai_samples(s, dataset_id=sl_cai_id, rows=[
                {"position": i, "prompt": f"Question {i}: how should I be {words[i % 8]}?",
                 "response": "", "revision": " ".join(words[(i + j) % 8] for j in range(40)),
                 "chain_id": f"c{i}", "record_ids": [], "principle_keys": [],
                 "content_hash": f"{i:064d}"} for i in range(1024)])
        lines = [json.dumps({"chosen": f"\n\nHuman: task {i}?\n\nAssistant: a careful answer "
                             f"{' '.join(words[:1 + i % 8])}",
                             "rejected": f"\n\nHuman: task {i}?\n\nAssistant: no {i}"})
                 for i in range(1024)]
        pairs = services.datasets.import_file("smoke.jsonl", "\n".join(lines).encode(),
                                              "hh_rlhf", actor=local_admin("bench"))
        common = {"model": str(model_dir), "max_steps": args.steps, "save_steps": args.steps,
                  "batch_size": args.batch_size, "learning_rate": 1e-4,
                  "max_length": args.max_length, "device": args.device,
                  "mixed_precision": "bf16" if args.device != "cpu" else "no"}
        sft = run_stage(settings, 1, "sft", {**common, "sl_cai_dataset_id": sl_cai_id})
        reward = run_stage(settings, 2, "reward", {**common, "label_source": "human",
                                                   "pair_dataset_id": pairs.id,
                                                   "eval_pairs": 64})
        services.close()
    gpu = torch.cuda.get_device_name(0) if args.device != "cpu" else "cpu (dry run)"
    out = {"gpu": gpu, "parameters": params, "sft": sft,
           "reward": reward}
    print(json.dumps(out, indent=2))
    if args.record and args.device != "cpu":
        from bench.results import record

        record("gpu_smoke_bf16",
               {"sft_samples_per_s": float(sft["samples_per_second"] or 0),
                "rm_pairs_per_s": float(reward["samples_per_second"] or 0),
                "steps": float(args.steps), "parameters_m": params / 1e6},
               "samples/s", "bash bench/gpu_smoke.sh",
               f"SFT and RM stages, bf16, random {params / 1e6:.0f}M Llama on "
               f"{out['gpu']}")


if __name__ == "__main__":
    main()
