"""Issue 13 points 1-2 in real Chromium: a page on another site (another origin: localhost on
another port is another site than 127.0.0.1) tries to make the owner's browser add an admin
to the studio on 127.0.0.1 (the single-user mode, where every request is the owner)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Studio


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain web server for the attacker's page, on http://localhost:<port>."""
    port = _free_port()
    root = tmp_path / "site"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{port}", root
    finally:
        server.shutdown()


def _fn_index(url: str, api_name: str) -> int:
    config = httpx.get(url + "/config").json()
    return next(i for i, d in enumerate(config["dependencies"])
                if d.get("api_name") == api_name)


def test_a_page_on_another_site_cannot_add_an_admin(studio: Studio, page: Page,
                                                    attacker_site: tuple[str, Path]) -> None:
    site, root = attacker_site
    body = {"data": ["mallory", "admin", "mallory pass 1", "mallory pass 1"],
            "fn_index": _fn_index(studio.url, "user_add"), "session_hash": "csrfcsrf01",
            "event_data": None, "trigger_id": None}
    (root / "attack.html").write_text(f"""<!doctype html><html><body><script>
    window.results = [];
    const join = {json.dumps(studio.url + "/gradio_api/queue/join")};
    const body = {json.dumps(json.dumps(body))};
    fetch(join, {{method: "POST", credentials: "include", mode: "cors",
                  headers: {{"Content-Type": "application/json"}}, body}})
      .then(r => window.results.push("cors " + r.status))
      .catch(e => window.results.push("cors error"));
    fetch(join, {{method: "POST", credentials: "include", mode: "no-cors",
                  headers: {{"Content-Type": "text/plain"}}, body}})
      .then(r => window.results.push("no-cors sent"))
      .catch(e => window.results.push("no-cors error"));
    </script></body></html>""", encoding="utf-8")
    page.goto(studio.url + "/")  # the owner has the studio open
    page.goto(site + "/attack.html")  # and then visits the attacker's page
    page.wait_for_function("window.results.length === 2", timeout=30_000)
    results = page.evaluate("window.results")
    assert "cors 200" not in results, results
    httpx.get(studio.url + "/gradio_api/info")  # the queue would have run by now
    assert studio.services.users.get("mallory") is None
    assert not studio.services.users.any_users()


def test_the_studio_itself_still_works_in_the_browser(studio: Studio, page: Page) -> None:
    """The studio's own pages send their own Origin: writes from them go through."""
    page.goto(studio.url + "/")
    page.get_by_role("tab", name="Settings").click()
    page.wait_for_timeout(500)
    r = httpx.post(studio.url + "/gradio_api/queue/join", headers={"Origin": studio.url},
                   json={"data": [], "fn_index": _fn_index(studio.url, "page_load"),
                         "session_hash": "ownpage001", "event_data": None,
                         "trigger_id": None})
    assert r.status_code == 200
