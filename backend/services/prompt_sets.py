"""Prompt sets: stored objects imported from files (or the Hub), referenced by id.

* ``PromptSetService`` imports a file (JSON lines ``{"prompt", "tags"}``, HH-RLHF dialogues or
  plain text, optionally gzip'd) with format validation, a size limit and a bounded gzip
  unpacking, and stores it; the project's own set (``backend/data/builtin_prompts.jsonl``,
  red-team and helpful prompts, tagged) is seeded at start and is the default everywhere.
* ``load_first_human_turns`` reads an operator-configured HH-RLHF file
  (CSTUDIO_PROMPT_SET_PATH) for the Playground's demo prompts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backend.access import Action, Principal, require
from backend.cai.pair_formats import first_human_turn
from backend.errors import (
    ConflictError,
    ImportFormatError,
    NotFoundError,
    ValidationError,
)
from backend.services.judging import info_of
from backend.services.naming import free_name
from db import prompt_set_repo as repo
from db.audit_chain import append_event
from db.engine import Database


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


# --- stored prompt sets (issue 13 point 6, issue 14 point 1) ----------------------------------

FORMATS = ("auto", "prompts_jsonl", "hh_rlhf", "text")
MAX_PROMPTS = 100_000
MAX_PROMPT_CHARS = 4_000
GZIP_MAGIC = b"\x1f\x8b"
BUILTIN_FILE = Path(__file__).resolve().parent.parent / "data" / "builtin_prompts.jsonl"


@dataclass(frozen=True)
class PromptSetInfo:
    id: int
    name: str
    source_format: str
    source_name: str
    source_sha256: str
    prompt_count: int
    builtin: bool
    created_by: str
    created_at: datetime

    @property
    def label(self) -> str:
        kind = "built-in" if self.builtin else self.source_format
        return f"#{self.id} {self.name} ({self.prompt_count} prompts, {kind})"


def decompressed(raw: bytes, source: str, limit: int) -> bytes:
    """``raw`` itself, or its gzip content read in chunks and refused past ``limit`` bytes
    (a gzip bomb stops after ``limit`` bytes of output, never filling memory)."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            while chunk := fh.read(1 << 16):
                out += chunk
                if len(out) > limit:
                    raise ImportFormatError(
                        f"{source} unpacks to more than {limit:,} bytes; refused (the import "
                        "limit applies to the unpacked file). Import a smaller part.")
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{source} is not a valid gzip file ({exc}).") from exc
    return bytes(out)


def parse_prompts(raw: bytes, source: str, fmt: str, *, limit: int
                  ) -> tuple[str, list[tuple[str, list[str]]]]:
    """(format used, [(prompt, tags)]) from a prompt-set file; refuses a wrong format with the
    line that does not fit."""
    if fmt not in FORMATS:
        raise ImportFormatError(f"Unknown prompt-set format {fmt!r}; use one of: "
                                + ", ".join(FORMATS) + ".")
    data = decompressed(raw, source, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{source} is not UTF-8 text (byte {exc.start}); a prompt set "
                                "is JSON lines or plain text.") from exc
    if "\x00" in text:
        raise ImportFormatError(f"{source} holds NUL bytes: not a text file.")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ImportFormatError(f"{source} is empty.")
    if fmt == "auto":
        fmt = _detect(lines[0][1])
    out: dict[str, list[str]] = {}
    for n, line in lines:
        prompt, tags = _parse_line(line, fmt, source, n)
        if prompt and len(prompt) <= MAX_PROMPT_CHARS and prompt not in out:
            out[prompt] = tags
            if len(out) > MAX_PROMPTS:
                raise ImportFormatError(f"{source} has more than {MAX_PROMPTS:,} prompts; "
                                        "import a part of it.")
    if not out:
        raise ImportFormatError(f"{source} holds no usable prompts (each at most "
                                f"{MAX_PROMPT_CHARS:,} characters).")
    return fmt, list(out.items())


def _stem(source: str) -> str:
    stem = source
    for suffix in (".gz", ".jsonl", ".json", ".txt"):
        stem = stem.removesuffix(suffix)
    return stem or "prompts"


def _detect(first: str) -> str:
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return "text"
    if isinstance(row, dict) and "chosen" in row and "prompt" not in row:
        return "hh_rlhf"
    return "prompts_jsonl"


def _parse_line(line: str, fmt: str, source: str, n: int) -> tuple[str | None, list[str]]:
    if fmt == "text":
        return line.strip(), []
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        raise ImportFormatError(f"{source} line {n} is not JSON (format {fmt}); use format "
                                "'text' for one prompt per line.") from None
    if not isinstance(row, dict):
        raise ImportFormatError(f"{source} line {n} is not a JSON object.")
    if fmt == "hh_rlhf":
        chosen = row.get("chosen")
        if not isinstance(chosen, str):
            raise ImportFormatError(f"{source} line {n} has no 'chosen' dialogue (format "
                                    "hh_rlhf).")
        return first_human_turn(chosen), []
    prompt = row.get("prompt")
    tags = row.get("tags", [])
    if not isinstance(prompt, str):
        raise ImportFormatError(f"{source} line {n} has no 'prompt' string (format "
                                "prompts_jsonl: {\"prompt\": \"...\", \"tags\": [...]}).")
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 40
                                             for t in tags):
        raise ImportFormatError(f"{source} line {n}: 'tags' must be a list of short strings.")
    return prompt.strip() or None, tags[:20]


