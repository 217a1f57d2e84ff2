"""CPU threads: one setting (CSTUDIO_TORCH_THREADS) applied in the studio, handed by the worker to
each stage process, and applied there by the stage entry point."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend import threads
from backend.common.job_files import JobDir
from backend.jobs.devices import DevicePlan
from backend.jobs.worker import Worker
from backend.settings import Settings
from backend.training import entry
from db.engine import Database
from db.job_models import Job


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", threads.THREADS_ENV):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(before)


def test_the_default_leaves_half_the_cores(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).torch_threads == max(1, (os.cpu_count() or 2) // 2)
    assert Settings(data_dir=tmp_path, torch_threads=3).torch_threads == 3
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, torch_threads=0)


def test_apply_sets_torch_and_omp(restore_threads: None) -> None:
    import torch

    assert threads.apply_torch_threads(2) == 2 and torch.get_num_threads() == 2
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_the_worker_hands_the_setting_to_each_stage(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, torch_threads=3)
    worker = Worker(settings, Database("sqlite://"), gpu_count=lambda: 0)
    plan = DevicePlan(use_cpu=True, gpu_ids=None, mixed_precision="no", num_processes=1,
                      deepspeed_stage=None, num_nodes=1, node_rank=0, main_process_ip=None,
                      main_process_port=29500)
    env = worker._env(Job(id=7, kind="sft", config={}, created_by="t"), JobDir(tmp_path),
                      plan, {})
    assert env[threads.THREADS_ENV] == env["OMP_NUM_THREADS"] == "3"


def test_a_stage_process_applies_what_it_was_handed(restore_threads: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv(threads.THREADS_ENV, "2")
    entry._set_threads()
    assert torch.get_num_threads() == 2
    monkeypatch.setenv(threads.THREADS_ENV, "lots")
    assert threads.threads_from_env() is None
