"""Issue 18 point 2: one list of training stages (``stage_fields.STAGES``). Each StageInfo
carries its module and upstream; the entry point, the job service and the Training tab read
them. These tests fail when a kind is missing anywhere."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from backend.training import entry, registry
from backend.training.stage_fields import STAGES

ROOT = Path(__file__).resolve().parents[3]
KINDS = [s.kind for s in STAGES]


def test_kinds_are_unique_and_each_has_a_runnable_module() -> None:
    assert len(KINDS) == len(set(KINDS))
    for info in STAGES:
        module = importlib.import_module(info.module)
        assert callable(getattr(module, "run", None)), f"{info.module} has no run(ctx)"


def test_every_stage_module_is_listed() -> None:
    """A new stage module (a ``run(ctx: StageContext)``) that is not in STAGES fails here."""
    listed = {s.module for s in STAGES}
    for path in sorted((ROOT / "backend" / "training").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"
                and n.args.args and ast.unparse(n.args.args[0].annotation or ast.Constant(""))
                == "StageContext"]
        name = f"backend.training.{path.stem}"
        if runs and path.stem != "ppo":  # ppo.run is the rl stage's algorithm, not a stage
            assert name in listed, f"{name} defines run(ctx) but is not a stage in STAGES"


def test_upstream_names_a_model_stage() -> None:
    model_kinds = {s.kind for s in STAGES if s.model_stage}
    for info in STAGES:
        assert info.upstream is None or info.upstream in model_kinds, info.kind


def test_the_entry_point_and_the_registry_read_the_one_list() -> None:
    assert not hasattr(entry, "STAGE_MODULES")
    assert [s.kind for s in registry.kinds()] == KINDS
    for kind in KINDS:
        assert registry.stage(kind).module.endswith(kind)


def test_the_training_tab_has_no_list_of_its_own() -> None:
    source = (ROOT / "studio" / "training_handlers.py").read_text(encoding="utf-8")
    assert "MODEL_KINDS" not in source and "UPSTREAM_MODEL" not in source
    policies = (ROOT / "backend" / "services" / "policies.py").read_text(encoding="utf-8")
    assert '"sft", "rl"' not in policies  # the compared stages come from the list too
    for kind in KINDS:  # no kind spelled out as a string literal beside another one
        assert not re.search(rf"\(\s*\"{kind}\"\s*,\s*\"\w+\"", source), kind


def test_the_job_service_answers_from_the_list(tmp_path: Path) -> None:
    from backend.services.jobs import JobService
    from backend.settings import Settings

    service = JobService(None, Settings(data_dir=tmp_path))  # type: ignore[arg-type]
    assert service.model_kinds() == ["sft", "reward", "rl", "dpo"]
    assert service.policy_kinds() == ["sft", "rl", "dpo"]  # a reward model answers no prompt
    assert service.upstream_of("rl") == "sft" and service.upstream_of("dpo") == "sft"
    assert service.upstream_of("preference_data") == "sft"
    assert service.upstream_of("sl_cai_data") is None and service.upstream_of("nope") is None


def test_the_docs_name_every_kind() -> None:
    contract = (ROOT / "docs" / "training-contract.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f'"{kind}"' in contract, f"docs/training-contract.md lacks {kind}"
        assert kind in guide, f"docs/training.md lacks {kind}"
