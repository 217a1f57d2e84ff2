"""An engine as the Training and Pipelines tabs see it when they pick a form's defaults: only
its description (nothing is generated)."""

from __future__ import annotations

from backend.engines.base import EngineInfo


class DescribedEngine:
    def __init__(self, kind: str, model: str, *, is_demo: bool = False) -> None:
        self.info = EngineInfo(kind, model, is_demo=is_demo)  # type: ignore[arg-type]

    def close(self) -> None:
        pass
