"""What the tabs fill in when the page opens, sent as one Gradio event.

Gradio 6's page does work over every component of the app for each event it runs (it updates
the loading state of every pending output by walking the component tree, ~800 components): with
17 load events a fresh page settled after ~9.7 s on a 2-core machine, ~5.8 s with the hidden
tabs' 14 as one (docs/decisions.md, "One page-load event"). The visible tab (Constitution) and
the model line keep events of their own: the first must not wait for the others, the second
waits for the model to load.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.blocks import Block

from backend.errors import StudioError

API_NAME = "page_load"


@dataclass(frozen=True)
class _Part:
    name: str
    where: str  # for messages: "the Agreement tab"
    fn: Callable[..., Any]
    outputs: tuple[Block, ...]
    several: bool  # the function returns one value per output (else one value)
    wants_request: bool

    def values(self, request: gr.Request | None) -> list[Any]:
        try:
            value = self.fn(request) if self.wants_request else self.fn()
        except (gr.Error, StudioError) as exc:
            # one tab's failure leaves the others loaded; the message says which and why
            gr.Warning(f"{self.where[:1].upper()}{self.where[1:]} could not load: {exc.message}")
            return [gr.skip() for _ in self.outputs]
        return list(value) if self.several else [value]


class PageLoad:
    """Collects each tab's page-load function and its outputs; ``register`` makes them one
    event (``/page_load``), the parts run in the order they were added."""

    def __init__(self) -> None:
        self._parts: list[_Part] = []

    def add(self, name: str, fn: Callable[..., Any],
            outputs: Block | Sequence[Block], *,
            where: str) -> None:
        several = not isinstance(outputs, Block)
        outs: tuple[Block, ...] = (outputs,) if isinstance(outputs, Block) else tuple(outputs)
        wants = "request" in inspect.signature(fn).parameters
        self._parts.append(_Part(name, where, fn, outs, several, wants))

    def run(self, request: gr.Request) -> list[Any]:
        values: list[Any] = []
        for part in self._parts:
            values.extend(part.values(request))
        return values

    def register(self, demo: gr.Blocks) -> None:
        """Inside ``with demo:``, after the last ``add``."""
        outputs = [o for part in self._parts for o in part.outputs]
        demo.load(self.run, inputs=None, outputs=outputs, api_name=API_NAME,
                  show_progress="hidden")

    def names(self) -> list[str]:
        return [part.name for part in self._parts]

    def part(self, name: str, values: Sequence[Any]) -> list[Any]:
        """One part's values out of what an API client got from ``/page_load`` (clients
        leave out the outputs Gradio keeps from the API: states, the tab switch)."""
        start = 0
        for part in self._parts:
            shown = sum(1 for o in part.outputs if not o.skip_api)
            if part.name == name:
                return list(values[start:start + shown])
            start += shown
        raise KeyError(name)

    @staticmethod
    def of(demo: gr.Blocks) -> PageLoad:
        """The PageLoad registered on ``demo``."""
        for fn in demo.fns.values():
            if fn.api_name == API_NAME and isinstance(getattr(fn.fn, "__self__", None), PageLoad):
                found: PageLoad = fn.fn.__self__  # type: ignore[union-attr]
                return found
        raise LookupError(f"no /{API_NAME} event on this app")
