"""Choosing a free name: ``wanted``, else ``wanted (2)``, ``(3)``… within a length limit."""

from __future__ import annotations

from collections.abc import Callable


def free_name(wanted: str, taken: Callable[[str], bool], max_chars: int) -> str:
    name, n = wanted[:max_chars], 2
    while taken(name):
        suffix = f" ({n})"
        name = wanted[:max_chars - len(suffix)].rstrip() + suffix
        n += 1
    return name
