"""The TRL config arguments every trainer stage builds from its job config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.training import registry, trainer_common
from backend.training.context import StageContext


def _ctx(tmp_path: Path, **config: Any) -> StageContext:
    defaults = {f.name: f.default for f in registry.stage("reward").fields}
    return StageContext(job_dir=tmp_path, job_id=1, kind="reward",
                        config={**defaults, "device": "cpu", **config}, db=None,  # type: ignore[arg-type]
                        data_dir=tmp_path, seed=0)


def test_gradient_checkpointing_follows_the_field_and_defaults_to_trls_choice(
        tmp_path: Path) -> None:
    """TRL turns checkpointing on in every trainer config; the field can turn it off (on a
    CPU it costs about a third more compute for memory the machine has)."""
    import warnings

    from trl.trainer.reward_config import RewardConfig

    assert trainer_common.args_kwargs(_ctx(tmp_path))["gradient_checkpointing"] is True
    off = trainer_common.args_kwargs(_ctx(tmp_path, gradient_checkpointing=False))
    assert off["gradient_checkpointing"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert RewardConfig(**off).gradient_checkpointing is False
