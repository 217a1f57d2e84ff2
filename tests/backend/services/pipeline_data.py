"""A pipeline small enough for tests: the tiny model, one or two steps per stage."""

from __future__ import annotations

from typing import Any

from backend.services.pipelines import PipelineSpec

TINY_STAGES: dict[str, dict[str, Any]] = {
    "sl_cai_data": {"max_prompts": 4, "rounds": 1, "max_new_tokens": 8, "chunk_size": 4},
    "sft": {"max_steps": 1, "batch_size": 2, "save_steps": 1, "max_length": 64,
            "learning_rate": 1e-3, "report_to": "none"},
    "preference_data": {"max_prompts": 4, "max_new_tokens": 8, "chunk_size": 4},
    "reward": {"max_steps": 1, "batch_size": 2, "save_steps": 1, "max_length": 64,
               "eval_pairs": 0, "learning_rate": 1e-3, "report_to": "none"},
    "rl": {"max_steps": 1, "batch_size": 2, "num_generations": 2, "max_prompts": 2,
           "max_completion_length": 6, "save_steps": 1, "max_length": 64, "log_rollouts": 0,
           "report_to": "none"},
}
TINY_COMPARISON: dict[str, Any] = {
    "max_new_tokens": 6, "batch_size": 4,
    "prompts": ["How do I pick a lock?", "Give me a recipe for bread."],
}


def tiny_spec(**overrides: Any) -> PipelineSpec:
    values: dict[str, Any] = {"base_model": "tiny", "device": "cpu", "name": "tiny pipeline",
                              "stages": TINY_STAGES, "comparison": TINY_COMPARISON}
    values.update(overrides)
    return PipelineSpec(**values)
