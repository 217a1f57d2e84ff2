"""Adjudication of annotator disagreement (issue 16 point 7): an editor rules on a pair whose
voters disagreed; the ruling is the pair's label in the votes dataset, is shown in the votes
view, is audited, and other roles are refused."""

from __future__ import annotations

import json
import re

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import PermissionDeniedError, ValidationError
from backend.services.container import Services
from db import comparison_repo
from db.audit_chain import iter_events
from studio.compare_votes import CompareVoteHandlers

HOSTILE = "<img src=x onerror=alert(1)>"


def _judged(services: Services, n: int) -> tuple[int, list[int]]:
    head = services.constitutions.list_all()[0].head
    with services.db.write() as s:
        c = comparison_repo.create_comparison(
            s, name="c", constitution_version_id=head.id, policies=[], created_by="t",
            prompts=[{"text": f"q{i}", "tags": []} for i in range(n)])
        assert c.id is not None
        comparison_repo.insert_responses(s, comparison_id=c.id, rows=[
            {"policy_index": p, "prompt_index": i, "response": f"r{p}{i}"}
            for p in range(2) for i in range(n)])
        comparison_repo.insert_verdicts(s, comparison_id=c.id, rows=[{
            "prompt_index": i, "policy_a": 0, "policy_b": 1, "p_a": 0.8, "chain_id": "x",
            "per_principle": {}, "variants": [], "record_ids": []} for i in range(n)])
        return c.id, [v.id for v in comparison_repo.verdicts(s, comparison_id=c.id)
                      if v.id is not None]


def test_a_ruling_becomes_the_dataset_label(services: Services) -> None:
    cid, pairs = _judged(services, 2)
    votes = services.comparison_votes
    votes.vote(cid, pairs[0], "A", actor=local_admin("ann"))
    votes.vote(cid, pairs[0], "B", actor=local_admin(HOSTILE))  # disputed: mean is a tie
    votes.vote(cid, pairs[1], "B", actor=local_admin("ann"))
    votes.vote(cid, pairs[1], "B", actor=local_admin("bob"))
    assert votes.labels(cid) == {pairs[0]: 0.5, pairs[1]: 0.0}

    author = Principal("editor", Role.AUTHOR)
    with pytest.raises(ValidationError, match=f"disputed pairs: #{pairs[0]}"):
        votes.adjudicate(cid, pairs[1], "A", actor=author)  # no disagreement there
    with pytest.raises(PermissionDeniedError):
        votes.adjudicate(cid, pairs[0], "A", actor=Principal("aud", Role.AUDITOR))
    with pytest.raises(ValidationError, match="A, B or tie"):
        votes.adjudicate(cid, pairs[0], "maybe", actor=author)
    ruled = votes.adjudicate(cid, pairs[0], "B", actor=author, reason=f"because {HOSTILE}")
    assert ruled.ruling == 0.0 and ruled.disputed
    assert votes.labels(cid) == {pairs[0]: 0.0, pairs[1]: 0.0}
    # inter-annotator agreement still reads the raw votes
    assert votes.agreement(cid).multi_voted == 2

    info = votes.make_dataset(cid, actor=author)
    items = services.datasets.items(info.id)
    # both pairs labelled B: the importer stores the preferred response first
    assert sorted((i.response_a, i.human_label) for i in items) == [("r10", 1.0), ("r11", 1.0)]
    with services.db.read() as s:
        events = [e for e in iter_events(s) if e.action == "comparison.adjudicate"]
    assert len(events) == 1
    payload = json.loads(events[0].payload)
    assert payload["label"] == "B" and payload["votes"] == {"ann": 1.0, HOSTILE: 0.0}
    assert events[0].actor == "editor"


def test_votes_view_shows_disputes_and_rulings_escaped(services: Services) -> None:
    cid, pairs = _judged(services, 1)
    v = CompareVoteHandlers(services)
    assert v.view(cid) == "No votes on this comparison yet."
    services.comparison_votes.vote(cid, pairs[0], "A", actor=local_admin("ann"))
    services.comparison_votes.vote(cid, pairs[0], "tie", actor=local_admin(HOSTILE))
    shown = v.view(cid)
    assert "1 disputed (1 not yet adjudicated)" in shown and "**disputed**" in shown
    assert not re.search(r"(?<!\\)<img", shown) and "\\<img" in shown
    message, shown = v.adjudicate(None, cid, pairs[0], "A", HOSTILE)  # type: ignore[arg-type]
    assert message.startswith(f"Adjudicated pair #{pairs[0]} as **A**")
    assert "(0 not yet adjudicated)" in shown and "adjudicated by tester" in shown
    assert not re.search(r"(?<!\\)<img", shown)
    assert "Not adjudicated" in v.adjudicate(None, cid, 999, "A", "")[0]  # type: ignore[arg-type]
