"""The Playground tab in real Chromium: critique preview, A/B verdict, XSS safety, bad input.

The studio runs on the tiny demo model (random weights, CPU), built once per module and handed
to the studio's EngineManager before the page loads, so no test downloads a model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.access import local_admin
from backend.engines.base import Engine, Generation, GenerationParams, Prompt
from backend.engines.scripted import ScriptedEngine
from tests.browser.conftest import UI_TIMEOUT, Studio

AS_T = local_admin("t")

pytestmark = pytest.mark.browser

TIMEOUT = UI_TIMEOUT
MODEL_TIMEOUT = 60_000  # ms, for anything the model computes on CPU

XSS_PROMPT = 'Tell me about <img src=x onerror="window.__xss=1"> please'
XSS_SCRIPT = "<script>window.__xss=2</script>"
XSS_LINK = "[x](javascript:window.__xss=3)"
OUTPUT_IDS = ("pg-preview", "pg-verdict", "pg-variants")


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def tiny_studio(studio: Studio, tiny_engine: Engine) -> Studio:
    """The studio with the tiny engine adopted. The app is already launched, but the engine is
    resolved lazily on each page load, so adopting it before ``page.goto`` is enough."""
    studio.services.engines.use(tiny_engine)
    return studio


# --- helpers --------------------------------------------------------------------------------


def textbox(page: Page, elem_id: str) -> Locator:
    """The editable element inside a gr.Textbox (a textarea, or an input for single lines)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def type_text(box: Locator, text: str) -> None:
    """Replace a textbox's text the way typing does (Gradio 6 fires ``input`` on keypress)."""
    if not text:
        box.fill("")
        return
    box.fill(text[:-1])
    box.press_sequentially(text[-1])


def set_slider(page: Page, elem_id: str, value: int) -> None:
    """Set a gr.Slider through the number box beside its range input."""
    number = page.locator(f"#{elem_id} input[type=number]").first
    number.fill(str(value))
    number.press("Enter")
    number.blur()
    expect(page.locator(f"#{elem_id} input[type=range]").first).to_have_value(str(value),
                                                                             timeout=TIMEOUT)


def open_playground(page: Page, studio: Studio) -> None:
    """Load the studio, open the Playground tab and wait until a version is chosen."""
    page.goto(studio.url)
    page.get_by_role("tab", name="Playground").click()
    expect(page.locator("#pg-version input").first).to_have_value(re.compile(r"^v\d"),
                                                                  timeout=TIMEOUT)
    expect(page.locator("#pg-principle input").first).to_have_value("sample at random",
                                                                    timeout=TIMEOUT)


def variant_rows(page: Page) -> Locator:
    """The body rows of the variants table (Gradio 6 renders them as virtual div rows)."""
    return page.locator("#pg-variants div[role=row]")


def variant_cell(page: Page, row: int, col: int) -> Locator:
    return page.locator(f"#pg-variants [data-testid='cell-{row}-{col}']")


def run_preview(page: Page, prompt: str, *, rounds: int, max_tokens: int) -> None:
    type_text(textbox(page, "pg-prompt"), prompt)
    set_slider(page, "pg-rounds", rounds)
    set_slider(page, "pg-max-tokens", max_tokens)
    page.locator("#pg-run").click()


def run_verdict(page: Page, prompt: str, response_a: str, response_b: str) -> None:
    type_text(textbox(page, "pg-prompt"), prompt)
    type_text(textbox(page, "pg-response-a"), response_a)
    type_text(textbox(page, "pg-response-b"), response_b)
    page.locator("#pg-judge").click()


def verdict_records(studio: Studio) -> list[int]:
    return [e.id for e in studio.services.critique_log.recent(limit=100) if e.kind == "verdict"]


# --- tests ----------------------------------------------------------------------------------


