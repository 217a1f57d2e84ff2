"""Reading and writing constitution files.

Two formats:

* the studio's own document (YAML or JSON) with a ``schema_version``;
* the Constitutional AI paper's files: ``CritiqueRevisionInstructions.json`` +
  ``RLMadisonInstructions.json`` (+ optional few-shot files), read together as one constitution.

Parsing never touches the database: a failed parse raises ``ImportFormatError`` and nothing
is stored. Paper texts are stored without their prompt framing (``\\n\\nCritiqueRequest: `` ...
``\\n\\nCritique:``) and get it back on export, so a round trip gives the same files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from backend.cai.constitution import (
    ConstitutionContent,
    FewShotExample,
    Principle,
    clean_principle,
    validate_content,
    validate_description,
    validate_name,
)
from backend.errors import ImportFormatError, ValidationError

SCHEMA_VERSION = 1
MAX_DEPTH = 32

PAPER_CRITIQUES = "CritiqueRevisionInstructions.json"
PAPER_CHOICES = "RLMadisonInstructions.json"
PAPER_FEW_SHOT_FILES: dict[str, str] = {
    "CritiqueRevisionFewShotPrompts.json": "critique_revision",
    "RLMadisonFewShotPrompts.json": "choice",
    "RLMadisonPrecogFewShotPrompts.json": "choice_cot",
}
_CRITIQUE_PREFIX, _CRITIQUE_SUFFIX = "\n\nCritiqueRequest: ", "\n\nCritique:"
_REVISION_PREFIX, _REVISION_SUFFIX = "\n\nRevisionRequest: ", "\n\nRevision:"
_CHOICE_PREFIX, _CHOICE_SUFFIX = "\n", " Options:"


@dataclass(frozen=True)
class ParsedConstitution:
    name: str
    description: str
    content: ConstitutionContent


# --- the studio's own format -------------------------------------------------------------


class _PrincipleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StrictStr
    title: StrictStr
    critique_request: StrictStr
    revision_request: StrictStr
    choice_instruction: StrictStr
    tags: list[StrictStr] = Field(default_factory=list)
    enabled: StrictBool = True


class _FewShotDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: StrictStr
    data: dict[StrictStr, Any]


class _ConstitutionDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: StrictInt
    name: StrictStr
    description: StrictStr = ""
    content_hash: StrictStr | None = None
    principles: list[_PrincipleDoc]
    few_shot_examples: list[_FewShotDoc] = Field(default_factory=list)


def to_document(name: str, description: str, content: ConstitutionContent) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "description": description,
        "content_hash": content.content_hash(),
        "principles": [p.canonical() for p in content.principles],
        "few_shot_examples": [f.canonical() for f in content.few_shots],
    }


def dump_json(name: str, description: str, content: ConstitutionContent) -> str:
    return json.dumps(to_document(name, description, content), indent=2, ensure_ascii=False) + "\n"


def dump_yaml(name: str, description: str, content: ConstitutionContent) -> str:
    return yaml.safe_dump(
        to_document(name, description, content), sort_keys=False, allow_unicode=True, width=100
    )


def decode_text(raw: bytes, filename: str, max_bytes: int) -> str:
    """UTF-8 text of an uploaded file, or a clear error for oversized or binary input."""
    if len(raw) > max_bytes:
        raise ImportFormatError(
            f"{filename} is {len(raw):,} bytes; the import limit is {max_bytes:,} bytes. "
            "Split the file or raise CSTUDIO_MAX_IMPORT_BYTES."
        )
    if b"\x00" in raw:
        raise ImportFormatError(f"{filename} looks like a binary file; import a UTF-8 text file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"{filename} is not valid UTF-8 (byte {exc.start}); save it as UTF-8 and retry."
        ) from exc
    return text


def _load_structured(text: str, filename: str) -> Any:
    lowered = filename.lower()
    too_deep = ImportFormatError(f"{filename} is nested more than {MAX_DEPTH} levels deep; a "
                                 "constitution file never needs that.")
    if lowered.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc
        except RecursionError as exc:
            raise too_deep from exc
    else:
        try:
            depth = 0
            for event in yaml.parse(text, Loader=yaml.SafeLoader):
                # Aliases let a tiny file expand into a huge structure; constitutions never
                # need them. Depth is capped before the (recursive) composer runs.
                if isinstance(event, yaml.AliasEvent):
                    raise ImportFormatError(f"{filename} uses YAML aliases (*name); write the "
                                            "values out.")
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise too_deep
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ImportFormatError(f"{filename} is not valid YAML: {exc}".strip()) from exc
        except RecursionError as exc:
            raise too_deep from exc
    return data


def _require_plain_json(value: Any, where: str) -> None:
    problem = _non_json_value(value, where)
    if problem:
        raise ImportFormatError(problem)


def _non_json_value(value: Any, where: str, depth: int = 0) -> str | None:
    """Why ``value`` is not plain JSON data (YAML dates, bytes, sets, non-string keys, NaN)."""
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} levels deep."
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} holds {value}; use a finite number."
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_json_value(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r}, which is not text; quote it."
            found = _non_json_value(item, f"{where}[{key!r}]", depth + 1)
            if found:
                return found
        return None
    return (f"{where} holds a {type(value).__name__} value, which constitutions cannot store; "
            "write it as text.")


def parse_document(text: str, filename: str) -> ParsedConstitution:
    data = _load_structured(text, filename)
    _require_plain_json(data, filename)
    if not isinstance(data, Mapping):
        raise ImportFormatError(
            f"{filename} must hold one constitution object with schema_version, name and "
            "principles at the top level."
        )
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ImportFormatError(
            f"{filename} has schema_version {version!r}; this studio reads schema_version "
            f"{SCHEMA_VERSION}. Export it again from a matching studio or fix the field."
        )
    try:
        doc = _ConstitutionDoc.model_validate(data)
    except PydanticValidationError as exc:
        problems = [
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in exc.errors()[:20]
        ]
        raise ImportFormatError(f"{filename} does not match the constitution schema.",
                                problems) from exc
    content = ConstitutionContent(
        principles=tuple(
            clean_principle(Principle(p.key, p.title, p.critique_request, p.revision_request,
                                      p.choice_instruction, tuple(p.tags), p.enabled))
            for p in doc.principles
        ),
        few_shots=tuple(FewShotExample(f.kind, f.data) for f in doc.few_shot_examples),
    )
    _validate_for_import(content, filename)
    try:
        validate_name(" ".join(doc.name.split()))
        validate_description(doc.description)
    except ValidationError as exc:
        raise ImportFormatError(f"{filename} has a name or description that is not valid.",
                                exc.problems) from exc
    if doc.content_hash is not None and doc.content_hash != content.content_hash():
        raise ImportFormatError(
            f"{filename} declares content_hash {doc.content_hash[:12]}… but its content hashes "
            f"to {content.content_hash()[:12]}…; the file was edited or damaged. Remove the "
            "content_hash line to import it as new content."
        )
    return ParsedConstitution(doc.name, doc.description, content)


def _validate_for_import(content: ConstitutionContent, filename: str) -> None:
    try:
        validate_content(content)
    except ImportFormatError:
        raise
    except ValidationError as exc:
        raise ImportFormatError(f"{filename} holds a constitution that is not valid.",
                                exc.problems) from exc


# --- the Constitutional AI paper's files -------------------------------------------------


def _strip_frame(text: Any, prefix: str, suffix: str, where: str) -> str:
    if not isinstance(text, str) or not text.startswith(prefix) or not text.endswith(suffix):
        raise ImportFormatError(
            f"{where} should be a string of the form {prefix + '…' + suffix!r}; it is not."
        )
    return text[len(prefix): len(text) - len(suffix)]


def is_paper_file(filename: str) -> bool:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base in (PAPER_CRITIQUES, PAPER_CHOICES, *PAPER_FEW_SHOT_FILES)


def parse_paper_files(files: Mapping[str, str], name: str) -> ParsedConstitution:
    """Build one constitution from the paper's files, given as {basename: text}.

    The i-th critique/revision pair and the i-th choice instruction form principle i. The
    paper keeps them as two unrelated lists; the pairing is by position only, and the import
    description and the studio's import note say so.
    """
    missing = [f for f in (PAPER_CRITIQUES, PAPER_CHOICES) if f not in files]
    if missing:
        raise ImportFormatError(
            "The paper format needs both " + PAPER_CRITIQUES + " and " + PAPER_CHOICES
            + "; missing: " + ", ".join(missing) + "."
        )
    critiques = _load_structured(files[PAPER_CRITIQUES], PAPER_CRITIQUES)
    choices = _load_structured(files[PAPER_CHOICES], PAPER_CHOICES)
    if not isinstance(critiques, dict) or not critiques:
        raise ImportFormatError(f"{PAPER_CRITIQUES} must be a non-empty JSON object of principles.")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ImportFormatError(f"{PAPER_CHOICES} must be a JSON list of strings.")
    if len(choices) != len(critiques):
        raise ImportFormatError(
            f"{PAPER_CRITIQUES} has {len(critiques)} principles but {PAPER_CHOICES} has "
            f"{len(choices)}; they are paired by position and must have the same length."
        )
    principles: list[Principle] = []
    for (key, entry), choice in zip(critiques.items(), choices, strict=True):
        where = f"{PAPER_CRITIQUES}[{key!r}]"
        if not isinstance(entry, dict) or set(entry) != {"prompt", "edit_request"}:
            raise ImportFormatError(f"{where} must have exactly 'prompt' and 'edit_request'.")
        prompts = entry["prompt"]
        if not isinstance(prompts, list) or len(prompts) != 1:
            raise ImportFormatError(f"{where}.prompt must be a list with one string.")
        principles.append(Principle(
            key=str(key),
            title=str(key),
            critique_request=_strip_frame(prompts[0], _CRITIQUE_PREFIX, _CRITIQUE_SUFFIX,
                                          where + ".prompt[0]"),
            revision_request=_strip_frame(entry["edit_request"], _REVISION_PREFIX,
                                          _REVISION_SUFFIX, where + ".edit_request"),
            choice_instruction=_strip_frame(choice, _CHOICE_PREFIX, _CHOICE_SUFFIX,
                                            f"{PAPER_CHOICES}[{len(principles)}]"),
            tags=("paper",),
        ))
    few_shots: list[FewShotExample] = []
    for filename, kind in PAPER_FEW_SHOT_FILES.items():
        if filename in files:
            few_shots.extend(_paper_few_shots(files[filename], filename, kind))
    content = ConstitutionContent(tuple(principles), tuple(few_shots))
    _validate_for_import(content, PAPER_CRITIQUES)
    return ParsedConstitution(name, "Imported from the Constitutional AI paper's files. Its "
                              "critique/revision requests and labelling instructions are "
                              "separate lists; principle i pairs the i-th of each by position "
                              "only.", content)


def _paper_few_shots(text: str, filename: str, kind: str) -> list[FewShotExample]:
    items = _load_structured(text, filename)
    if not isinstance(items, list):
        raise ImportFormatError(f"{filename} must be a JSON list.")
    out = []
    for i, item in enumerate(items):
        if kind == "critique_revision":
            if not isinstance(item, str):
                raise ImportFormatError(f"{filename}[{i}] must be a string.")
            out.append(FewShotExample(kind, {"text": item}))
        else:
            if not isinstance(item, dict) or "prompt" not in item:
                raise ImportFormatError(f"{filename}[{i}] must be an object with a 'prompt'.")
            _require_plain_json(item, f"{filename}[{i}]")
            out.append(FewShotExample(kind, dict(item)))
    return out


def dump_paper_files(content: ConstitutionContent) -> dict[str, str]:
    """The paper's files for this content, as {filename: JSON text}."""
    critiques = {
        p.key: {
            "prompt": [_CRITIQUE_PREFIX + p.critique_request + _CRITIQUE_SUFFIX],
            "edit_request": _REVISION_PREFIX + p.revision_request + _REVISION_SUFFIX,
        }
        for p in content.principles
    }
    choices = [_CHOICE_PREFIX + p.choice_instruction + _CHOICE_SUFFIX for p in content.principles]
    files = {
        PAPER_CRITIQUES: json.dumps(critiques, indent=2, ensure_ascii=False),
        PAPER_CHOICES: json.dumps(choices, indent=2, ensure_ascii=False),
    }
    for filename, kind in PAPER_FEW_SHOT_FILES.items():
        shots = [f.data for f in content.few_shots if f.kind == kind]
        if kind == "critique_revision":
            if any(set(s) != {"text"} for s in shots):
                continue  # structured examples have no paper equivalent; the own format keeps them
            shots = [s["text"] for s in shots]
        if shots:
            files[filename] = json.dumps(shots, indent=2, ensure_ascii=False)
    return files
