"""The constitution as plain data: principles, few-shot examples, content hash, validation.

A constitution version's *content* is its ordered principles and few-shot examples. The
content hash covers exactly that (not the constitution's name), so the same content exported
and imported elsewhere has the same hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from backend.errors import ValidationError

FewShotKind = Literal["critique_revision", "choice", "choice_cot"]
FEW_SHOT_KINDS: tuple[str, ...] = ("critique_revision", "choice", "choice_cot")

MAX_NAME_CHARS = 120
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 4000
MAX_PRINCIPLES = 200
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_FEW_SHOTS = 50
MAX_FEW_SHOT_CHARS = 20000
MAX_MESSAGE_CHARS = 500
MAX_DESCRIPTION_CHARS = 2000

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TAG_RE = re.compile(r"^[\w][\w .:/-]*$")
# Bidirectional overrides and isolates can make text read differently from what is stored
# ("Trojan source"); an auditable constitution must read as it is stored.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Principle:
    key: str
    title: str
    critique_request: str
    revision_request: str
    choice_instruction: str
    tags: tuple[str, ...] = ()
    enabled: bool = True

    def canonical(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class FewShotExample:
    kind: str
    data: dict[str, Any]

    def canonical(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": self.data}


@dataclass(frozen=True)
class ConstitutionContent:
    principles: tuple[Principle, ...]
    few_shots: tuple[FewShotExample, ...] = field(default=())

    def canonical(self) -> dict[str, Any]:
        return {
            "principles": [p.canonical() for p in self.principles],
            "few_shots": [f.canonical() for f in self.few_shots],
        }

    def content_hash(self) -> str:
        return sha256_hex(canonical_json(self.canonical()))

    def enabled_principles(self) -> tuple[Principle, ...]:
        return tuple(p for p in self.principles if p.enabled)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_principle_key() -> str:
    return "p-" + secrets.token_hex(4)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Every character ``_char_problem`` may object to (controls, surrogates, bidi controls, the
# non-characters U+nFFFE/U+nFFFF); tab is always allowed, newline only in multi-line text.
_NONCHARS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_SUSPECT_MULTILINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069"
    + re.escape(_NONCHARS) + "]")
_SUSPECT_SINGLE_LINE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069"
    + re.escape(_NONCHARS) + "]")


def text_problem(text: str, *, multiline: bool) -> str | None:
    """Why ``text`` may not be stored, or None. Rejects control and invisible-format tricks.

    One regex scan finds the first suspect character (the whole check runs in C: it is on the
    path of every prompt of an agreement run); only then is that character explained."""
    found = (_SUSPECT_MULTILINE if multiline else _SUSPECT_SINGLE_LINE).search(text)
    if found is None:
        return None
    return _chars_problem(text[found.start():], multiline=multiline)


def _chars_problem(text: str, *, multiline: bool) -> str | None:
    for ch in text:
        code = ord(ch)
        if ch in "\n\t":
            if multiline or ch == "\t":
                continue
            return "contains a line break; use a single line"
        if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:
            return f"contains the control character U+{code:04X}; remove it"
        if 0xD800 <= code <= 0xDFFF:
            return "contains an unpaired surrogate (invalid unicode); re-save the text as UTF-8"
        if ch in _BIDI_CONTROLS:
            return f"contains the bidirectional control U+{code:04X}, which hides what text says"
        if unicodedata.category(ch) == "Cn" and (code & 0xFFFE) == 0xFFFE:
            return f"contains the non-character U+{code:04X}; remove it"
    return None


def _check_text(problems: list[str], where: str, text: str, limit: int, *, multiline: bool) -> None:
    if not text.strip():
        problems.append(f"{where}: is empty; write some text")
        return
    if len(text) > limit:
        problems.append(f"{where}: is {len(text)} characters long; the limit is {limit}")
    issue = text_problem(text, multiline=multiline)
    if issue:
        problems.append(f"{where}: {issue}")


def validate_name(name: str) -> None:
    problems: list[str] = []
    _check_text(problems, "name", name, MAX_NAME_CHARS, multiline=False)
    if problems:
        raise ValidationError("The constitution name is not valid.", problems)


def validate_description(description: str) -> None:
    problems: list[str] = []
    if len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description: is {len(description)} characters; the limit is "
                        f"{MAX_DESCRIPTION_CHARS}")
    issue = text_problem(description, multiline=True)
    if issue:
        problems.append(f"description: {issue}")
    if problems:
        raise ValidationError("The constitution description is not valid.", problems)


def validate_message(message: str) -> None:
    problems: list[str] = []
    if len(message) > MAX_MESSAGE_CHARS:
        problems.append(f"message: is {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}")
    issue = text_problem(message, multiline=True)
    if issue:
        problems.append(f"message: {issue}")
    if problems:
        raise ValidationError("The save message is not valid.", problems)


def _principle_problems(index: int, p: Principle) -> list[str]:
    where = f"principle {index + 1}"
    label = f"{where} ({p.title[:40]!r})" if p.title.strip() else where
    problems: list[str] = []
    if not _KEY_RE.match(p.key):
        problems.append(
            f"{label}: key {p.key[:70]!r} must be 1-64 letters, digits, '-', '_' or '.'"
        )
    _check_text(problems, f"{label} title", p.title, MAX_TITLE_CHARS, multiline=False)
    _check_text(problems, f"{label} critique request", p.critique_request, MAX_TEXT_CHARS,
                multiline=True)
    _check_text(problems, f"{label} revision request", p.revision_request, MAX_TEXT_CHARS,
                multiline=True)
    _check_text(problems, f"{label} choice instruction", p.choice_instruction, MAX_TEXT_CHARS,
                multiline=True)
    if len(p.tags) > MAX_TAGS:
        problems.append(f"{label}: has {len(p.tags)} tags; the limit is {MAX_TAGS}")
    for tag in p.tags:
        if len(tag) > MAX_TAG_CHARS or not _TAG_RE.match(tag) or text_problem(tag, multiline=False):
            problems.append(
                f"{label}: tag {tag[:50]!r} must be 1-{MAX_TAG_CHARS} letters, digits, spaces "
                "or '-_.:/', starting with a letter or digit"
            )
    return problems


def _duplicate_problems(principles: Sequence[Principle]) -> list[str]:
    problems: list[str] = []
    first_seen: dict[tuple[str, object], int] = {}
    for i, p in enumerate(principles, start=1):
        texts = tuple(" ".join(t.split()) for t in
                      (p.critique_request, p.revision_request, p.choice_instruction))
        identities: tuple[tuple[str, object], ...] = (
            ("key", p.key),
            ("title", " ".join(p.title.split()).casefold()),
            ("texts", texts),
        )
        for identity in identities:
            if identity in first_seen:
                problems.append(
                    f"principle {i}: has the same {identity[0]} as principle "
                    f"{first_seen[identity]}; principles must be distinct"
                )
            else:
                first_seen[identity] = i
    return problems


def _few_shot_problems(few_shots: Sequence[FewShotExample]) -> list[str]:
    problems: list[str] = []
    if len(few_shots) > MAX_FEW_SHOTS:
        problems.append(f"few-shot examples: {len(few_shots)} given; the limit is {MAX_FEW_SHOTS}")
    for i, ex in enumerate(few_shots, start=1):
        where = f"few-shot example {i}"
        if ex.kind not in FEW_SHOT_KINDS:
            problems.append(f"{where}: kind {ex.kind[:40]!r} must be one of {FEW_SHOT_KINDS}")
        size = len(canonical_json(ex.data))
        if size > MAX_FEW_SHOT_CHARS:
            problems.append(f"{where}: is {size} characters; the limit is {MAX_FEW_SHOT_CHARS}")
        for text in _strings_in(ex.data):
            issue = text_problem(text, multiline=True)
            if issue:
                problems.append(f"{where}: {issue}")
                break
    return problems


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings_in(v)


def validate_content(content: ConstitutionContent) -> None:
    """Raise ValidationError listing every problem, or return if the content may be saved."""
    problems: list[str] = []
    if not content.principles:
        problems.append("principles: a constitution needs at least one principle")
    if len(content.principles) > MAX_PRINCIPLES:
        problems.append(
            f"principles: {len(content.principles)} given; the limit is {MAX_PRINCIPLES}"
        )
    for i, p in enumerate(content.principles):
        problems.extend(_principle_problems(i, p))
    problems.extend(_duplicate_problems(content.principles))
    problems.extend(_few_shot_problems(content.few_shots))
    if content.principles and not content.enabled_principles():
        problems.append("principles: all are disabled; enable at least one")
    if problems:
        raise ValidationError("The constitution cannot be saved as it is.", problems)


def clean_principle(p: Principle) -> Principle:
    """Normalise line endings, trim titles and tags; request texts are otherwise kept as typed."""
    return replace(
        p,
        key=p.key.strip(),
        title=" ".join(p.title.split()),
        critique_request=normalise_newlines(p.critique_request),
        revision_request=normalise_newlines(p.revision_request),
        choice_instruction=normalise_newlines(p.choice_instruction),
        tags=tuple(dict.fromkeys(t.strip() for t in p.tags if t.strip())),
    )
