#!/usr/bin/env bash
# GPU smoke check (issue 19): SFT, RM, DPO, GRPO and PPO on SmolLM2 in bf16 on one GPU, each a
# few steps through the real stage entry point; samples/s and peak GPU memory per stage go to
# bench/results/gpu_smoke.json and a row in docs/benchmarks.md. Sized for a lent GPU machine
# within 10 minutes. That machine has no network: put the model in the Hub cache first
# (`huggingface-cli download HuggingFaceTB/SmolLM2-135M-Instruct`) or pass a local directory
# with --model DIR (or --model random for a random ~100M Llama).
# Usage: bash bench/gpu_smoke.sh [--model DIR] [--steps 30] [--batch-size 8] [--stages sft,dpo]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
exec timeout 570 "$PYTHON" -m bench.gpu_smoke --record "$@"
