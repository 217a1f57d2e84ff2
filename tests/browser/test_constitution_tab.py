"""The Constitution tab in real Chromium: load, edit and save, conflicts, XSS safety, validation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.cai.default_constitution import DEFAULT_NAME
from tests.browser.conftest import UI_TIMEOUT, Studio

pytestmark = pytest.mark.browser

TIMEOUT = UI_TIMEOUT


# --- helpers --------------------------------------------------------------------------------


def textbox(page: Page, elem_id: str) -> Locator:
    """The editable element inside a gr.Textbox (a textarea, or an input for single lines)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def type_text(box: Locator, text: str) -> None:
    """Replace a textbox's text the way typing does.

    Gradio 6's Textbox fires its ``input`` event on ``keypress`` only (not on the DOM
    ``input`` event that ``fill()`` sends), so the last character is typed as a key press.
    An empty ``text`` is just cleared: no Gradio ``input`` event then, exactly as when a user
    clears the box with Backspace (no keypress either). Save still reads the editor's values.
    """
    if not text:
        box.fill("")
        return
    box.fill(text[:-1])
    box.press_sequentially(text[-1])


def draft_status(page: Page) -> Locator:
    return page.locator("#draft-status")


def principle_labels(page: Page) -> Locator:
    return page.locator("#principle-list label")


def open_studio(page: Page, studio: Studio) -> None:
    """Load the studio and wait until the default constitution is on screen."""
    page.goto(studio.url)
    expect(principle_labels(page)).to_have_count(16, timeout=TIMEOUT)
    expect(page.locator("#active-constitution")).to_contain_text("v1", timeout=TIMEOUT)


def constitution_id(studio: Studio) -> int:
    return studio.services.constitutions.find(DEFAULT_NAME).id


def pick_principle(page: Page, studio: Studio, number: int) -> str:
    """Select principle ``number`` (1-based) and wait for the editor to show it; its title."""
    head = studio.services.constitutions.head(constitution_id(studio))
    title = head.content.principles[number - 1].title
    principle_labels(page).filter(has_text=f"{number}. {title}").first.click()
    expect(textbox(page, "principle-title")).to_have_value(title, timeout=TIMEOUT)
    expect(textbox(page, "principle-key")).to_have_value(head.content.principles[number - 1].key)
    return title


def choose(page: Page, dropdown_id: str, option_text: str) -> None:
    """Pick the option of a gr.Dropdown whose label contains ``option_text``."""
    page.locator(f"#{dropdown_id} input").first.click()
    option = page.locator("ul[role=listbox] li, [role=option]").filter(has_text=option_text)
    option.first.click()
    expect(page.locator(f"#{dropdown_id} input").first).to_have_value(
        re.compile(re.escape(option_text)), timeout=TIMEOUT)


def save(page: Page, message: str) -> Locator:
    textbox(page, "save-message").fill(message)
    page.locator("#save-btn").click()
    return page.locator("#save-result")


# --- tests ----------------------------------------------------------------------------------


