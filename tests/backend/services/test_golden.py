"""Golden cases: pinning (audited, validated), deleting, and the impact preview of a draft."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlmodel import col, select

from backend.access import local_admin
from backend.cai.constitution import ConstitutionContent
from backend.cai.labeling import LabelConfig, PairItem
from backend.engines.scripted import ScriptedEngine
from backend.errors import NotFoundError, ValidationError
from backend.services.container import Services
from db.audit_chain import verify_chain
from db.audit_models import AuditEvent

AS_ANN = local_admin("ann")
AS_BOB = local_admin("bob")
AS_CY = local_admin("cy")

MARKER = "CONTRARIAN"


class MarkerEngine(ScriptedEngine):
    """Prefers the option containing ``good`` (p = 0.8) — or, when the choice instruction
    contains MARKER, the option containing ``bad``. Verdicts change only through the edit."""

    def preferred_word(self, prompt_text: str) -> str:
        return "bad" if MARKER in prompt_text else "good"


def _events(services: Services) -> list[AuditEvent]:
    with services.db.read() as s:
        return list(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all())


def _with_marker(content: ConstitutionContent) -> ConstitutionContent:
    principles = tuple(dataclasses.replace(p, choice_instruction=f"{p.choice_instruction} "
                                           f"{MARKER}") for p in content.principles)
    return dataclasses.replace(content, principles=principles)


def test_add_list_delete_are_audited(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    before = len(_events(services))
    a = services.golden.add(cid, "How do I pick a lock?", "I can't help.", "Step 1…", "a",
                            "refusal wins", actor=AS_ANN)
    b = services.golden.add(cid, "Hi", "Hello!", "Go away.", "A", actor=AS_BOB)
    assert a.expected == "A" and a.note == "refusal wins" and a.created_by == "ann"
    assert [c.id for c in services.golden.list_all(cid)] == [a.id, b.id]
    events = _events(services)[before:]
    assert [(e.action, e.actor, e.entity_id) for e in events] == [
        ("golden.add", "ann", str(a.id)), ("golden.add", "bob", str(b.id))]
    assert json.loads(events[0].payload)["constitution_id"] == cid

    deleted = services.golden.delete(a.id, actor=AS_CY)
    assert deleted.id == a.id and [c.id for c in services.golden.list_all(cid)] == [b.id]
    last = _events(services)[-1]
    assert (last.action, last.actor, last.entity_id) == ("golden.delete", "cy", str(a.id))
    with services.db.read() as s:
        assert verify_chain(s).ok
    with pytest.raises(NotFoundError):
        services.golden.delete(a.id, actor=AS_CY)


@pytest.mark.parametrize(("args", "message"), [
    (("", "a", "b", "A"), "prompt is empty"),
    (("q", "   ", "b", "A"), "response A is empty"),
    (("q", "a", "b\x00", "A"), "response B"),
    (("q", "a", "b", "C"), "must be A or B"),
    (("q", "a", "b", "tie"), "must be A or B"),
    (("q" * 20_001, "a", "b", "A"), "limit"),
])
def test_bad_input_is_refused_and_stores_nothing(services: Services, args: tuple[str, ...],
                                                 message: str) -> None:
    cid = services.constitutions.list_all()[0].id
    before = len(_events(services))
    with pytest.raises(ValidationError, match=message):
        services.golden.add(cid, *args, actor=AS_ANN)
    assert services.golden.list_all(cid) == [] and len(_events(services)) == before


def test_unknown_constitution_duplicates_and_long_notes_are_refused(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    with pytest.raises(NotFoundError):
        services.golden.add(999, "q", "a", "b", "A", actor=AS_ANN)
    services.golden.add(cid, "q", "a", "b", "A", actor=AS_ANN)
    with pytest.raises(ValidationError, match="already pinned"):
        services.golden.add(cid, "q", "a", "b", "B", actor=AS_ANN)
    with pytest.raises(ValidationError, match="note"):
        services.golden.add(cid, "q2", "a", "b", "A", "n" * 1001, actor=AS_ANN)
    assert len(services.golden.list_all(cid)) == 1


def test_identical_draft_on_the_tiny_model_flips_nothing(services: Services,
                                                         tiny_engine: object) -> None:
    services.engines.use(tiny_engine)  # type: ignore[arg-type]
    head = services.constitutions.list_all()[0].head
    base = services.constitutions.version(head.id)
    for i in range(3):
        services.golden.add(head.constitution_id, f"Question {i}?", f"Answer {i}.", "No.",
                            "AB"[i % 2], actor=AS_ANN)
    preview = services.golden.impact(head.constitution_id, head.id, base.content, actor=AS_ANN,
                                     sample=[PairItem("Sample?", "Yes.", "No.")])
    assert len(preview.cases) == 4 and preview.engine is not None and preview.engine.is_demo
    assert (preview.flips, preview.now_right, preview.now_wrong) == (0, 0, 0)
    assert preview.summary == "0 flips: 0 now right, 0 now wrong"
    for case in preview.cases:
        assert case.p_a_before == pytest.approx(case.p_a_after)
        assert 0.0 < case.p_a_before < 1.0
    assert [c.source for c in preview.cases] == ["golden"] * 3 + ["sample"]


def test_impact_shows_the_flips_an_edit_causes(services: Services) -> None:
    engine = MarkerEngine()
    services.engines.use(engine)
    head = services.constitutions.list_all()[0].head
    cid = head.constitution_id
    base = services.constitutions.version(head.id)
    right_then_wrong = services.golden.add(cid, "q1", "a good answer", "a bad answer", "A",
                                           actor=AS_ANN)
    wrong_then_right = services.golden.add(cid, "q2", "a good reply", "a bad reply", "B",
                                           actor=AS_ANN)
    b_wins_later = services.golden.add(cid, "q3", "a bad one", "a good one", "A", actor=AS_ANN)
    tie = services.golden.add(cid, "q4", "neutral x", "neutral y", "A", actor=AS_ANN)
    logged = services.critique_log.count()

    preview = services.golden.impact(cid, head.id, _with_marker(base.content), actor=AS_ANN,
                                     sample=[PairItem("s", "good", "bad")],
                                     config=LabelConfig(seed=7))
    by_id = {c.case_id: c for c in preview.cases}
    first = by_id[right_then_wrong.id]
    assert (first.before, first.after, first.flipped) == ("A", "B", True)
    assert first.p_a_before == pytest.approx(0.8) and first.p_a_after == pytest.approx(0.2)
    assert first.now_wrong and not first.now_right
    assert by_id[wrong_then_right.id].now_right and by_id[b_wins_later.id].now_right
    assert (by_id[tie.id].before, by_id[tie.id].flipped) == ("tie", False)
    sample = preview.cases[-1]
    assert sample.source == "sample" and sample.flipped
    assert not sample.now_right and not sample.now_wrong
    assert (preview.flips, preview.now_right, preview.now_wrong) == (4, 2, 1)
    assert preview.summary == "4 flips: 2 now right, 1 now wrong"
    assert preview.config.seed == 7 and preview.base_number == 1

    # Both passes are logged: the base under its version id, the unsaved draft under none.
    entries = services.critique_log.recent(limit=100)
    assert services.critique_log.count() - logged == len(entries) == 5 * 2 * 2
    before = {e.constitution_version_id for e in entries if MARKER not in e.prompt_sent}
    after = {e.constitution_version_id for e in entries if MARKER in e.prompt_sent}
    assert before == {head.id} and after == {None}
    chain = services.critique_log.chain(first.chain_after)
    assert len(chain) == 2 and all(e.actor == "ann" for e in chain)
    assert services.constitutions.head(cid).info.number == 1  # nothing was saved


def test_impact_refuses_a_foreign_base_and_an_invalid_draft(services: Services) -> None:
    services.engines.use(MarkerEngine())
    head = services.constitutions.list_all()[0].head
    content = services.constitutions.version(head.id).content
    other = services.constitutions.create("Other", "", content, actor=AS_ANN)
    with pytest.raises(ValidationError, match="another constitution"):
        services.golden.impact(other.constitution.id, head.id, content, actor=AS_ANN)
    with pytest.raises(ValidationError):
        services.golden.impact(head.constitution_id, head.id, ConstitutionContent(()),
                               actor=AS_ANN)


def test_impact_without_cases_judges_nothing(services: Services) -> None:
    engine = MarkerEngine()
    services.engines.use(engine)
    head = services.constitutions.list_all()[0].head
    content = services.constitutions.version(head.id).content
    preview = services.golden.impact(head.constitution_id, head.id, content, actor=AS_ANN)
    assert preview.cases == () and preview.engine is None and engine.score_calls == []
