"""Cold page load: bytes a browser downloads to open the studio, compressed vs not.

The studio is launched as ``cstudio serve`` launches it (``studio.app.launch``, a fresh
temporary data directory, the demo engine never built) on a free local port. Chromium
(Playwright, a new context so nothing is cached) opens ``/`` and waits until the app has
rendered, plus 3 s; every response's encoded size on the wire (headers + body, from
``request.sizes()``) is summed (``cold_bytes``) next to the decoded bodies
(``uncompressed_bytes``). The main page alone is also fetched with and without
``Accept-Encoding: gzip`` (``main_page_gzip_bytes``, ``main_page_bytes``). The same is measured
once more without the studio's gzip middleware (``cold_bytes_before``: Gradio's own Brotli
middleware only, which leaves ``/`` uncompressed).

Run: python -m bench.bench_page_load
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path

from backend.services.container import start
from backend.settings import Settings
from bench.results import record
from studio.app import build_app, launch

COMMAND = "python -m bench.bench_page_load"
CHROMIUM = Path("/usr/bin/chromium")


def _page_bytes(url: str, encoding: str | None) -> int:
    headers = {"Accept-Encoding": encoding} if encoding else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (our local http URL)
    with urllib.request.urlopen(request, timeout=60) as r:  # noqa: S310
        return len(r.read())


def cold_load(url: str) -> tuple[int, int, int]:
    """(bytes on the wire, decoded body bytes, responses) for one cold load of ``url``."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Response, sync_playwright

    responses: list[Response] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM) if CHROMIUM.exists()
                                     else None, args=["--no-sandbox"], headless=True)
        context = browser.new_context()
        page = context.new_page()
        page.on("response", lambda r: responses.append(r))
        page.goto(url, wait_until="load", timeout=120_000)
        page.get_by_role("tab", name="Agreement").wait_for(timeout=120_000)  # rendered
        page.wait_for_timeout(3000)  # late requests (fonts, icons, the header's loads)
        wire = decoded = 0
        streams = 0
        for r in responses:
            if "event-stream" in (r.headers.get("content-type") or ""):
                streams += 1  # the queue's open event stream: still open, nothing to size
                continue
            sizes = r.request.sizes()
            wire += sizes["responseHeadersSize"] + sizes["responseBodySize"]
            try:
                body = r.body()
            except PlaywrightError:  # e.g. a redirect has no body to read back
                body = b""
            decoded += len(body)
        context.close()
        browser.close()
    return wire, decoded, len(responses) - streams


def serve_and_load(*, without_gzip: bool = False) -> tuple[int, int, int, int, int]:
    """Launch the studio and load it cold; ``without_gzip``: as before issue 15 (Gradio's own
    Brotli middleware only)."""
    import studio.app as app_module

    tmp = Path(tempfile.mkdtemp(prefix="cstudio-bench-page-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    original = app_module.app_kwargs
    try:
        if without_gzip:
            app_module.app_kwargs = dict  # type: ignore[assignment]
        settings = Settings(data_dir=tmp / "data", user="bench", port=port, database_url=None)
        services = start(settings)
        demo = build_app(settings, services)
        try:
            launch(demo, settings, block=False, services=services)
            url = f"http://127.0.0.1:{port}/"
            main_plain = _page_bytes(url, None)
            main_gzip = _page_bytes(url, "gzip")
            wire, decoded, count = cold_load(url)
        finally:
            demo.close()
            services.close()
    finally:
        app_module.app_kwargs = original  # type: ignore[assignment]
        shutil.rmtree(tmp, ignore_errors=True)
    return wire, decoded, count, main_plain, main_gzip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--note", default="shared machine, other work running")
    args = parser.parse_args()
    wire, decoded, count, main_plain, main_gzip = serve_and_load()
    before = serve_and_load(without_gzip=True)
    figures = {"cold_bytes": wire, "uncompressed_bytes": decoded, "responses": count,
               "main_page_bytes": main_plain, "main_page_gzip_bytes": main_gzip,
               "cold_ratio": decoded / wire if wire else 0.0,
               "cold_bytes_before": before[0], "main_page_bytes_before_gzip": before[4]}
    print(figures)
    record("page_load", figures, "bytes",
           COMMAND, f"cold load of the studio in Chromium: {wire / 1e6:.2f} MB on the wire "
           f"(before the gzip middleware: {before[0] / 1e6:.2f} MB) vs {decoded / 1e6:.2f} MB "
           f"decoded; main page {main_gzip / 1e3:.0f} KB gzip vs {main_plain / 1e3:.0f} KB "
           f"({args.note})")


if __name__ == "__main__":
    main()
