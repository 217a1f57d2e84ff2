"""Issue 14, point 10: imports report every row they left out, by reason, in the UI and the
CLI; a second import of the same bytes warns; label values can be mapped, and 0/1 labels are
refused unless the mapping says which is A."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from backend.access import local_admin
from backend.services.container import Services
from backend.services.datasets import import_report
from studio.agreement_handlers import AgreementHandlers
from studio.cli import app

ADMIN = local_admin("tester")
HH = [{"chosen": "\n\nHuman: q1\n\nAssistant: good", "rejected": "\n\nHuman: q1\n\nAssistant: bad"},
      {"chosen": "\n\nHuman: q2", "rejected": "\n\nHuman: q2\n\nAssistant: bad"},
      {"chosen": "\n\nHuman: q3\n\nAssistant: a", "rejected": "\n\nHuman: qX\n\nAssistant: b"},
      {"chosen": "\n\nHuman: q4\n\nAssistant: a", "rejected": "\n\nHuman: q4\n\nAssistant: a"},
      {"chosen": "\n\nHuman: q1\n\nAssistant: good", "rejected": "\n\nHuman: q1\n\nAssistant: bad"}]


def _hh_file(tmp_path: Path) -> Path:
    path = tmp_path / "hh.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in HH) + "\n")
    return path


def test_report_names_each_reason_and_warns_on_the_same_file(services: Services,
                                                              tmp_path: Path) -> None:
    raw = _hh_file(tmp_path).read_bytes()
    first = services.datasets.import_file("hh.jsonl", raw, "hh_rlhf", actor=ADMIN)
    text = import_report(first)
    assert text.startswith("1 pairs; 3 skipped: ")
    for words in ("1 with no final assistant turn",
                  "1 whose two sides differ before the last turn",
                  "1 whose two responses are identical", "; 1 duplicates."):
        assert words in text, text
    assert "imported before" not in text
    again = services.datasets.import_file("hh.jsonl", raw, "hh_rlhf", actor=ADMIN)
    assert again.same_source_as == ((first.id, first.name),)
    assert f"imported before as #{first.id} 'hh'" in import_report(again)


def test_the_agreement_tab_shows_the_report(services: Services, tmp_path: Path) -> None:
    h = AgreementHandlers(services)
    path = str(_hh_file(tmp_path))
    message, _, _ = h.import_dataset(None, path, "hh_rlhf", "", "", "", "", "")
    assert "1 pairs; 3 skipped" in message and "no final assistant turn" in message
    message, _, _ = h.import_dataset(None, path, "hh_rlhf", "", "", "", "", "")
    assert "⚠️" in message and "imported before" in message


def test_label_values_in_the_ui(services: Services, tmp_path: Path) -> None:
    h = AgreementHandlers(services)
    path = tmp_path / "w.csv"
    path.write_text("q,x,y,winner\np1,a1,b1,1\np2,a2,b2,2\n")
    cols = ("q", "x", "y", "winner")
    message, *_ = h.import_dataset(None, str(path), "csv", "", *cols, "")
    assert "Nothing was imported" in message and "which response" in message
    message, *_ = h.import_dataset(None, str(path), "csv", "", *cols, "1=A, 2=B")
    assert "Imported" in message and "2 pairs" in message


def test_cli_reports_skips_and_takes_label_values(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    out = runner.invoke(app, ["dataset", "import", str(_hh_file(tmp_path)), *data],
                        catch_exceptions=False).output
    assert "1 pairs; 3 skipped" in out and "no final assistant turn" in out
    pairs = tmp_path / "w.csv"
    pairs.write_text("q,x,y,winner\np1,a1,b1,1\np2,a2,b2,2\n")
    columns = ["--column", "prompt=q", "--column", "response_a=x", "--column", "response_b=y",
               "--column", "label=winner"]
    refused = runner.invoke(app, ["dataset", "import", str(pairs), "--format", "csv",
                                  *columns, *data])
    assert refused.exit_code != 0 and "which response" in str(refused.exception)
    result = runner.invoke(app, ["dataset", "import", str(pairs), "--format", "csv", *columns,
                                 "--label-values", "1=A,2=B", *data], catch_exceptions=False)
    assert result.exit_code == 0 and "2 pairs; 0 skipped; 0 duplicates." in result.output
