"""`cstudio compare vote|votes|adjudicate`: people's votes on a comparison's pairs, the disputed
ones, and an editor's ruling, with the service's role rules (issue 16 points 5 and 7)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import col, select
from typer.testing import CliRunner

from backend.access import local_admin
from backend.errors import PermissionDeniedError, ValidationError
from backend.services.container import start
from backend.settings import Settings
from db import comparison_repo
from db.audit_models import AuditEvent
from studio.cli import app

runner = CliRunner()
PW = "a long enough password"


def cli(data_dir: Path, user: str, *args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)],
                           env={"CSTUDIO_USER": user, "CSTUDIO_ENGINE": "scripted"})
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, error


def ok(data_dir: Path, user: str, *args: str) -> str:
    code, out, error = cli(data_dir, user, *args)
    assert code == 0 and error is None, (out, error)
    return out


def _comparison(data_dir: Path) -> list[int]:
    """A comparison with three judged pairs, and its users: an admin, two editors and an
    auditor."""
    services = start(Settings(data_dir=data_dir, user="owner"))
    admin = local_admin("owner")
    for name, role in (("owner", "admin"), ("ann", "author"), ("bob", "author"),
                       ("aud", "auditor")):
        services.users.add(name, role, PW, actor=admin)
    head = services.constitutions.list_all()[0].head
    with services.db.write() as s:
        c = comparison_repo.create_comparison(
            s, name="c", constitution_version_id=head.id, policies=[], created_by="t",
            prompts=[{"text": f"q{i}", "tags": []} for i in range(3)])
        comparison_repo.insert_verdicts(s, comparison_id=c.id, rows=[{
            "prompt_index": i, "policy_a": 0, "policy_b": 1, "p_a": 0.8, "chain_id": "x",
            "per_principle": {}, "variants": [], "record_ids": []} for i in range(3)])
        pairs = [v.id for v in comparison_repo.verdicts(s, comparison_id=c.id)]
    services.close()
    assert c.id == 1
    return [p for p in pairs if p is not None]


def test_votes_disputes_and_adjudication(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    p1, p2, _ = _comparison(data_dir)
    assert "ann votes A" in ok(data_dir, "ann", "compare", "vote", "1", str(p1), "A")
    ok(data_dir, "bob", "compare", "vote", "1", str(p1), "B")
    ok(data_dir, "ann", "compare", "vote", "1", str(p2), "tie")
    ok(data_dir, "bob", "compare", "vote", "1", str(p2), "tie")
    code, _, error = cli(data_dir, "ann", "compare", "vote", "1", str(p1), "maybe")
    assert code != 0 and isinstance(error, ValidationError)

    table = ok(data_dir, "aud", "compare", "votes", "1")  # auditors read
    assert "2 voted pairs, 1 disputed" in table
    rows = {line.split()[1]: line for line in table.splitlines() if "#" in line}
    assert "ann: A, bob: B" in rows[f"#{p1}"] and "yes" in rows[f"#{p1}"]
    assert "ann: tie, bob: tie" in rows[f"#{p2}"] and "no" in rows[f"#{p2}"]

    # an auditor may not rule; an undisputed pair has nothing to rule on
    code, _, error = cli(data_dir, "aud", "compare", "adjudicate", "1", str(p1), "A")
    assert code != 0 and isinstance(error, PermissionDeniedError)
    code, _, error = cli(data_dir, "ann", "compare", "adjudicate", "1", str(p2), "A")
    assert code != 0 and isinstance(error, ValidationError) and f"#{p1}" in str(error)

    out = ok(data_dir, "bob", "compare", "adjudicate", "1", str(p1), "B", "--reason",
             "A is rude")
    assert f"pair #{p1}: ruled B by bob" in out
    table = ok(data_dir, "ann", "compare", "votes", "1")
    assert "B by bob (A is rude)" in table

    services = start(Settings(data_dir=data_dir, user="owner"))
    assert services.comparison_votes.labels(1)[p1] == 0.0  # the ruling is the pair's label
    with services.db.read() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "comparison.adjudicate")
                       .order_by(col(AuditEvent.id).desc())).first()
    services.close()
    assert event is not None and event.actor == "bob"
    payload = json.loads(event.payload)
    assert payload["label"] == "B" and payload["reason"] == "A is rude"
