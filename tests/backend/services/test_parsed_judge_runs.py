"""Agreement runs with the parse-the-answer judge store hard labels, and the report and the
disagreement browser say so (issue 16 point 9)."""

from __future__ import annotations

import pytest

from backend.access import local_admin
from backend.errors import ValidationError
from backend.services.container import Services
from backend.services.evaluations import EvaluationConfig
from studio.agreement_handlers import AgreementHandlers
from tests.backend.cai.test_parsed_judge import AnsweringEngine
from tests.backend.services.agreement_data import add_dataset

ANN = local_admin("ann")


def test_parsed_agreement_run(services: Services) -> None:
    services.engines.use(AnsweringEngine(word="Helpful", mumble="Question 3?"))
    ds = add_dataset(services, 6)
    version = services.constitutions.list_all()[0].head.id
    with pytest.raises(ValidationError, match="Judge mode"):
        services.evaluations.create(dataset_id=ds, version_id=version, actor=ANN,
                                    config=EvaluationConfig(judge="logits"))
    info = services.evaluations.create(dataset_id=ds, version_id=version, actor=ANN,
                                       config=EvaluationConfig(judge="parsed"))
    done = services.evaluations.run(info.id, actor=ANN)
    assert done.status == "done" and done.config["judge"] == "parsed"
    arrays = services.agreement.arrays(info.id)
    assert sorted(set(arrays.p_a.tolist())) == [0.5, 1.0]  # hard labels, one unparsed tie
    report = services.agreement.report(info.id, n_boot=50)
    assert report.judge == "parsed" and report.unparsed_verdicts == 1
    rows, total = services.agreement.disagreements(info.id, only_disagreements=False,
                                                   limit=10)
    assert total == 6 and all(r.hard for r in rows)
    assert [r.unparsed for r in rows if r.p_a == 0.5] == [2]  # both orders unparseable

    h = AgreementHandlers(services)
    table = h.report(info.id)[0]
    assert "**Judge: parsed answers.** HARD labels" in table and "1 of 6 verdicts" in table
    shown = h.disagreements(info.id, "", 0.5, 1.0, "any", False, 1)
    assert shown.count("hard label (parsed)") == 6 and "2 answer(s) unparseable → tie" in shown


def test_scored_runs_say_nothing_about_hard_labels(services: Services) -> None:
    from backend.engines.scripted import ScriptedEngine

    services.engines.use(ScriptedEngine())
    ds = add_dataset(services, 2)
    version = services.constitutions.list_all()[0].head.id
    info = services.evaluations.create(dataset_id=ds, version_id=version, actor=ANN,
                                       config=EvaluationConfig())
    services.evaluations.run(info.id, actor=ANN)
    assert "Judge: parsed" not in AgreementHandlers(services).report(info.id)[0]
    rows, _ = services.agreement.disagreements(info.id, only_disagreements=False)
    assert not any(r.hard for r in rows)
