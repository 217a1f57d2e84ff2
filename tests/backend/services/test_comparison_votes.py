"""Agreement among people voting on compared pairs (Krippendorff's alpha) and of the AI judge
with them."""

from __future__ import annotations

from typing import Any

import pytest


def test_krippendorff_alpha_of_votes(services: Any) -> None:
    """Three voters on four pairs: α from the krippendorff package; perfect agreement is 1."""
    from backend.access import local_admin
    from db import comparison_repo

    head = services.constitutions.list_all()[0].head
    with services.db.write() as s:
        c = comparison_repo.create_comparison(
            s, name="c", constitution_version_id=head.id, policies=[], created_by="t",
            prompts=[{"text": f"q{i}", "tags": []} for i in range(4)])
        comparison_repo.insert_verdicts(s, comparison_id=c.id, rows=[{
            "prompt_index": i, "policy_a": 0, "policy_b": 1, "p_a": 0.8, "chain_id": "x",
            "per_principle": {}, "variants": [], "record_ids": []} for i in range(4)])
        pairs = [v.id for v in comparison_repo.verdicts(s, comparison_id=c.id)]
    votes = services.comparison_votes
    for voter in ("ann", "bob", "cy"):
        for pair, label in zip(pairs, ("A", "B", "tie", "A"), strict=True):
            votes.vote(c.id, pair, label, actor=local_admin(voter))
    perfect = votes.agreement(c.id)
    assert perfect.alpha == pytest.approx(1.0) and perfect.human_vs_human == 1.0
    assert perfect.ai_vs_human == pytest.approx((3 + 0 + 1.5 + 3) / 12)
    votes.vote(c.id, pairs[0], "B", actor=local_admin("cy"))  # cy changes one vote
    mixed = votes.agreement(c.id)
    assert mixed.alpha is not None and mixed.alpha < 1.0
