"""Parsing files of human preference pairs into ``ParsedPair`` (pure: no database).

Formats: ``hh_rlhf`` (Anthropic HH-RLHF ``chosen``/``rejected`` dialogues, .jsonl or .jsonl.gz),
``hhh_eval`` (the CAI paper's ``438HHHEvaluations.jsonl``), ``harmful_vs_ethical`` (the paper's
``HarmfulVsEthical.jsonl``), generic ``jsonl``/``csv`` with a column mapping, and the Hub.

``prompt`` is always the conversation *before* the compared texts, without its leading
``Human:`` label: ``"hi\\n\\nAssistant: hello\\n\\nHuman: and then?"``. The prompt builders wrap
a prompt as ``\\n\\nHuman: {prompt}\\n\\nAssistant:``, which gives back the original dialogue.

Files are read with the stdlib, not HF ``datasets``: these are small local files, ``datasets``
is an optional extra, and its loaders lose the line numbers that error messages need.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.cai.formats import decode_text
from backend.errors import ImportFormatError
from backend.hub import offline_switch

DEFAULT_MAX_BYTES = 200_000_000
FILE_FORMATS = ("hh_rlhf", "hhh_eval", "harmful_vs_ethical", "jsonl", "csv")
TRAIN_EXTRA_HINT = "pip install 'constitution-studio[train]'"
_ASSISTANT = "\n\nAssistant:"
_HUMAN = "\n\nHuman:"
_LETTER = re.compile(r"^\s*\(([AB])\)\s*$")
# labels that say which side on their own; 0/1 and true/false could mean either side, so they
# need the mapping's label_values (e.g. {"1": "A", "0": "B"})
_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5, "0.5": 0.5}
_SIDES = {"a": 1.0, "b": 0.0, "tie": 0.5}
# why source rows were left out, in words (for import reports in the UI and the CLI)
SKIP_REASONS = {
    "no_final_turn": "with no final assistant turn",
    "context_mismatch": "whose two sides differ before the last turn",
    "empty_response": "with an empty final response",
    "identical_responses": "whose two responses are identical",
}


@dataclass(frozen=True)
class ParsedPair:
    """Humans preferred ``preferred`` over ``other`` (``label`` 1.0; 0.5 = a tie)."""

    prompt: str
    preferred: str
    other: str
    label: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    line: int = 0  # source line (row for the Hub), for error messages and provenance


class ParsedPairs(list[ParsedPair]):
    """The pairs of one source; ``skipped`` counts source rows left out, by reason."""

    def __init__(self, pairs: Iterable[ParsedPair] = (), *, skipped: Mapping[str, int] | None
                 = None, unit: str = "line", source_sha256: str | None = None) -> None:
        super().__init__(pairs)
        self.skipped: dict[str, int] = {k: v for k, v in (skipped or {}).items() if v}
        self.unit = unit  # "line" for files, "row" for Hub datasets
        self.source_sha256 = source_sha256  # set where the source is not one file's bytes


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns hold what. ``label`` None: every pair prefers response A."""

    prompt: str
    response_a: str
    response_b: str
    label: str | None = None
    meta: tuple[str, ...] = ()
    # (value in the label column, "A" | "B" | "tie"), e.g. (("1", "A"), ("2", "B"))
    label_values: tuple[tuple[str, str], ...] = ()

    @property
    def label_map(self) -> dict[str, float]:
        return {value: _SIDES[side.lower()] for value, side in self.label_values}

    @classmethod
    def of(cls, value: ColumnMapping | Mapping[str, Any] | None) -> ColumnMapping:
        if isinstance(value, ColumnMapping):
            return value
        v = dict(value or {})
        meta, label = v.get("meta") or (), v.get("label") or None
        values = parse_label_values(v.get("label_values"))
        if (set(v) - {"prompt", "response_a", "response_b", "label", "meta", "label_values"}
                or isinstance(meta, str) or not isinstance(label, str | None)
                or not all(isinstance(c, str) and c for c in (
                    v.get("prompt"), v.get("response_a"), v.get("response_b"), *meta))):
            raise ImportFormatError(
                "The generic format needs a column mapping {'prompt': column, 'response_a': "
                "column, 'response_b': column, 'label': column or None, 'meta': [columns], "
                f"'label_values': {{'1': 'A', '2': 'B'}}}}; got {v!r}.")
        return cls(v["prompt"], v["response_a"], v["response_b"], label, tuple(meta), values)


