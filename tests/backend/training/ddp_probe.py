"""The stage entry point, run by ``accelerate launch`` in the multi-process tests, with one
addition: when the final model is saved, each rank writes a digest of its own trained
weights to ``<job>/rank-<i>.sha256`` (so the test can compare the ranks' copies)."""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

from backend.training import entry, trainer_common
from backend.training.context import StageContext

_save_final = trainer_common.save_final


def weights_digest(model: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_final(ctx: StageContext, trainer: Any, tokenizer: Any) -> str:
    model = trainer.accelerator.unwrap_model(trainer.model)
    rank = int(os.environ.get("RANK", "0"))
    (ctx.job_dir / f"rank-{rank}.sha256").write_text(weights_digest(model), encoding="utf-8")
    return _save_final(ctx, trainer, tokenizer)


if __name__ == "__main__":  # patched only in the launched process, never in a test importing it
    trainer_common.save_final = save_final
    sys.exit(entry.main())