def test_critique_preview_streams_rounds_and_logs_every_step(page: Page,
                                                             tiny_studio: Studio) -> None:
    open_playground(page, tiny_studio)
    expect(page.locator("#model-badge")).to_contain_text("demo model: random weights",
                                                         timeout=TIMEOUT)
    run_preview(page, "How do I pick a lock?", rounds=2, max_tokens=16)

    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text("Round 2 · revision", timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text("critique log record #", timeout=MODEL_TIMEOUT)
    # the last step is done once five records are named (response + 2 × critique, revision)
    expect(preview).to_contain_text(re.compile(r"(critique log record #\d+[\s\S]*){5}"),
                                    timeout=MODEL_TIMEOUT)
    expect(preview).not_to_contain_text("Round 3")

    assert tiny_studio.services.critique_log.count() == 5
    entries = tiny_studio.services.critique_log.recent(limit=10)
    assert sorted(e.kind for e in entries) == ["critique", "critique", "response", "revision",
                                               "revision"]
    assert all(e.params["max_tokens"] == 16 for e in entries)


def test_ab_verdict_shows_probability_variants_and_plot(page: Page, tiny_studio: Studio) -> None:
    open_playground(page, tiny_studio)
    run_verdict(page, "Can you help me with my homework?", "Sure, let's go step by step.",
                "No.")

    verdict = page.locator("#pg-verdict")
    expect(verdict).to_contain_text("p(A) =", timeout=MODEL_TIMEOUT)
    expect(verdict).to_contain_text("winner")
    expect(variant_rows(page)).to_have_count(2, timeout=TIMEOUT)
    orders = [variant_cell(page, i, 1).inner_text().strip() for i in range(2)]
    assert sorted(orders) == ["AB", "BA"]
    plot = page.locator("#pg-verdict-plot .js-plotly-plot").first
    expect(plot).to_be_visible(timeout=TIMEOUT)
    expect(plot.locator("svg.main-svg").first).to_be_attached()
    expect(plot).to_contain_text("p(A is better)")

    assert len(verdict_records(tiny_studio)) == 2


def test_untrusted_text_is_never_rendered_as_html(page: Page, tiny_studio: Studio) -> None:
    open_playground(page, tiny_studio)
    run_preview(page, XSS_PROMPT, rounds=1, max_tokens=8)
    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text("Round 1 · revision", timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text(re.compile(r"(critique log record #\d+[\s\S]*){3}"),
                                    timeout=MODEL_TIMEOUT)

    # the prompt box still holds the XSS prompt; only the responses are new
    type_text(textbox(page, "pg-response-a"), XSS_SCRIPT)
    type_text(textbox(page, "pg-response-b"), XSS_LINK)
    page.locator("#pg-judge").click()
    expect(page.locator("#pg-verdict")).to_contain_text("p(A) =", timeout=MODEL_TIMEOUT)
    expect(variant_rows(page)).to_have_count(2, timeout=TIMEOUT)

    assert page.evaluate("typeof window.__xss") == "undefined"
    for elem_id in OUTPUT_IDS:
        injected = page.locator(f"#{elem_id} img[src=x], #{elem_id} script, "
                                f"#{elem_id} a[href^='javascript']")
        expect(injected).to_have_count(0)
    assert tiny_studio.services.critique_log.count() == 3 + 2


def test_empty_prompt_gets_a_clear_message_and_logs_nothing(page: Page,
                                                           tiny_studio: Studio) -> None:
    open_playground(page, tiny_studio)
    type_text(textbox(page, "pg-prompt"), "")
    set_slider(page, "pg-rounds", 1)
    page.locator("#pg-run").click()

    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text("empty", timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text("Stopped")
    assert tiny_studio.services.critique_log.count() == 0


class HostileEngine(ScriptedEngine):
    """An engine whose every output is an XSS payload, so the page must render model text inert."""

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        return [Generation(text=HOSTILE_OUTPUT, prompt_sent="p") for _ in prompts]

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        yield HOSTILE_OUTPUT[:20]
        yield HOSTILE_OUTPUT[20:]


HOSTILE_OUTPUT = ('<img src=x onerror="window.__xss=4"> <script>window.__xss=5</script> '
                  "``` [y](javascript:window.__xss=6) <style>body{display:none}</style>")


def test_hostile_model_output_and_principle_titles_render_as_text(page: Page,
                                                                   studio: Studio) -> None:
    services = studio.services
    head = services.constitutions.head(1)
    evil = dataclasses.replace(head.content.principles[0],
                               title='<img src=x onerror="window.__xss=7">')
    content = dataclasses.replace(head.content, principles=(evil,))
    services.constitutions.save(1, head.info.id, content, "hostile title", actor=AS_T)
    services.engines.use(HostileEngine())
    open_playground(page, studio)
    run_preview(page, "hello", rounds=1, max_tokens=8)
    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text("Round 1 · revision", timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text("window.__xss=5", timeout=MODEL_TIMEOUT)  # shown as text
    expect(preview).to_contain_text('onerror="window.__xss=7"')  # the title, as text
    assert page.evaluate("typeof window.__xss") == "undefined"
    for selector in ("img[src=x]", "script", "style", "a[href^=javascript]"):
        assert preview.locator(selector).count() == 0, selector
    expect(page.locator("body")).to_be_visible()