def _label_key(value: Any) -> str:
    """A label value as the text a mapping names it by: 1, 1.0 and "1" are all "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def parse_label_values(value: Any) -> tuple[tuple[str, str], ...]:
    """{"1": "A", "2": "B"} or the text "1=A, 2=B, 0=tie" as ((value, side), ...)."""
    if value in (None, "", {}):
        return ()
    if isinstance(value, str):
        items: list[tuple[Any, Any]] = []
        for part in value.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ImportFormatError(f"Cannot read the label mapping {part.strip()!r}; "
                                        "write it like '1=A, 2=B, 0=tie'.")
            raw, side = part.split("=", 1)
            items.append((raw, side))
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        raise ImportFormatError("The label mapping must be like {'1': 'A', '2': 'B'} or the "
                                "text '1=A, 2=B'.")
    out = []
    for raw, side in items:
        side_text = str(side).strip()
        if side_text.lower() not in _SIDES:
            raise ImportFormatError(f"The label mapping sends {raw!r} to {side!r}; each value "
                                    "must map to A, B or tie.")
        out.append((_label_key(raw), "tie" if side_text.lower() == "tie"
                    else side_text.upper()))
    return tuple(out)


# --- reading ------------------------------------------------------------------------------


def read_text(raw: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """UTF-8 text of a file, gunzipped first if it is gzip (bounded: no decompression bombs)."""
    if raw[:2] != b"\x1f\x8b":
        return decode_text(raw, filename, max_bytes)
    if len(raw) > max_bytes:
        decode_text(raw, filename, max_bytes)  # raises its "the import limit is …" error
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            data = gz.read(max_bytes + 1)
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{filename} is not a valid gzip file ({exc}).") from exc
    if len(data) > max_bytes:
        raise ImportFormatError(f"{filename} decompresses to more than the import limit of "
                                f"{max_bytes:,} bytes; import a smaller part of it.")
    return decode_text(data, filename, max_bytes)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value; write a number or text")


def json_lines(text: str, filename: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL text."""
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 is legal in JSON
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{filename} line {n} is not valid JSON: {exc.msg} "
                                    f"(column {exc.colno}).") from exc
        except ValueError as exc:  # from _no_constant
            raise ImportFormatError(f"{filename} line {n}: {exc}.") from exc
        except RecursionError as exc:
            raise ImportFormatError(f"{filename} line {n} is nested too deeply.") from exc
        if not isinstance(obj, dict):
            raise ImportFormatError(f"{filename} line {n} must be a JSON object, not "
                                    f"{type(obj).__name__}.")
        yield n, obj


