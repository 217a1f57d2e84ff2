"""The Hugging Face Hub as this machine sees it: offline switches, the local cache, a quick probe.

One home for what the engines, the CAI importers, the stages and the services ask about the
Hub (a leaf module: standard library only; ``huggingface_hub`` is imported inside a function).
The switches read like ``huggingface_hub`` reads them: ``1``, ``true``, ``yes`` and ``on`` (any
case, surrounding spaces ignored) mean set; anything else, or unset, means not set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
DATASETS_OFFLINE_ENV = "HF_DATASETS_OFFLINE"
DEFAULT_ENDPOINT = "https://huggingface.co"


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment variable ``name`` is switched on (see TRUE_VALUES)."""
    env = os.environ if environ is None else environ
    return env.get(name, "").strip().lower() in TRUE_VALUES


def hub_offline(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the Hub is switched off here (``HF_HUB_OFFLINE``)."""
    return env_flag(HUB_OFFLINE_ENV, environ)


def offline_switch(environ: Mapping[str, str] | None = None) -> str | None:
    """The name of the switch that keeps Hub datasets from downloading, if one is on."""
    for name in (HUB_OFFLINE_ENV, DATASETS_OFFLINE_ENV):
        if env_flag(name, environ):
            return name
    return None


def in_hub_cache(model_id: str) -> bool:
    """Whether the local Hugging Face cache already holds this model's config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # a malformed id or cache: treat as not cached
        return False
    return isinstance(found, str)


def hub_reachable(timeout_s: float = 3.0, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a TCP connection to the Hub endpoint (``HF_ENDPOINT``) opens within
    ``timeout_s``: a machine without network is told so in seconds, not when a download
    times out minutes later."""
    import socket
    from urllib.parse import urlparse

    env = os.environ if environ is None else environ
    url = urlparse(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
