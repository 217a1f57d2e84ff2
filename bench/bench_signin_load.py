"""Sign-in cannot stall the server (issue 13 point 5).

Two studios are served in this process, each with one admin and the production password hash
(argon2id, 64 MiB): one checks passwords the way the studio does (``authenticate_async``: a
bounded worker pool, off the event loop), the other the old way (the hash on the request
loop). For each, the median latency of ``GET /gradio_api/info`` is measured idle and while 8
clients keep signing in with wrong passwords (made-up names, so no lockout stops the hashing).

Goal: with the pool, the median under load is at most 3x the idle median (``ratio_under_load``);
``ratio_on_loop`` shows the old behaviour side by side.

    python -m bench.bench_signin_load [--requests 30]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend.access import local_admin
from backend.services.container import start
from backend.settings import Settings
from bench.results import record
from studio import app as studio_app

CLIENTS = 8


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(tmp: Path, on_loop: bool) -> tuple[str, Callable[[], None]]:
    port = _free_port()
    settings = Settings(data_dir=tmp, user="owner", port=port, engine="tiny",
                        embedded_worker=False)
    services = start(settings)
    services.users.add("admin", "admin", "the right password", actor=local_admin("owner"))
    demo = studio_app.build_app(settings, services)
    original = studio_app.sign_in
    if on_loop:  # the old way: Gradio calls a plain function on its event loop
        def sync_sign_in(svc: Any) -> Callable[[str, str], bool]:
            return lambda u, p: svc.users.authenticate(u, p) is not None
        studio_app.sign_in = sync_sign_in  # type: ignore[assignment]
    try:
        studio_app.launch(demo, settings, block=False, services=services)
    finally:
        studio_app.sign_in = original

    def stop() -> None:
        demo.close()
        services.close()
    return f"http://127.0.0.1:{port}", stop


def _median_info_ms(url: str, n: int) -> float:
    times = []
    with httpx.Client(base_url=url, timeout=120, headers={"Origin": url}) as client:
        client.post("/login", data={"username": "admin", "password": "the right password"}
                    ).raise_for_status()
        client.get("/gradio_api/info")
        for _ in range(n):
            t0 = time.perf_counter()
            client.get("/gradio_api/info").raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _attack(url: str, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=120, headers={"Origin": url}) as client:
        while not stop.is_set():
            client.post("/login", data={"username": f"guess-{secrets.token_hex(4)}",
                                         "password": "wrong password"})


def measure(url: str, n: int) -> tuple[float, float]:
    idle = _median_info_ms(url, n)
    stop = threading.Event()
    threads = [threading.Thread(target=_attack, args=(url, stop), daemon=True)
               for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    loaded = _median_info_ms(url, n)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    return idle, loaded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-signin-") as tmp:
        for label, on_loop in (("pool", False), ("on_loop", True)):
            url, stop = _serve(Path(tmp) / label, on_loop)
            try:
                idle, loaded = measure(url, args.requests)
            finally:
                stop()
            figures[f"{label}_idle_ms"] = idle
            figures[f"{label}_loaded_ms"] = loaded
            print(f"{label}: /gradio_api/info median idle {idle:.1f} ms, under {CLIENTS} "
                  f"wrong-password clients {loaded:.1f} ms", flush=True)
    figures["ratio_under_load"] = figures["pool_loaded_ms"] / figures["pool_idle_ms"]
    figures["ratio_on_loop"] = figures["on_loop_loaded_ms"] / figures["on_loop_idle_ms"]
    summary = (f"/gradio_api/info median under {CLIENTS} wrong-password clients: "
               f"{figures['ratio_under_load']:.2f}x idle with the hashing pool (goal <= 3x), "
               f"{figures['ratio_on_loop']:.1f}x with the hash on the event loop "
               "(shared, loaded 2-core machine)")
    record("signin_load", figures, "ms / x",
           f"python -m bench.bench_signin_load --requests {args.requests}", summary)
    print(summary)


if __name__ == "__main__":
    main()
