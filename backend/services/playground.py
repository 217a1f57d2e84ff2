"""Playground use-cases: stream a critique→revision preview, judge an A/B pair, sample responses.

Each takes an optional ``policy`` (``base``, ``job:<id>`` of a finished SFT/RL/DPO job, or
``server:<model>``; issue 16 point 1): the model that answers, critiques, revises and judges.
None or ``base`` is the studio's active engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backend.access import Action, Principal, require
from backend.cai.critique_loop import (
    LoopConfig,
    LoopContext,
    LoopEvent,
    clean_text,
    stream_critique_loop,
)
from backend.cai.labeling import LabelConfig, PairItem, Verdict, label_pairs
from backend.cai.prompts import response_prompt
from backend.engines.base import Engine, EngineInfo, GenerationParams
from backend.errors import StudioError
from backend.services.constitutions import ConstitutionService, VersionDetail
from backend.services.critique_log import CritiqueLogService
from backend.services.engines import EngineManager
from backend.services.policy_engines import PolicyEngines
from backend.services.prompt_sets import load_first_human_turns


@dataclass(frozen=True)
class VerdictResult:
    verdict: Verdict
    version: VersionDetail
    engine: EngineInfo


class PlaygroundService:
    def __init__(self, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService, prompt_set_path: Path | None, *,
                 fallback: Callable[[], list[str]] | None = None,
                 policies: PolicyEngines | None = None) -> None:
        self._constitutions = constitutions
        self.policies = policies
        self._engines = engines
        self._log = critique_log
        self._prompt_set_path = prompt_set_path
        self._fallback = fallback
        self._prompts: list[str] | None = None

    def prompt_set(self) -> list[str]:
        """The demo prompts (first human turns of the configured HH-RLHF file), cached."""
        if self._prompts is None:
            path = self._prompt_set_path
            self._prompts = load_first_human_turns(path) if path and path.is_file() else []
            if not self._prompts and self._fallback is not None:
                try:  # the built-in prompt set (seeded at start)
                    self._prompts = self._fallback()
                except StudioError:
                    self._prompts = []
        return self._prompts

    @contextmanager
    def _engine(self, policy: str | None) -> Iterator[Engine]:
        if policy in (None, "", "base") or self.policies is None:
            yield self._engines.get()
            return
        with self.policies.use(policy) as (_, engine):
            yield engine

    def preview(self, version_id: int, prompt: str, config: LoopConfig, *, actor: Principal,
                response: str | None = None, policy: str | None = None
                ) -> Iterator[LoopEvent]:
        """Stream the response, then each round's critique and revision, logging every step."""
        require(actor, Action.RUN_PREVIEW)
        version = self._constitutions.version(version_id)
        with self._engine(policy) as engine:
            ctx = LoopContext(engine, version.content, version.info.id,
                              self._log.logger(actor.name))
            yield from stream_critique_loop(ctx, prompt, config, response)

    def verdict(self, version_id: int, item: PairItem, config: LabelConfig, *,
                actor: Principal, policy: str | None = None) -> VerdictResult:
        require(actor, Action.RUN_PREVIEW)
        version = self._constitutions.version(version_id)
        with self._engine(policy) as engine:
            [verdict] = label_pairs(engine, version.content, version.info.id, [item], config,
                                    self._log.logger(actor.name))
            return VerdictResult(verdict, version, engine.info)

    def sample_responses(self, prompt: str, *, actor: Principal, n: int = 2,
                         temperature: float = 1.0, max_tokens: int = 128, seed: int = 0,
                         policy: str | None = None) -> list[str]:
        """n different responses to one prompt (seeded sampling), e.g. to fill A and B."""
        require(actor, Action.RUN_PREVIEW)
        text = clean_text(prompt, "prompt")
        with self._engine(policy) as engine:
            return self._sample(engine, text, n, temperature, max_tokens, seed)

    @staticmethod
    def _sample(engine: Engine, text: str, n: int, temperature: float, max_tokens: int,
                seed: int) -> list[str]:
        out = []
        for i in range(n):
            params = GenerationParams(max_tokens=max_tokens, temperature=temperature,
                                      seed=seed + i)
            out.append(engine.generate([response_prompt(text, "chat")], params)[0].text)
        return out
