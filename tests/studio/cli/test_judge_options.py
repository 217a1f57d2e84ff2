"""`--judge scored|parsed` on `cstudio compare create` and `cstudio eval create`, and the judge
note in `compare report` (text and --json) and `eval report` (issue 16 points 5 and 9)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from backend.access import local_admin
from backend.engines.scripted import ScriptedEngine
from backend.services.container import start
from backend.settings import Settings
from db import comparison_repo
from studio.cli import app
from tests.backend.cai.test_parsed_judge import AnsweringEngine
from tests.backend.services.agreement_data import add_dataset

runner = CliRunner()
ENV = {"CSTUDIO_ENGINE": "scripted", "CSTUDIO_USER": "tester"}


def cli(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], env=ENV)
    assert result.exit_code == code, result.output
    return result.output


def _policy_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "saved-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return folder


def test_compare_create_with_the_parsed_judge_and_its_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    prompts = tmp_path / "harmless-prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n"
                               for i in range(3)), encoding="utf-8")
    common = ["compare", "create", "-p", "base", "-p", str(_policy_dir(tmp_path)),
              "--prompt-set", str(prompts)]
    assert "--judge" in cli(data_dir, *common, "--judge", "logits", code=2)
    assert "Created comparison 1" in cli(data_dir, *common, "--judge", "parsed")
    assert "Created comparison 2" in cli(data_dir, *common)  # scored by default

    services = start(Settings(data_dir=data_dir, user="tester", engine="scripted"))
    assert services.comparisons.get(1).config.judge == "parsed"
    assert services.comparisons.get(2).config.judge == "scored"
    hard = {"judge": "parsed", "hard": True, "answer": "A)", "unparsed": False}
    with services.db.write() as s:
        for cid in (1, 2):
            comparison_repo.insert_verdicts(s, comparison_id=cid, rows=[{
                "prompt_index": i, "policy_a": 0, "policy_b": 1,
                "p_a": 0.5 if i == 2 else 1.0, "chain_id": "x", "per_principle": {},
                "variants": [hard | {"unparsed": i == 2}] if cid == 1 else [],
                "record_ids": []} for i in range(3)])
    services.close()

    text = cli(data_dir, "compare", "report", "1", "--n-boot", "50")
    assert "Judge: HARD labels parsed from the judge's written answer" in text
    assert "1 of 3 verdicts had an unparseable answer" in text
    data = json.loads(cli(data_dir, "compare", "report", "1", "--json", "--n-boot", "50"))
    assert data["judge"] == "parsed" and data["unparsed"] == 1 and data["verdicts"] == 3
    scored = cli(data_dir, "compare", "report", "2", "--n-boot", "50")
    assert "Judge: soft labels (p(A) from the judge's logprobs)" in scored
    data = json.loads(cli(data_dir, "compare", "report", "2", "--json", "--n-boot", "50"))
    assert data["judge"] == "scored" and data["unparsed"] == 0


def test_eval_create_with_the_parsed_judge_and_its_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="tester", engine="scripted"))
    ds = add_dataset(services, 6)
    name = services.constitutions.list_all()[0].name
    services.close()

    assert "--judge" in cli(data_dir, "eval", "create", str(ds), name, "--judge", "x", code=2)
    assert "Created run 1: 6 pairs" in cli(data_dir, "eval", "create", str(ds), name,
                                           "--judge", "parsed")
    assert "Created run 2: 6 pairs" in cli(data_dir, "eval", "create", str(ds), name)

    services = start(Settings(data_dir=data_dir, user="tester", engine="scripted"))
    assert services.evaluations.get(1).config["judge"] == "parsed"
    assert services.evaluations.get(2).config["judge"] == "scored"
    services.engines.use(AnsweringEngine(word="Helpful", mumble="Question 3?"))
    services.evaluations.run(1, actor=local_admin("tester"))
    services.engines.use(ScriptedEngine())  # the scored judge asks for logprobs
    services.evaluations.run(2, actor=local_admin("tester"))
    services.close()

    parsed = cli(data_dir, "eval", "report", "1")
    assert "Judge: HARD labels parsed" in parsed and "1 of 6 verdicts" in parsed
    assert "Judge: soft labels" in cli(data_dir, "eval", "report", "2")