class PromptSetService:
    """Prompt sets are stored objects: imported (upload, CLI, the Hub) with format validation
    and size limits, then referenced by id (job configs, the Playground)."""

    def __init__(self, db: Database, *, max_import_bytes: int) -> None:
        self._db = db
        self._max_bytes = max_import_bytes

    @staticmethod
    def _may_import(actor: Principal) -> None:
        require(actor, Action.LAUNCH_JOB)  # prompt sets feed training jobs

    def import_bytes(self, filename: str, raw: bytes, *, actor: Principal, fmt: str = "auto",
                     name: str | None = None) -> PromptSetInfo:
        self._may_import(actor)
        source = filename.replace("\\", "/").rsplit("/", 1)[-1] or "upload"
        if len(raw) > self._max_bytes:
            raise ImportFormatError(f"{source} is {len(raw):,} bytes; the import limit is "
                                    f"{self._max_bytes:,} bytes (CSTUDIO_MAX_DATASET_BYTES).")
        used, prompts = parse_prompts(raw, source, fmt, limit=self._max_bytes)
        return self._store(name or self._free(_stem(source)), used, source,
                           hashlib.sha256(raw).hexdigest(), prompts, actor.name)

    def _free(self, wanted: str) -> str:
        with self._db.read() as s:
            return free_name(wanted, lambda n: repo.by_name(s, name=n) is not None, 200)

    def import_hub(self, *, actor: Principal, repo_id: str = "Anthropic/hh-rlhf",
                   data_dir: str | None = "harmless-base", split: str = "test",
                   limit: int = 2000, name: str | None = None) -> PromptSetInfo:
        """First human turns of an HH-RLHF-style Hub dataset (needs network and the train
        extra)."""
        self._may_import(actor)
        try:
            from datasets import load_dataset
        except ImportError as exc:
            raise ValidationError("Importing from the Hub needs the train extra: "
                                  "pip install 'constitution-studio[train]'.") from exc
        try:
            rows = load_dataset(repo_id, data_dir=data_dir, split=split)
        except Exception as exc:  # network, missing dataset: one clear line
            raise ValidationError(f"Could not load {repo_id} from the Hub: {exc}. Are you "
                                  "online (HF_HUB_OFFLINE unset)?") from exc
        prompts: dict[str, list[str]] = {}
        for row in rows:
            turn = first_human_turn(str(row.get("chosen", "")))
            if turn and len(turn) <= MAX_PROMPT_CHARS:
                prompts.setdefault(turn, ["hh-rlhf"])
            if len(prompts) >= limit:
                break
        if not prompts:
            raise ImportFormatError(f"{repo_id} gave no prompts (no 'chosen' dialogues).")
        source = f"hf://{repo_id}" + (f"/{data_dir}" if data_dir else "") + f"@{split}"
        digest = hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()
        return self._store(name or self._free(" ".join(x for x in (repo_id, data_dir, split)
                                                           if x)),
                           "hh_rlhf", source, digest, list(prompts.items()), actor.name)

    def seed_builtin(self, *, actor: Principal) -> PromptSetInfo:
        """Store the project's own prompt set once (package data); the default everywhere."""
        with self._db.read() as s:
            row = repo.builtin_set(s)
            if row is not None:
                return info_of(PromptSetInfo, row)
        raw = BUILTIN_FILE.read_bytes()
        _, prompts = parse_prompts(raw, BUILTIN_FILE.name, "prompts_jsonl",
                                      limit=len(raw) + 1)
        return self._store(repo.BUILTIN_NAME, "builtin", f"package:{BUILTIN_FILE.name}",
                           hashlib.sha256(raw).hexdigest(), prompts, actor.name, builtin=True)

    def _store(self, name: str, fmt: str, source: str, sha256: str,
               prompts: list[tuple[str, list[str]]], actor: str, *,
               builtin: bool = False) -> PromptSetInfo:
        name = " ".join(name.split())[:200]
        if not name or any(ord(c) < 32 for c in name):
            raise ValidationError("Give the prompt set a one-line name.")
        with self._db.write() as s:
            if repo.by_name(s, name=name) is not None:
                raise ConflictError(f"A prompt set named {name!r} exists already; pick another "
                                    "name (--name).")
            row = repo.add_set(s, name=name, source_format=fmt, source_name=source,
                               source_sha256=sha256, prompts=prompts, created_by=actor,
                               builtin=builtin)
            append_event(s, actor=actor, action="prompt_set.import", entity_type="prompt_set",
                         entity_id=str(row.id), payload={
                             "name": name, "format": fmt, "source": source[:300],
                             "source_sha256": sha256, "prompts": len(prompts),
                             "builtin": builtin})
            return info_of(PromptSetInfo, row)

    def list_all(self) -> list[PromptSetInfo]:
        with self._db.read() as s:
            return [info_of(PromptSetInfo, r) for r in repo.list_sets(s)]

    def prompts(self, ref: str | int | None = "default", *, limit: int = 1000) -> list[str]:
        with self._db.read() as s:
            row = repo.resolve(s, ref)
            if row is None or row.id is None:
                raise NotFoundError(f"No prompt set {ref!r}; `cstudio prompts list` shows them.")
            return [i.prompt for i in repo.items(s, set_id=row.id, limit=limit)]
