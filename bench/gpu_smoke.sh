#!/usr/bin/env bash
# GPU smoke benchmark (issue 5): trains the SFT and reward-model stages for a few hundred steps
# in bf16 on a random ~100M-parameter Llama model and prints samples/s as JSON; with --record
# (the default here) the numbers go to bench/results/gpu_smoke_bf16.json and docs/benchmarks.md.
# Needs a CUDA GPU and the project's environment with the train extra; the project does not
# depend on it. Usage: bash bench/gpu_smoke.sh [--steps 300] [--batch-size 16]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
exec "$PYTHON" -m bench.gpu_smoke --record "$@"
