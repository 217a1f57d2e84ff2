"""Prompt sets for the Playground: the first human turn of each HH-RLHF dialogue.

The file is read at run time (never shipped). A plain gzip/JSON-lines reader is enough for a
list of prompts; dataset imports with column mapping use HF ``datasets`` (agreement lab).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from backend.errors import ValidationError

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def first_human_turn(dialogue: str) -> str | None:
    start = dialogue.find(HUMAN)
    if start == -1:
        return None
    rest = dialogue[start + len(HUMAN):]
    end = rest.find(ASSISTANT)
    turn = (rest if end == -1 else rest[:end]).strip()
    return turn or None


def load_first_human_turns(path: Path, *, limit: int = 500) -> list[str]:
    """Unique first human turns, in file order, from an HH-RLHF .jsonl or .jsonl.gz file."""
    opener = gzip.open if path.suffix == ".gz" else open
    prompts: dict[str, None] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if len(prompts) >= limit:
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(f"{path.name} line {n} is not JSON.") from exc
                text = row.get("chosen") if isinstance(row, dict) else None
                turn = first_human_turn(text) if isinstance(text, str) else None
                if turn and len(turn) <= 2000:
                    prompts[turn] = None
    except OSError as exc:
        raise ValidationError(f"Cannot read the prompt set {path}: {exc.strerror}.") from exc
    return list(prompts)


def default_prompt_set_path() -> Path | None:
    """The shared HH-RLHF sample beside a source checkout, if present."""
    here = Path(__file__).resolve()
    candidate = here.parents[3] / "shared" / "data" / "hh-rlhf" / \
        "harmless-base-test.first2000.jsonl.gz"
    return candidate if candidate.is_file() else None
