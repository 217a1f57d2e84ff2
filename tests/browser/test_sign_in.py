"""Sign-in in real Chromium: the login page, the header's user and role, a refused write shown
as a message, and the admin's Users section."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from backend.access import local_admin
from backend.services.container import start
from backend.services.users import UserService
from backend.settings import Settings
from studio.app import build_app, launch
from tests.browser.conftest import Studio, _free_port, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORDS = {"ada": "ada's password", "vic": "vic's password"}


@pytest.fixture
def signed_studio(tmp_path: Path) -> Iterator[Studio]:
    _require_browser()
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "data", user="owner", port=port, database_url=None,
                        embedded_worker=False)
    services = start(settings)
    services.users = UserService(services.db, PasswordHasher(time_cost=1, memory_cost=1024,
                                                             parallelism=1))
    services.users.add("ada", "admin", PASSWORDS["ada"], actor=local_admin("owner"))
    services.users.add("vic", "viewer", PASSWORDS["vic"], actor=local_admin("owner"))
    demo = build_app(settings, services)
    try:
        launch(demo, settings, block=False, services=services)
        yield Studio(url=f"http://127.0.0.1:{port}", services=services)
    finally:
        demo.close()
        services.close()


def _sign_in(page: Page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_viewer_signs_in_and_sees_the_editor_read_only(signed_studio: Studio,
                                               new_page: Callable[[], Page]) -> None:
    page = new_page()
    _sign_in(page, signed_studio.url, "vic", "wrong password")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    _sign_in(page, signed_studio.url, "VIC", PASSWORDS["vic"])
    # the page's first load also builds the demo model: allow for it
    expect(page.locator("#user-badge")).to_contain_text("vic · role viewer", timeout=60_000)
    title = page.locator("#principle-title textarea")
    expect(title).not_to_have_value("")
    # read-only for a role that may not edit, said up front (not refused at save time)
    expect(page.locator("#constitution-read-only")).to_contain_text(
        "Read-only: your role (viewer)")
    expect(title).not_to_be_editable()
    expect(page.locator("#save-btn")).to_be_disabled()
    constitution = signed_studio.services.constitutions.list_all()[0]
    assert constitution.head.number == 1


def test_admin_adds_a_user_from_the_settings_tab(signed_studio: Studio,
                                                 new_page: Callable[[], Page]) -> None:
    page = new_page()
    _sign_in(page, signed_studio.url, "ada", PASSWORDS["ada"])
    expect(page.locator("#user-badge")).to_contain_text("ada · role admin", timeout=60_000)
    page.get_by_role("tab", name="Settings").click()
    expect(page.locator("#users-table")).to_contain_text("vic")
    page.locator("#users-name input, #users-name textarea").first.fill("<b>eve</b>")
    page.locator("#users-password input").fill("eve's password")
    page.locator("#users-confirm input").fill("eve's password")
    page.locator("#users-add").click()
    expect(page.locator("#users-result")).to_contain_text("not a valid user name")
    assert page.locator("#users-result b").count() == 0  # shown as text, not markup
    page.locator("#users-name input, #users-name textarea").first.fill("eve")
    page.locator("#users-password input").fill("eve's password")
    page.locator("#users-confirm input").fill("eve's password")
    page.locator("#users-add").click()
    expect(page.locator("#users-result")).to_contain_text("Added eve as viewer")
    expect(page.locator("#users-table")).to_contain_text("eve")
    info = signed_studio.services.users.get("eve")
    assert info is not None and info.created_by == "ada"
