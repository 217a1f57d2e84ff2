"""A GGUF model (``smollm2``, a ``.gguf`` file or a folder holding one) is a training model:
references resolve without converting; a stage about to load converts once and trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.engines.gguf_models import SMOLLM2_FILE
from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import models
from tests.backend.training.conftest import MakeJob, insert_sl_cai_dataset, result, run_job
from tests.conftest import link_smollm2


def test_gguf_references_resolve_without_converting(services: Services, tmp_path: Path) -> None:
    data_dir = services.settings.data_dir
    ref = models.resolve("smollm2", db=services.db, data_dir=data_dir)
    if ref.kind != "gguf":
        pytest.fail(f"smollm2 resolved as {ref}")
    assert ref.location.endswith(SMOLLM2_FILE) and not (data_dir / "models").exists()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    for given in (folder, folder / "model.gguf"):
        got = models.resolve(str(given), db=services.db, data_dir=data_dir)
        assert (got.kind, got.location) == ("gguf", str(folder / "model.gguf"))
    assert models._source(str(folder / "model.gguf")) == (str(folder),
                                                          {"gguf_file": "model.gguf"})
    assert models._source(str(folder)) == (str(folder), {})


def test_an_unreadable_gguf_is_a_validation_error(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(ValidationError, match="Could not read the GGUF model"):
        models.resolve(str(bad), db=services.db, data_dir=services.settings.data_dir,
                       build_tiny=True)


@pytest.mark.slow
def test_the_training_loaders_read_the_converted_smollm2(services: Services,
                                                         smollm2_dir: Path) -> None:
    link_smollm2(services.settings.data_dir, smollm2_dir)
    ref = models.resolve("smollm2", db=services.db, data_dir=services.settings.data_dir,
                         build_tiny=True)
    assert Path(ref.location).resolve() == smollm2_dir.resolve()
    tokenizer = models.load_tokenizer(ref.location)
    model = models.load_causal_lm(ref.location)
    assert tokenizer.chat_template and model.config.model_type == "llama"
    assert sum(p.numel() for p in model.parameters()) > 100_000_000


@pytest.mark.slow
def test_sft_fine_tunes_smollm2_from_its_gguf(services: Services, make_job: MakeJob,
                                              smollm2_dir: Path) -> None:
    link_smollm2(services.settings.data_dir, smollm2_dir)
    dataset_id = insert_sl_cai_dataset(services, 2)
    job_dir = make_job("sft", {"model": "smollm2", "sl_cai_dataset_id": dataset_id,
                               "max_steps": 1, "save_steps": 10, "batch_size": 1,
                               "learning_rate": 1e-5, "max_length": 256, "device": "cpu"})
    assert run_job(job_dir) == 0
    model_dir = Path(result(job_dir)["outputs"]["model_dir"])
    assert (model_dir / "config.json").is_file() and result(job_dir)["summary"]["global_step"] == 1