def _field(obj: Mapping[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise ImportFormatError(f"{where}: no field {key!r}; it has: "
                                f"{', '.join(sorted(map(str, obj))) or 'nothing'}.")
    if not isinstance(obj[key], str):
        raise ImportFormatError(f"{where}: {key!r} must be text, not {type(obj[key]).__name__}.")
    return str(obj[key])


def first_human_turn(dialogue: str) -> str | None:
    """The first human turn of a ``\\n\\nHuman: … \\n\\nAssistant: …`` dialogue (None when
    it has none, or an empty one)."""
    start = dialogue.find(_HUMAN)
    if start == -1:
        return None
    rest = dialogue[start + len(_HUMAN):]
    end = rest.find(_ASSISTANT)
    turn = (rest if end == -1 else rest[:end]).strip()
    return turn or None


def split_last_turn(dialogue: str) -> tuple[str, str] | None:
    """(context, final assistant turn) of a ``\\n\\nHuman: … \\n\\nAssistant: …`` dialogue."""
    i = dialogue.rfind(_ASSISTANT)
    return None if i < 0 else (dialogue[:i], dialogue[i + len(_ASSISTANT):].strip())


def context_prompt(context: str) -> str:
    """The conversation without its leading ``Human:`` label (the prompt builders add it)."""
    text = context.strip()
    return text[len("Human:"):].strip() if text.startswith("Human:") else text


# --- HH-RLHF --------------------------------------------------------------------------------


def hh_pairs(rows: Iterable[tuple[int, Mapping[str, Any]]], filename: str,
             unit: str = "line") -> ParsedPairs:
    """Dialogues that do not share all but the last assistant turn, or whose last turn is
    empty (nothing to show a labeller), are skipped and counted rather than refused: the
    public test split has a few of each."""
    pairs, skipped = [], Counter[str]()
    for n, row in rows:
        where = f"{filename} {unit} {n}"
        chosen = split_last_turn(_field(row, "chosen", where))
        rejected = split_last_turn(_field(row, "rejected", where))
        if chosen is None or rejected is None:
            skipped["no_final_turn"] += 1
        elif chosen[0] != rejected[0]:
            skipped["context_mismatch"] += 1
        elif not chosen[1] or not rejected[1]:
            skipped["empty_response"] += 1
        else:
            pairs.append(ParsedPair(context_prompt(chosen[0]), chosen[1], rejected[1], line=n))
    return ParsedPairs(pairs, skipped=skipped, unit=unit)


# --- the CAI paper's evaluation files -------------------------------------------------------


def _letters(obj: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The (correct, incorrect) option letters of ``"corrects": [" (B)"]`` etc."""
    found = [m.group(1) if isinstance(v := obj.get(k), list) and len(v) == 1
             and isinstance(v[0], str) and (m := _LETTER.match(v[0])) else None
             for k in ("corrects", "incorrects")]
    if found[0] is None or found[1] is None or found[0] == found[1]:
        raise ImportFormatError(f'{where}: corrects and incorrects must each be a list with one '
                                f'option such as [" (A)"], naming different options.')
    return found[0], found[1]


def _question_parts(head: str, where: str) -> tuple[str, str]:
    """(dialogue, question) of ``preamble\\n\\ndialogue\\n\\nquestion``."""
    text = head.strip()
    first, last = text.find("\n\n"), text.rfind("\n\n")
    if first < 0 or first == last:
        raise ImportFormatError(f"{where}: the prompt should hold a preamble, the conversation "
                                "and a question, separated by blank lines.")
    return text[first:last].strip(), text[last:].strip()


def _bracket_options(prompt: str, where: str) -> tuple[str, str, str]:
    """(text before the options, A, B) of a prompt with `` (A) [[[…]]]`` `` (B) [[[…]]]``."""
    i, j, k = prompt.find("\n (A) [[["), prompt.rfind("]]]\n (B) [[["), prompt.rfind("]]]")
    if i < 0 or j < i or k <= j:
        raise ImportFormatError(f"{where}: the prompt has no ' (A) [[[…]]]' and ' (B) [[[…]]]' "
                                "options.")
    return prompt[:i], prompt[i + 9:j].strip(), prompt[j + 12:k].strip()


def hhh_pairs(rows: Iterable[tuple[int, Mapping[str, Any]]], filename: str) -> ParsedPairs:
    pairs = []
    for n, row in rows:
        where = f"{filename} line {n}"
        good, bad = _letters(row, where)
        head, a, b = _bracket_options(_field(row, "prompt", where), where)
        dialogue, question = _question_parts(head.removesuffix("Options:").rstrip(), where)
        if "text_correct" in row or "text_incorrect" in row:
            # The full texts, where present, are the source; the options are the fallback.
            right = split_last_turn(_field(row, "text_correct", where))
            wrong = split_last_turn(_field(row, "text_incorrect", where))
            if right is None or wrong is None or right[0] != wrong[0]:
                raise ImportFormatError(f"{where}: text_correct and text_incorrect do not share "
                                        "the conversation before the last 'Assistant:' turn.")
            prompt, preferred, other = context_prompt(right[0]), right[1], wrong[1]
        else:
            options = {"A": a, "B": b}
            prompt, preferred, other = context_prompt(dialogue), options[good], options[bad]
        pairs.append(ParsedPair(prompt, preferred, other,
                                meta={"question": question, "correct_option": good}, line=n))
    return ParsedPairs(pairs)


def harmful_vs_ethical_pairs(rows: Iterable[tuple[int, Mapping[str, Any]]], filename: str
                             ) -> ParsedPairs:
    """A classification, stored as a pair: the prompt is the whole conversation being judged,
    the two texts are the question's options; ``meta.task`` says so and keeps the question."""
    pairs = []
    for n, row in rows:
        where = f"{filename} line {n}"
        good, bad = _letters(row, where)
        text = _field(row, "prompt", where)
        text = text[:text.rfind("\nThe answer is:")] if "\nThe answer is:" in text else text
        i = text.rfind("\n (A) ")
        j = text.find("\n (B) ", i + 1)
        if i < 0 or j < 0:
            raise ImportFormatError(f"{where}: the prompt has no ' (A) …' and ' (B) …' options.")
        options = {"A": text[i + 6:j].strip(), "B": text[j + 6:].strip()}
        dialogue, question = _question_parts(text[:i], where)
        pairs.append(ParsedPair(context_prompt(dialogue), options[good], options[bad],
                                meta={"task": "classification", "question": question,
                                      "correct_option": good}, line=n))
    return ParsedPairs(pairs)


# --- generic JSONL / CSV with a column mapping -----------------------------------------------


def parse_label(value: Any, where: str, values: Mapping[str, float] | None = None) -> float:
    """1.0: response A preferred, 0.0: B, 0.5: a tie. ``values`` (the mapping's label values)
    says what other values mean; without it 0/1 and true/false are refused, since either
    could mean A."""
    key = _label_key(value)
    if values and key in values:
        return values[key]
    if key in _LABELS:
        return _LABELS[key]
    if key in ("0", "1", "true", "false", "yes", "no"):
        raise ImportFormatError(
            f"{where}: the label {value!r} does not say which response humans preferred: "
            "map the label values, e.g. '1=A, 0=B' (or the other way round).")
    known = ", ".join(f"{k}={'tie' if v == 0.5 else 'AB'[v == 0.0]}"
                      for k, v in (values or {}).items())
    raise ImportFormatError(f"{where}: the label {value!r} is not one of A, B or tie"
                            + (f" or a mapped value ({known})." if known else
                               "; map other values, e.g. '1=A, 2=B'."))


def mapped_pairs(rows: Iterable[tuple[int, Mapping[str, Any]]], mapping: ColumnMapping,
                 filename: str, unit: str = "line") -> ParsedPairs:
    pairs, seen_meta = [], set[str]()
    for n, row in rows:
        where = f"{filename} {unit} {n}"
        prompt, a, b = (_field(row, c, where) for c in
                        (mapping.prompt, mapping.response_a, mapping.response_b))
        if mapping.label is None:
            label = 1.0
        elif mapping.label not in row or row[mapping.label] in (None, ""):
            raise ImportFormatError(f"{where}: no value in the label column {mapping.label!r}.")
        else:
            label = parse_label(row[mapping.label], where, mapping.label_map)
        meta = {c: row.get(c) for c in mapping.meta}
        seen_meta.update(c for c in mapping.meta if c in row)
        preferred, other = (b, a) if label == 0.0 else (a, b)
        pairs.append(ParsedPair(prompt, preferred, other, 0.5 if label == 0.5 else 1.0, meta, n))
    absent = [c for c in mapping.meta if c not in seen_meta]
    if pairs and absent:
        raise ImportFormatError(f"{filename}: no {unit} has the meta column(s) "
                                f"{', '.join(map(repr, absent))}.")
    return ParsedPairs(pairs, unit=unit)


def csv_rows(text: str, filename: str, mapping: ColumnMapping
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """(line where the record starts, {column: value}); the first row must be the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise ImportFormatError(f"{filename} is empty; it needs a header row of column names.")
        wanted = [c for c in (mapping.prompt, mapping.response_a, mapping.response_b,
                              mapping.label, *mapping.meta) if c is not None]
        for column in wanted:
            if column not in header:
                raise ImportFormatError(f"{filename} has no column {column!r}; its header row "
                                        f"has: {', '.join(map(repr, header))}.")
            if header.count(column) > 1:
                raise ImportFormatError(f"{filename} has the column {column!r} twice.")
        start = reader.line_num + 1
        for record in reader:
            if record:
                if len(record) != len(header):
                    raise ImportFormatError(f"{filename} line {start} has {len(record)} fields; "
                                            f"the header has {len(header)}.")
                yield start, dict(zip(header, record, strict=True))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFormatError(f"{filename} line {reader.line_num}: {exc}.") from exc


# --- entry points -------------------------------------------------------------------------


def parse_file(raw: bytes, filename: str, fmt: str, *,
               mapping: ColumnMapping | Mapping[str, Any] | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedPairs:
    """Parse one file in ``fmt`` (one of FILE_FORMATS)."""
    if fmt not in FILE_FORMATS:
        raise ImportFormatError(f"Unknown dataset format {fmt!r}; use one of "
                                f"{', '.join(FILE_FORMATS)}.")
    text = read_text(raw, filename, max_bytes)
    if fmt == "csv":
        cols = ColumnMapping.of(mapping)
        return mapped_pairs(csv_rows(text, filename, cols), cols, filename)
    rows = json_lines(text, filename)
    if fmt == "jsonl":
        return mapped_pairs(rows, ColumnMapping.of(mapping), filename)
    if fmt == "hh_rlhf":
        return hh_pairs(rows, filename)
    return (hhh_pairs if fmt == "hhh_eval" else harmful_vs_ethical_pairs)(rows, filename)


def load_from_hub(repo_id: str, data_dir: str | None = None, split: str = "test",
                  limit: int | None = None, *,
                  mapping: ColumnMapping | Mapping[str, Any] | None = None) -> ParsedPairs:
    """Pairs from a Hub dataset: HH-RLHF style (``chosen``/``rejected``) unless a mapping says
    which columns to read."""
    offline = offline_switch()
    if offline:
        raise ImportFormatError(
            f"This machine is set to work offline ({offline}=1), so {repo_id} cannot be "
            "downloaded from the Hub. Unset it on a machine with network access, or download "
            "the data elsewhere and import the file.")
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as exc:
        raise ImportFormatError("Importing from the Hub needs the datasets library: "
                                f"{TRAIN_EXTRA_HINT}") from exc
    try:
        data = datasets.load_dataset(repo_id, data_dir=data_dir, split=split)
    except Exception as exc:  # network, missing repo, bad split: all shown to the user as text
        raise ImportFormatError(f"Could not load {repo_id} (data_dir={data_dir!r}, "
                                f"split={split!r}) from the Hub: {exc}") from exc
    digest = hashlib.sha256()
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, row in enumerate(data, 1):
        if limit is not None and n > limit:
            break
        rows.append((n, dict(row)))
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
                      .encode("utf-8") + b"\n")
    where = f"{repo_id}:{split}"
    parsed = (mapped_pairs(rows, ColumnMapping.of(mapping), where, "row") if mapping
              else hh_pairs(rows, where, "row"))
    parsed.source_sha256 = digest.hexdigest()
    return parsed