def test_page_loads_with_the_default_constitution(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    expect(page.locator("#constitution-picker input").first).to_have_value(DEFAULT_NAME)
    expect(principle_labels(page)).to_have_count(16)
    expect(principle_labels(page).first).to_contain_text("1. ")
    header = page.locator("#active-constitution")
    expect(header).to_contain_text(DEFAULT_NAME)
    expect(header).to_contain_text("v1")
    head = studio.services.constitutions.head(constitution_id(studio))
    expect(textbox(page, "principle-title")).to_have_value(head.content.principles[0].title)
    expect(page.locator("#history-table")).to_contain_text("v1")


def test_edit_save_history_and_diff(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    old_title = pick_principle(page, studio, 2)
    new_title = "No help with harming other people"
    new_critique = "Point out every way the response helps someone hurt another person."
    type_text(textbox(page, "principle-title"), new_title)
    type_text(textbox(page, "principle-critique"), new_critique)
    expect(principle_labels(page).nth(1)).to_contain_text(f"2. {new_title}", timeout=TIMEOUT)
    expect(draft_status(page)).to_contain_text("Unsaved changes", timeout=TIMEOUT)

    result = save(page, "Broaden principle 2 beyond crimes")
    expect(result).to_contain_text("Saved v2", timeout=TIMEOUT)
    history = page.locator("#history-table")
    expect(history).to_contain_text("v2", timeout=TIMEOUT)
    expect(history).to_contain_text("Broaden principle 2 beyond crimes")
    expect(page.locator("#active-constitution")).to_contain_text("v2")
    expect(textbox(page, "save-message")).to_have_value("")
    # the editor stays on the principle that was being edited
    expect(textbox(page, "principle-title")).to_have_value(new_title)

    choose(page, "diff-old", "v1")
    choose(page, "diff-new", "v2")
    page.locator("#diff-btn").click()
    diff = page.locator("#diff-view")
    expect(diff).to_contain_text("CHANGED", timeout=TIMEOUT)
    expect(diff).to_contain_text("v1 → v2")
    expect(diff).to_contain_text(old_title)
    expect(diff).to_contain_text(new_title)
    # word level: the new words in bold, the removed ones struck through, shared words plain
    expect(diff.locator("strong", has_text="Point out every way")).to_be_visible()
    expect(diff.locator("strong", has_text="response helps someone hurt")).to_be_visible()
    expect(diff.locator("del", has_text="crimes against others")).to_be_visible()
    assert new_critique.split()[-1] in diff.inner_text()

    head = studio.services.constitutions.head(constitution_id(studio))
    assert head.info.number == 2
    assert head.info.author == "browser-tester"
    assert head.info.message == "Broaden principle 2 beyond crimes"
    assert head.content.principles[1].title == new_title
    assert head.content.principles[1].critique_request == new_critique


def test_conflicting_save_in_a_second_browser_is_refused(
        new_page: Callable[[], Page], studio: Studio) -> None:
    page_a, page_b = new_page(), new_page()
    open_studio(page_a, studio)
    open_studio(page_b, studio)  # both drafts are based on v1

    pick_principle(page_a, studio, 1)
    type_text(textbox(page_a, "principle-title"), "Title from A")
    expect(draft_status(page_a)).to_contain_text("Unsaved changes", timeout=TIMEOUT)
    expect(save(page_a, "A's edit")).to_contain_text("Saved v2", timeout=TIMEOUT)

    type_text(textbox(page_b, "principle-title"), "Title from B")
    expect(draft_status(page_b)).to_contain_text("Unsaved changes", timeout=TIMEOUT)
    result_b = save(page_b, "B's edit")
    expect(result_b).to_contain_text("Conflict", timeout=TIMEOUT)
    expect(result_b).to_contain_text("Nothing was overwritten")
    expect(result_b).to_contain_text("v2")
    # B's unsaved text is still in the editor, and B's message is kept for the retry
    expect(textbox(page_b, "principle-title")).to_have_value("Title from B")
    expect(textbox(page_b, "save-message")).to_have_value("B's edit")

    cid = constitution_id(studio)
    versions = studio.services.constitutions.history(cid)
    assert [v.number for v in versions] == [2, 1]
    head = studio.services.constitutions.head(cid)
    assert head.info.message == "A's edit"
    assert head.content.principles[0].title == "Title from A"


XSS_TITLE = '<img src=x onerror="window.__xss=1">'
XSS_CRITIQUE = ("Look for <script>window.__xss=2</script> and "
                "[click](javascript:window.__xss=3) in the response.")


def assert_no_injected_markup(page: Page) -> None:
    assert page.evaluate("window.__xss") is None
    for area in ("#diff-view", "#preview-view", "#principle-list", "#active-constitution",
                 "#save-result", "#draft-status", "#history-table"):
        assert page.locator(f"{area} img[src=x]").count() == 0, area
        assert page.locator(f"{area} script").count() == 0, area
        assert page.locator(f"{area} a[href^='javascript' i]").count() == 0, area


def test_hostile_principle_text_is_shown_as_text(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    pick_principle(page, studio, 2)
    type_text(textbox(page, "principle-title"), XSS_TITLE)
    type_text(textbox(page, "principle-critique"), XSS_CRITIQUE)
    expect(principle_labels(page).nth(1)).to_contain_text(XSS_TITLE, timeout=TIMEOUT)
    expect(draft_status(page)).to_contain_text("Unsaved changes", timeout=TIMEOUT)

    page.locator("#preview-btn").click()  # the unsaved draft's diff, right under the button
    expect(page.locator("#preview-view")).to_contain_text("your draft", timeout=TIMEOUT)
    assert_no_injected_markup(page)

    expect(save(page, '<img src=x onerror="window.__xss=4"> message')).to_contain_text(
        "Saved v2", timeout=TIMEOUT)
    page.locator("#diff-btn").click()  # after a save, From/To are already v1 and v2
    diff = page.locator("#diff-view")
    expect(diff).to_contain_text("v1 → v2", timeout=TIMEOUT)
    expect(diff).to_contain_text(XSS_TITLE)  # shown literally, not rendered
    expect(diff).to_contain_text("<script>window.__xss=2</script>")
    expect(diff).to_contain_text("[click](javascript:window.__xss=3)")
    expect(page.locator("#history-table")).to_contain_text("onerror")
    page.wait_for_timeout(300)  # give any injected handler a chance to run
    assert_no_injected_markup(page)

    head = studio.services.constitutions.head(constitution_id(studio))
    assert head.content.principles[1].title == XSS_TITLE
    assert head.content.principles[1].critique_request == XSS_CRITIQUE


def test_saving_an_empty_title_is_refused(page: Page, studio: Studio) -> None:
    open_studio(page, studio)
    pick_principle(page, studio, 3)
    type_text(textbox(page, "principle-title"), "")
    result = save(page, "Clear a title by mistake")
    expect(result).to_contain_text("Not saved", timeout=TIMEOUT)
    expect(result).to_contain_text(re.compile(r"title.*empty", re.IGNORECASE))
    expect(page.locator("#active-constitution")).to_contain_text("v1")

    head = studio.services.constitutions.head(constitution_id(studio))
    assert head.info.number == 1
    assert head.content.principles[2].title.strip() != ""
    assert len(studio.services.constitutions.history(constitution_id(studio))) == 1
