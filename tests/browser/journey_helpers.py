"""Small page helpers for the end-to-end journey test (tests/browser/test_journey.py), and the
screenshots it takes for docs/user-guide.md.

The helpers follow the other browser tests: Gradio 6 Textbox fires ``input`` on keypress only
(so the last character is typed), Dropdown options are ``ul[role=listbox] li, [role=option]``,
numbers are filled and left with Tab so their value goes with the next event.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.browser.conftest import UI_TIMEOUT

TIMEOUT = UI_TIMEOUT
SCREENSHOT_ENV = "CSTUDIO_SCREENSHOTS"
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}


def textbox(page: Page, elem_id: str) -> Locator:
    """The editable element inside a gr.Textbox (a textarea, or an input for single lines)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def type_text(box: Locator, text: str) -> None:
    """Replace a textbox's text the way typing does (the last character as a key press)."""
    box.fill(text[:-1])
    box.press_sequentially(text[-1])


def dropdown(page: Page, elem_id: str) -> Locator:
    return page.locator(f"#{elem_id} input").first


def choose(page: Page, elem_id: str, option_text: str) -> None:
    """Pick the option of a gr.Dropdown whose label contains ``option_text``."""
    dropdown(page, elem_id).click()
    option = page.locator("ul[role=listbox] li, [role=option]").filter(has_text=option_text)
    option.first.click()
    expect(dropdown(page, elem_id)).to_have_value(re.compile(re.escape(option_text)),
                                                  timeout=TIMEOUT)


# Two animation frames: when a closed accordion opens (or a hidden form is shown), Gradio
# mounts its fields and, once they have settled, pushes the values it holds for them into
# them again (gradio js/core/src/init.svelte.ts, render_previously_invisible_children), a
# frame or so later. Text typed in between is replaced by the stored value: a person cannot
# type that fast, a test can (seen once in a full run: max_steps typed 2, read back 100).
_TWO_FRAMES = ("() => new Promise(r => requestAnimationFrame("
               "() => requestAnimationFrame(() => r(null))))")


def set_number(page: Page, elem_id: str, value: object) -> None:
    """Fill a gr.Number (or a one-line text box) and leave it with Tab; checked a few frames
    later and typed again if a just-rendered field was set back (see _TWO_FRAMES)."""
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    for _ in range(3):
        box.fill(str(value))
        box.press("Tab")
        page.evaluate(_TWO_FRAMES)
        try:
            expect(box).to_have_value(str(value), timeout=3_000)
            return
        except AssertionError:
            continue
    expect(box).to_have_value(str(value))


def set_slider(page: Page, elem_id: str, value: int) -> None:
    """Set a gr.Slider through the number box beside its range input."""
    number = page.locator(f"#{elem_id} input[type=number]").first
    number.fill(str(value))
    number.press("Enter")
    number.blur()
    expect(page.locator(f"#{elem_id} input[type=range]").first).to_have_value(str(value),
                                                                             timeout=TIMEOUT)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


def screenshots_wanted() -> bool:
    return os.environ.get(SCREENSHOT_ENV, "").strip() not in ("", "0")


def shoot(page: Page, tab: str, focus: Locator | None = None, *, block: str = "start"
          ) -> None:
    """Save the viewport as docs/screenshots/<tab>.png (overwriting), only when the
    CSTUDIO_SCREENSHOTS environment variable is set (so ordinary and CI runs leave the tree
    alone). ``focus`` is scrolled to the top (``block="start"``) or the middle
    (``"center"``) of the viewport first; without it the page is shown from the top."""
    if not screenshots_wanted():
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if focus is None:
        page.evaluate("window.scrollTo(0, 0)")
    else:
        focus.evaluate("(e, block) => e.scrollIntoView({block: block})", block)
    page.wait_for_timeout(300)  # let plots and scrolling settle
    page.screenshot(path=str(SCREENSHOT_DIR / f"{tab.lower()}.png"), full_page=False,
                    animations="disabled", caret="hide")
