"""Verdicts resting on a bounded estimate are stored, counted in the report and shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from backend.access import local_admin
from backend.engines.base import ChoiceScores, Prompt
from backend.services.container import Services
from backend.services.evaluations import EvaluationConfig
from db import evaluation_repo
from tests.backend.services.agreement_data import add_dataset

AS_ANN = local_admin("ann")


class BoundingEngine:
    """The tiny engine, but B is 'absent from the top-k' on odd items' prompts."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.info = inner.info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        scores = self._inner.score_choices(prompts, choices)
        odd = ("Question 1?", "Question 3?")
        return [replace(s, bounded=("B",), logprobs={**s.logprobs, "B": None},
                        top_tokens={"A": -1.0, "The": -2.0})
                if any(q in s.prompt_sent for q in odd) else s for s in scores]


def test_bounded_verdicts_are_stored_and_reported(services: Services, tiny_engine: Any) -> None:
    services.engines.use(BoundingEngine(tiny_engine))  # type: ignore[arg-type]
    ds = add_dataset(services, 4)
    head = services.constitutions.list_all()[0].head.id
    info = services.evaluations.create(dataset_id=ds, version_id=head,
                                       config=EvaluationConfig(batch_size=4), actor=AS_ANN)
    services.evaluations.run(info.id, actor=AS_ANN)
    with services.db.read() as s:
        rows = evaluation_repo.evaluation_verdicts(s, evaluation_id=info.id)
    assert [r.bounded for r in rows] == [0, 2, 0, 2]  # both orders of items 1 and 3
    report = services.agreement.report(info.id, n_boot=50)
    assert report.bounded_verdicts == 2
    record = services.critique_log.get(rows[1].record_ids[0])
    assert record is not None and record.probabilities is not None
    assert record.probabilities["bounded"] == ["B"]
    assert record.probabilities["top_tokens"] == {"A": -1.0, "The": -2.0}


def test_the_agreement_tab_says_how_many_verdicts_were_bounded(services: Services,
                                                               tiny_engine: Any) -> None:
    from studio.agreement_handlers import AgreementHandlers

    services.engines.use(BoundingEngine(tiny_engine))  # type: ignore[arg-type]
    ds = add_dataset(services, 4)
    head = services.constitutions.list_all()[0].head.id
    info = services.evaluations.create(dataset_id=ds, version_id=head,
                                       config=EvaluationConfig(batch_size=4), actor=AS_ANN)
    services.evaluations.run(info.id, actor=AS_ANN)
    table, *_ = AgreementHandlers(services).report(info.id)
    assert "**2 of 4 verdicts bounded**" in table
