"""The studio's page is sent gzip-compressed to a browser that accepts gzip (issue 15)."""

from __future__ import annotations

import gzip
import socket
import urllib.request
from pathlib import Path

from backend.services.container import start
from backend.settings import Settings
from studio.app import build_app, launch


def _get(url: str, encoding: str | None) -> tuple[bytes, str | None]:
    headers = {"Accept-Encoding": encoding} if encoding else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=30) as resp:
        return resp.read(), resp.headers.get("Content-Encoding")


def test_the_main_page_is_sent_gzip_when_the_browser_accepts_it(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(data_dir=tmp_path / "data", user="t", port=port, database_url=None)
    services = start(settings)
    demo = build_app(settings, services)
    try:
        launch(demo, settings, block=False, services=services)
        url = f"http://127.0.0.1:{port}/"
        plain, plain_encoding = _get(url, None)
        packed, encoding = _get(url, "gzip, deflate")
        assert plain_encoding is None and encoding == "gzip"
        assert gzip.decompress(packed) == plain and b"Constitution Studio" in plain
        assert len(packed) * 3 < len(plain)
        _, br_page = _get(url, "gzip, deflate, br")  # Gradio leaves "/" to us: gzip
        assert br_page == "gzip"
    finally:
        demo.close()
        services.close()
