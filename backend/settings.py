"""Settings: built once at the entry point (``cstudio``) and passed down; never read globally.

Every field can be set from the environment with the ``CSTUDIO_`` prefix (for example
``CSTUDIO_DATA_DIR``); the database URL also reads the conventional ``DATABASE_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "constitution-studio"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CSTUDIO_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Where the SQLite database, exports and runs live.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CSTUDIO_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; default: SQLite file studio.db in the data directory.",
    )
    host: str = Field(default="127.0.0.1", description="Address the studio binds to.")
    port: int = Field(default=7860, ge=1, le=65535, description="Port the studio listens on.")
    user: str = Field(default_factory=lambda: os.environ.get("USER") or "local",
                      description="Name recorded as author of edits made without sign-in.")
    max_import_bytes: int = Field(default=2_000_000, ge=1_000,
                                  description="Largest constitution file accepted for import.")
    max_dataset_bytes: int = Field(default=200_000_000, ge=1_000,
                                   description="Largest pairs file accepted for import.")
    seed_default: bool = Field(default=True,
                               description="Create the default constitution on first start.")
    engine: str = Field(
        default="auto",
        description="auto: the vLLM/OpenAI server if a base URL is set, else the local model "
                    "when cached or the hub is reachable, else (offline) the bundled "
                    "SmolLM2-135M-Instruct; or one kind of backend/engines/registry.py "
                    "(openai_compat, local, smollm2, vllm_inprocess, tiny).")
    engine_base_url: str | None = Field(default=None,
                                        description="OpenAI-compatible server, e.g. "
                                                    "http://localhost:8000 (vllm serve).")
    engine_model: str | None = Field(default=None, description="Model name on that server.")
    engine_api_key: SecretStr | None = Field(default=None, description="API key for the server.")
    engine_max_in_flight: int = Field(default=64, ge=1, le=1024,
                                      description="Concurrent requests to the server.")
    engine_timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    engine_chat_template: str | None = Field(
        default=None,
        description="The served model's chat template (.gguf file, tokenizer folder or .jinja "
                    "file), applied by the studio when the server ignores "
                    "continue_final_message (llama.cpp); found by itself where it can.")
    local_model: str = Field(default="Qwen/Qwen2.5-0.5B-Instruct",
                             description="Hub id or local path for the in-process engine.")
    torch_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1, le=1024,
        description="CPU threads torch uses in the studio, the worker and each stage process "
                    "(default: half the cores, leaving room for a running training job).")
    prompt_set_path: Path | None = Field(
        default=None,
        description="HH-RLHF style .jsonl(.gz) whose first human turns form the demo prompts.")
    # --- security (docs/security.md) ---
    public_url: str | None = Field(
        default=None,
        description="The address people open the studio at behind a proxy, e.g. "
                    "https://studio.example.org: its origin may send writes, its host name "
                    "is allowed.")
    allowed_origins: str = Field(
        default="",
        description="More origins (comma-separated, scheme://host[:port]) whose pages may "
                    "send writes; the studio's own origin is always allowed.")
    allowed_hosts: str = Field(
        default="",
        description="Host names requests may address (comma-separated); default the "
                    "loopback names plus the host of public_url (DNS rebinding guard).")
    max_upload_bytes: int = Field(
        default=200_000_000, ge=1_000,
        description="Largest upload accepted from a role that may import; roles that may "
                    "not import cannot upload.")
    # --- training jobs (backend/jobs) ---
    embedded_worker: bool = Field(default=True,
                                  description="`cstudio serve` also runs a job worker, so one "
                                              "command gives a working studio.")
    job_launcher: Literal["accelerate", "accelerate-subprocess", "python"] = Field(
        default="accelerate",
        description="How a job's stage process starts: accelerate with a config generated "
                    "from the job (a single process is prepared by accelerate's launcher in "
                    "the worker; several through `accelerate launch`), "
                    "accelerate-subprocess (always the `accelerate launch` program), or plain "
                    "`python -m` (single process only).")
    job_backend: Literal["local", "ray"] = Field(
        default="local",
        description="Where a worker runs a job's stage command: local (a process group on "
                    "this host) or ray (submitted through the Ray Jobs API to ray_address).")
    ray_address: str = Field(default="", description="Ray dashboard (Jobs API) address for "
                             "job_backend=ray, e.g. http://ray-head:8265.")
    job_entry_module: str = Field(default="backend.training.entry",
                                  description="Module run for each job (`-m`, with --job-dir).")
    job_poll_s: float = Field(default=1.0, gt=0, le=60,
                              description="How often an idle worker looks for queued jobs.")
    job_heartbeat_s: float = Field(default=2.0, gt=0, le=300,
                                   description="How often a worker marks its job alive.")
    job_stale_after_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="A running job whose heartbeat is older than this is `interrupted`.")
    job_cancel_grace_s: float = Field(
        default=10.0, ge=0, le=600,
        description="Seconds between SIGTERM and SIGKILL when a job is cancelled.")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from backend.engines.registry import setting_choices

        value = value.strip()
        if value not in setting_choices():
            raise ValueError(f"unknown engine {value!r}; use one of {', '.join(setting_choices())}")
        return value

    @field_validator("user")
    @classmethod
    def _user_is_one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ord(c) < 32 for c in value) or len(value) > 120:
            raise ValueError("user must be a non-empty single line of at most 120 characters")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'studio.db'}"

    @property
    def binds_locally(self) -> bool:
        return self.host in LOCAL_HOSTS

    def host_names(self) -> frozenset[str]:
        """Host names requests may address (the Host header without its port)."""
        names = {h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",")
                 if h.strip()}
        if not names:
            names = set(LOCAL_HOSTS)
        if self.public_url:
            from urllib.parse import urlsplit
            host = urlsplit(self.public_url).hostname
            if host:
                names.add(host.lower())
        return frozenset(names)

    def origins(self) -> frozenset[str]:
        """Origins (scheme://host[:port]) configured to send writes, besides same-origin."""
        items = [o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",")
                 if o.strip()]
        if self.public_url:
            from urllib.parse import urlsplit
            parts = urlsplit(self.public_url.strip())
            items.append(f"{parts.scheme}://{parts.netloc}".lower())
        return frozenset(items)

    def hub_offline(self) -> bool:
        from backend.hub import hub_offline

        return hub_offline()
