"""Issue 13 points 1-3 and 8, against a real Gradio server started in-process: requests carry
the headers a browser would send (Host, Origin, Referer, the session cookie).

* DNS rebinding: a request addressed to another host name is refused, with and without users.
* CSRF: a write from another site's page (its Origin) is refused and stores nothing; the
  studio's own origin and ``CSTUDIO_PUBLIC_URL`` may write; session cookies are SameSite=Strict.
* Sessions end when the account changes (password, role, disable, remove and re-add).
* Uploads: refused for roles that import nothing, capped for the others.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from backend.access import local_admin
from backend.services.container import Services, start
from backend.services.users import UserService
from backend.settings import Settings
from studio.app import build_app, launch

pytestmark = pytest.mark.slow

ROOT = local_admin("owner")
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
EVIL = "https://evil.example"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36",
           "Accept": "*/*"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    origin: str
    services: Services
    demo: Any


def _serve(tmp: Path, tiny_engine: Any, *, users: bool, **extra: Any) -> Served:
    port = _free_port()
    settings = Settings(data_dir=tmp / "data", user="owner", port=port, database_url=None,
                        embedded_worker=False, **extra)
    services = start(settings)
    services.users = UserService(services.db, FAST_HASH)
    services.engines.use(tiny_engine, "tiny test model")
    if users:
        services.users.add("admin-user", "admin", "admin password 1", actor=ROOT)
        services.users.add("author-user", "author", "author password 1", actor=ROOT)
        services.users.add("viewer-user", "viewer", "viewer password 1", actor=ROOT)
        services.users.add("auditor-user", "auditor", "auditor password 1", actor=ROOT)
    demo = build_app(settings, services)
    launch(demo, settings, block=False, services=services)
    url = f"http://127.0.0.1:{port}"
    return Served(url, url, services, demo)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, tiny_engine: Any) -> Iterator[Served]:
    served = _serve(tmp_path_factory.mktemp("guard"), tiny_engine, users=True,
                    public_url="https://studio.example.org", max_upload_bytes=5_000)
    try:
        yield served
    finally:
        served.demo.close()
        served.services.close()


@pytest.fixture(scope="module")
def open_studio(tmp_path_factory: pytest.TempPathFactory, tiny_engine: Any) -> Iterator[Served]:
    served = _serve(tmp_path_factory.mktemp("guard-open"), tiny_engine, users=False)
    try:
        yield served
    finally:
        served.demo.close()
        served.services.close()


def sign_in(s: Served, name: str, password: str, **headers: str) -> httpx.Client:
    client = httpx.Client(base_url=s.url, headers={**BROWSER, "Origin": s.origin})
    r = client.post("/login", data={"username": name, "password": password}, headers=headers)
    assert r.status_code == 200, r.text
    return client


def signed_in(client: httpx.Client) -> bool:
    r = client.get("/gradio_api/login_check")
    return r.status_code == 200


def join(client: httpx.Client, s: Served, api_name: str, data: list[Any],
         **headers: str) -> httpx.Response:
    """What the page sends to run an endpoint: POST /gradio_api/queue/join."""
    fn_index = next(i for i, fn in s.demo.fns.items() if fn.api_name == api_name)
    body = {"data": data, "fn_index": fn_index, "session_hash": "abcdefgh12",
            "event_data": None, "trigger_id": None}
    return client.post("/gradio_api/queue/join", json=body, headers=headers)


# --- DNS rebinding ----------------------------------------------------------------------------

def test_an_open_studio_refuses_a_rebound_host_name(open_studio: Served) -> None:
    page = httpx.get(open_studio.url + "/", headers={**BROWSER, "Host": "rebind.attacker.example"})
    assert page.status_code == 421
    joined = join(httpx.Client(base_url=open_studio.url, headers=BROWSER), open_studio,
                  "user_add", ["mallory", "admin", "mallory pass 1", "mallory pass 1"],
                  Host="rebind.attacker.example:7860", Origin="http://rebind.attacker.example:7860")
    assert joined.status_code == 421
    assert open_studio.services.users.get("mallory") is None
    assert httpx.get(open_studio.url + "/", headers=BROWSER).status_code == 200
    assert httpx.get(open_studio.url.replace("127.0.0.1", "localhost") + "/",
                     headers=BROWSER).status_code == 200


def test_a_signed_in_studio_refuses_other_hosts_but_serves_its_public_name(
        signed: Served) -> None:
    assert httpx.get(signed.url + "/", headers={**BROWSER, "Host": "evil.example"}
                     ).status_code == 421
    proxied = httpx.get(signed.url + "/", headers={**BROWSER, "Host": "studio.example.org"})
    assert proxied.status_code == 200


# --- cross-site request forgery ---------------------------------------------------------------

def test_a_write_from_another_site_is_refused_and_stores_nothing(open_studio: Served) -> None:
    client = httpx.Client(base_url=open_studio.url, headers=BROWSER)
    r = join(client, open_studio, "user_add", ["csrf-admin", "admin", "csrf pass 12",
                                               "csrf pass 12"], Origin=EVIL)
    assert r.status_code == 403
    assert "another site" in r.json()["detail"]
    r = join(client, open_studio, "user_add", ["csrf-admin", "admin", "csrf pass 12",
                                               "csrf pass 12"],
             Referer=EVIL + "/attack.html")
    assert r.status_code == 403
    r = join(client, open_studio, "user_add", ["csrf-admin", "admin", "csrf pass 12",
                                               "csrf pass 12"], Origin="null")
    assert r.status_code == 403
    assert open_studio.services.users.get("csrf-admin") is None


def test_the_signed_in_admin_cookie_does_not_carry_a_cross_site_write(signed: Served) -> None:
    admin = sign_in(signed, "admin-user", "admin password 1")
    r = join(admin, signed, "user_add", ["csrf-admin", "admin", "csrf pass 12",
                                         "csrf pass 12"], Origin=EVIL)
    assert r.status_code == 403
    assert signed.services.users.get("csrf-admin") is None
    # the studio's own origin and its public URL may write
    assert join(admin, signed, "page_load", []).status_code == 200
    own = join(admin, signed, "page_load", [], Origin="https://studio.example.org")
    assert own.status_code == 200


def test_another_site_cannot_read_the_studio(open_studio: Served) -> None:
    r = httpx.get(open_studio.url + "/config", headers={**BROWSER, "Origin": EVIL})
    assert r.status_code == 403
    r = httpx.get(open_studio.url + "/gradio_api/info", headers={**BROWSER, "Origin": EVIL})
    assert r.status_code == 403
    own = httpx.get(open_studio.url + "/config", headers={**BROWSER,
                                                          "Origin": open_studio.origin})
    assert own.status_code == 200
    linked = httpx.get(open_studio.url + "/", headers={**BROWSER, "Referer": EVIL + "/x"})
    assert linked.status_code == 200  # following a link from elsewhere still opens the page


def test_sign_in_from_another_site_is_refused(signed: Served) -> None:
    r = httpx.post(signed.url + "/login", headers={**BROWSER, "Origin": EVIL},
                   data={"username": "admin-user", "password": "admin password 1"})
    assert r.status_code == 403


def test_session_cookies_are_same_site_strict(signed: Served) -> None:
    r = httpx.post(signed.url + "/login", headers={**BROWSER, "Origin": signed.origin},
                   data={"username": "viewer-user", "password": "viewer password 1"})
    cookies = r.headers.get_list("set-cookie")
    assert cookies and all("samesite=strict" in c.lower() for c in cookies)
    assert not any("samesite=none" in c.lower() for c in cookies)


# --- sessions end when the account changes ----------------------------------------------------

@pytest.mark.parametrize("change", ["password", "role", "disable", "remove"])
def test_a_session_ends_when_its_account_changes(signed: Served, change: str) -> None:
    users = signed.services.users
    name = f"temp-{change}"
    users.add(name, "author", "temp password 1", actor=ROOT)
    client = sign_in(signed, name, "temp password 1")
    other = sign_in(signed, "author-user", "author password 1")
    assert signed_in(client)
    if change == "password":
        users.set_password(name, "new password 12", actor=ROOT)
    elif change == "role":
        users.set_role(name, "viewer", actor=ROOT)
    elif change == "disable":
        users.set_disabled(name, True, actor=ROOT)
    else:
        users.remove(name, actor=ROOT)
    assert not signed_in(client)  # a read, not only a write
    assert signed_in(other)  # other accounts keep their sessions


def test_a_removed_name_re_added_as_admin_does_not_revive_the_old_cookie(
        signed: Served) -> None:
    users = signed.services.users
    users.add("reborn", "author", "reborn password 1", actor=ROOT)
    client = sign_in(signed, "reborn", "reborn password 1")
    users.remove("reborn", actor=ROOT)
    users.add("reborn", "admin", "reborn password 1", actor=ROOT)
    assert not signed_in(client)
    r = join(client, signed, "user_add", ["via-reborn", "admin", "reborn pass 12",
                                          "reborn pass 12"])
    assert r.status_code in (401, 403)
    assert users.get("via-reborn") is None


# --- uploads ----------------------------------------------------------------------------------

def test_uploads_are_refused_for_viewers_and_capped_for_importers(signed: Served) -> None:
    viewer = sign_in(signed, "viewer-user", "viewer password 1")
    small = {"files": ("a.jsonl", b'{"prompt": "hi"}\n', "application/octet-stream")}
    assert viewer.post("/gradio_api/upload", files=small).status_code == 403
    author = sign_in(signed, "author-user", "author password 1")
    assert author.post("/gradio_api/upload", files=small).status_code == 200
    big = {"files": ("b.jsonl", b"x" * 6_000, "application/octet-stream")}
    r = author.post("/gradio_api/upload", files=big)
    assert r.status_code == 413
    assert "CSTUDIO_MAX_UPLOAD_BYTES" in r.json()["detail"]


def test_the_temp_folder_is_cleaned(signed: Served) -> None:
    assert signed.demo.delete_cache is not None


# --- exports ----------------------------------------------------------------------------------

def test_an_export_is_served_only_to_the_auditor_who_made_it(signed: Served) -> None:
    auditor = sign_in(signed, "auditor-user", "auditor password 1")
    r = join(auditor, signed, "audit_export", ["guarded", None])
    assert r.status_code == 200
    event_id = r.json()["event_id"]
    stream = auditor.get("/gradio_api/queue/data", params={"session_hash": "abcdefgh12"},
                         timeout=60)
    assert event_id in stream.text
    url = next(part for part in stream.text.split('"') if "/file=" in part
               and "evidence-" in part)
    path = url.split("/file=", 1)[1]
    assert auditor.get(f"/gradio_api/file={path}").status_code == 200
    viewer = sign_in(signed, "viewer-user", "viewer password 1")
    refused = viewer.get(f"/gradio_api/file={path}")
    assert refused.status_code == 403
    admin = sign_in(signed, "admin-user", "admin password 1")
    assert admin.get(f"/gradio_api/file={path}").status_code == 403  # not theirs
