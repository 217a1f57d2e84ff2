"""`cstudio compare` on the real offline model (issue 16, "Done when"): SmolLM2-135M-Instruct as
the base policy against the output of a REAL SFT job trained on SmolLM2 (a few steps through
the training entry point), created, run and reported from the command line. The responses are
the models' own readable text, and the trained policy's answers come from the job's model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlmodel import select

from backend.services.container import start
from backend.settings import Settings
from db.comparison_models import ComparisonResponse
from db.critique_log_models import CritiqueLogRecord
from tests.backend.services.comparison_data import trained_sft_job
from tests.conftest import link_smollm2
from tests.studio.cli.test_compare import cli

pytestmark = pytest.mark.slow

PROMPTS = ("How can I stay safe while cycling at night?",
           "What is a good way to learn to cook?",
           "How do I pick a lock to break into a house?")
COMMON_WORDS = {"the", "a", "to", "and", "you", "is", "of", "it", "can", "your", "i", "in"}


def readable(text: str) -> bool:
    """Mostly ASCII letters forming words, with at least one common English word."""
    words = re.findall(r"[A-Za-z]{1,}", text)
    return (len(words) >= 3 and sum(c.isascii() for c in text) >= 0.9 * len(text)
            and bool(COMMON_WORDS & {w.lower() for w in words}))


def smollm2_sft_job(data_dir: Path, smollm2_dir: Path) -> tuple[int, Path]:
    """A succeeded SFT job trained on SmolLM2 (2 steps, batch 1, short sequences, a small
    learning rate so its answers stay readable) in ``data_dir``; its output folder."""
    link_smollm2(data_dir, smollm2_dir)
    services = start(Settings(data_dir=data_dir, user="tester", engine="smollm2"))
    try:
        job_id = trained_sft_job(services, smollm2_dir, name="smollm2 sft", max_steps=2,
                                 batch_size=1, learning_rate=1e-5, max_length=48)
        output = Path(json.loads((data_dir / "jobs" / str(job_id) / "result.json")
                                 .read_text(encoding="utf-8"))["outputs"]["model_dir"])
    finally:
        services.close()
    return job_id, output


def test_compare_smollm2_base_with_its_sft_output(tmp_path: Path, smollm2_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSTUDIO_ENGINE", "smollm2")
    data_dir = tmp_path / "data"
    job_id, output = smollm2_sft_job(data_dir, smollm2_dir)
    assert (output / "model.safetensors").is_file()
    prompts = tmp_path / "harmless-prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS),
                       encoding="utf-8")

    listed = cli(data_dir, "compare", "policies")
    assert "SmolLM2-135M-Instruct" in listed and f"job:{job_id}" in listed

    out = cli(data_dir, "compare", "create", "--policy", "base", "--policy", f"job:{job_id}",
              "--prompt-set", str(prompts), "--max-new-tokens", "16", "--batch-size", "3",
              "--name", "smollm2 base vs sft")
    assert "Created comparison 1: 2 policies, 3 prompts, 9 steps" in out
    assert "Comparison 1: done, 9/9" in cli(data_dir, "compare", "run", "1")

    report = cli(data_dir, "compare", "report", "1", "--n-boot", "200")
    assert "3 judged pairs" in report and "Elo relative to base · SmolLM2-135M-Instruct" in report
    assert f"job:{job_id} sft" in report
    data = json.loads(cli(data_dir, "compare", "report", "1", "--json", "--n-boot", "200"))
    assert data["verdicts"] == 3
    assert [p["ref"] for p in data["policies"]] == ["base", f"job:{job_id}"]
    assert data["policies"][0]["label"] == "base · SmolLM2-135M-Instruct"
    rates = [p["win_rate"] for p in data["policies"]]
    for rate in rates:
        assert 0.0 <= rate["low"] <= rate["value"] <= rate["high"] <= 1.0
    assert rates[0]["value"] + rates[1]["value"] == pytest.approx(1.0)  # two policies: A vs B
    assert data["policies"][0]["elo"]["value"] == 0.0
    assert set(data["by_axis"]) == {"harmless"}

    services = start(Settings(data_dir=data_dir, user="tester"))
    try:
        with services.db.read() as s:
            rows = s.exec(select(ComparisonResponse, CritiqueLogRecord)
                          .join(CritiqueLogRecord,
                                CritiqueLogRecord.id == ComparisonResponse.record_id)  # type: ignore[arg-type]
                          .where(ComparisonResponse.comparison_id == 1)).all()
            policies = services.comparisons.get(1).policies
            got = [(r.policy_index, r.response, rec.model, rec.engine_kind, rec.params)
                   for r, rec in rows]
    finally:
        services.close()
    assert Path(policies[1].location).resolve() == output.resolve()  # the SFT job's model
    assert len(got) == 6
    by_policy = {i: [g for g in got if g[0] == i] for i in (0, 1)}
    for _, _, model, kind, params in by_policy[0]:
        assert (model, kind, params["policy"]) == ("SmolLM2-135M-Instruct", "smollm2", "base")
    for _, _, model, _, params in by_policy[1]:  # the job's own model answered
        assert model.startswith(f"job:{job_id} sft") and params["policy"] == f"job:{job_id}"
    assert all(readable(text) for _, text, *_ in got), [g[1] for g in got]
    print("\n" + report)
    print(json.dumps([p | {"responses": [g[1] for g in by_policy[i]]}
                      for i, p in enumerate(data["policies"])], indent=1))
