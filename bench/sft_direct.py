"""The baseline of bench_job_overhead: TRL's SFTTrainer run directly in a script, with the
same model, rows and training arguments as the studio's sft stage (bf16/fp16 off, as the stage
sets them), and no job system (no worker, no accelerate launch, no database, no metrics file).

    python -m bench.sft_direct --rows rows.json --model DIR --out DIR --steps N
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", required=True, type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", required=True, type=int)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = json.loads(args.rows.read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    config = SFTConfig(
        output_dir=str(args.out / "checkpoints"), max_steps=args.steps, learning_rate=1e-4,
        per_device_train_batch_size=args.batch_size, save_strategy="steps",
        save_steps=args.steps, save_total_limit=2, logging_steps=1, logging_first_step=True,
        report_to=[], seed=0, data_seed=0, use_cpu=True, disable_tqdm=True,
        dataloader_pin_memory=False, lr_scheduler_type="constant_with_warmup", warmup_steps=0,
        max_length=args.max_length, completion_only_loss=True, dataset_num_proc=None,
        # exactly the stage's arguments (trainer_common.args_kwargs): TRL's defaults differ
        # (bf16 on where supported), which made the two arms train differently
        bf16=False, fp16=False, per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=1, remove_unused_columns=True)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(args.out / "output"))
    tokenizer.save_pretrained(str(args.out / "output"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
