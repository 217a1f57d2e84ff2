"""Human-labelled pair datasets: import (files or the Hub), list, browse, sample.

An import parses and validates the whole source before it writes anything, then stores the
dataset, its items and a ``dataset.import`` audit event in one transaction: a bad file stores
nothing. Each item's sides are randomised: a seeded RNG per item (from the swap seed and the
pair's own hash, so the choice does not depend on the item's position) decides whether the
preferred response is shown as A or B; ``swapped`` and ``human_label`` record the outcome.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlmodel import Session

from backend.access import Action, Principal, require
from backend.cai import pair_formats as pf
from backend.cai.constitution import canonical_json, text_problem
from backend.cai.critique_loop import clean_text
from backend.errors import ImportFormatError, NotFoundError, ValidationError
from backend.services.naming import free_name
from db import dataset_repo as repo
from db.audit_chain import append_event
from db.dataset_models import PairDataset, PairItemRow
from db.engine import Database

DEFAULT_MAX_DATASET_BYTES = pf.DEFAULT_MAX_BYTES  # 200 MB
MAX_NAME_CHARS = 200
MAX_PAGE = 1000
_SOURCE_FORMATS = {"jsonl": "generic_jsonl", "csv": "generic_csv"}


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    source_format: str
    source_name: str
    source_sha256: str
    item_count: int
    skipped_duplicates: int
    swap_seed: int
    created_by: str
    created_at: datetime
    skipped: dict[str, int] = field(default_factory=dict)  # other rows left out, by reason
    # set by an import only: earlier datasets from the same bytes (same sha256), (id, name)
    same_source_as: tuple[tuple[int, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class DatasetItem:
    id: int
    dataset_id: int
    position: int
    prompt: str
    response_a: str
    response_b: str
    human_label: float  # 1.0: humans preferred A, 0.0: B, 0.5: a tie
    swapped: bool  # the source's preferred response is shown as B
    meta: dict[str, Any]
    content_hash: str


def _info(row: PairDataset, skipped: Mapping[str, int] | None = None) -> DatasetInfo:
    assert row.id is not None
    return DatasetInfo(row.id, row.name, row.source_format, row.source_name, row.source_sha256,
                       row.item_count, row.skipped_duplicates, row.swap_seed, row.created_by,
                       row.created_at, dict(skipped or {}))


def import_report(info: DatasetInfo) -> str:
    """One plain-text line on what an import kept and left out, by reason, and a warning when
    the same file was imported before; for the UI (escaped) and the CLI."""
    left_out = sum(info.skipped.values())
    reasons = ", ".join(f"{n:,} {pf.SKIP_REASONS.get(k, k.replace('_', ' '))}"
                        for k, n in sorted(info.skipped.items(), key=lambda kv: -kv[1]))
    text = f"{info.item_count:,} pairs; {left_out:,} skipped" + (f": {reasons}" if reasons
                                                                  else "")
    text += f"; {info.skipped_duplicates:,} duplicates."
    if info.same_source_as:
        earlier = ", ".join(f"#{i} {name!r}" for i, name in info.same_source_as)
        text += (f" Warning: the same file (sha256 {info.source_sha256[:12]}) was imported "
                 f"before as {earlier}.")
    return text


def _item(row: PairItemRow) -> DatasetItem:
    assert row.id is not None
    return DatasetItem(row.id, row.dataset_id, row.position, row.prompt, row.response_a,
                       row.response_b, row.human_label, row.swapped, dict(row.meta),
                       row.content_hash)


def _sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def is_swapped(swap_seed: int, pair_key: str) -> bool:
    """Whether the preferred response is shown as B: a per-item RNG seeded from both."""
    return random.Random(f"{swap_seed}:{pair_key}").random() < 0.5


def name_from_filename(filename: str) -> str:
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".gz", ".jsonl", ".json", ".csv"):
        stem = stem.removesuffix(ext) if stem.lower().endswith(ext) else stem
    return " ".join(stem.split()) or "Imported pairs"


@dataclass
class _Prepared:
    rows: list[dict[str, Any]]
    duplicates: int
    skipped: dict[str, int]


def prepare_items(pairs: pf.ParsedPairs, source: str, *, swap_seed: int,
                  limit: int | None = None) -> _Prepared:
    """Validate every text (the Playground's rules), drop duplicates and pairs whose two
    responses are identical, randomise the sides. Stops after ``limit`` usable pairs."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    duplicates, identical = 0, 0
    for pair in pairs:
        if limit is not None and len(rows) >= limit:
            break
        where = f"{source} {pairs.unit} {pair.line}"
        try:
            prompt = clean_text(pair.prompt, "prompt")
            preferred = clean_text(pair.preferred, "preferred response")
            other = clean_text(pair.other, "other response")
            meta = {k: clean_text(v, f"meta value {k!r}", allow_empty=True)
                    if isinstance(v, str) else v for k, v in pair.meta.items()}
        except ValidationError as exc:
            raise ImportFormatError(f"{where}: {exc.message}") from exc
        if pair.label not in (0.0, 0.5, 1.0):
            raise ImportFormatError(f"{where}: label {pair.label!r} is not 1, 0 or 0.5.")
        if pair.label == 0.0:
            preferred, other = other, preferred
        if preferred == other:
            identical += 1
            continue
        tie = pair.label == 0.5
        # A tie has no preferred side: (p, x, y, tie) and (p, y, x, tie) are the same pair.
        key = _sha([prompt, *sorted((preferred, other)), 0.5] if tie
                   else [prompt, preferred, other, 1.0])
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        swapped = is_swapped(swap_seed, key)
        a, b = (other, preferred) if swapped else (preferred, other)
        label = 0.5 if tie else (0.0 if swapped else 1.0)
        rows.append({"position": len(rows), "prompt": prompt, "response_a": a, "response_b": b,
                     "human_label": label, "swapped": swapped,
                     "meta": {**meta, f"source_{pairs.unit}": pair.line},
                     "content_hash": _sha([prompt, a, b, label])})
    return _Prepared(rows, duplicates, {**pairs.skipped, "identical_responses": identical})


class DatasetService:
    def __init__(self, db: Database, *, max_import_bytes: int = DEFAULT_MAX_DATASET_BYTES
                 ) -> None:
        self._db = db
        self._max_bytes = max_import_bytes

    # --- import -------------------------------------------------------------------------

    def import_file(self, filename: str, raw: bytes, fmt: str, *, actor: Principal,
                    name: str | None = None,
                    mapping: pf.ColumnMapping | Mapping[str, Any] | None = None,
                    swap_seed: int = 0, limit: int | None = None) -> DatasetInfo:
        """Import one file in ``fmt`` (hh_rlhf, hhh_eval, harmful_vs_ethical, jsonl, csv);
        the generic jsonl/csv formats need ``mapping``. ``name`` None: from the file name."""
        require(actor, Action.RUN_EVALUATION)
        source = filename.replace("\\", "/").rsplit("/", 1)[-1] or "upload"
        if len(raw) > self._max_bytes:
            raise ImportFormatError(f"{source} is {len(raw):,} bytes; the dataset import limit "
                                    f"is {self._max_bytes:,} bytes. Split the file or import "
                                    "a part of it.")
        pairs = pf.parse_file(raw, source, fmt, mapping=mapping, max_bytes=self._max_bytes)
        return self._store(pairs, source, source_name=source,
                           source_format=_SOURCE_FORMATS.get(fmt, fmt),
                           sha256=hashlib.sha256(raw).hexdigest(), actor=actor, name=name,
                           default_name=name_from_filename(source), swap_seed=swap_seed,
                           limit=limit)

    def import_hub(self, repo_id: str, *, actor: Principal, data_dir: str | None = None,
                   split: str = "test", name: str | None = None,
                   mapping: pf.ColumnMapping | Mapping[str, Any] | None = None,
                   swap_seed: int = 0, limit: int | None = None) -> DatasetInfo:
        """Import a Hub dataset (e.g. ``Anthropic/hh-rlhf``, ``data_dir="harmless-base"``);
        needs network access and the train extra."""
        require(actor, Action.RUN_EVALUATION)
        pairs = pf.load_from_hub(repo_id, data_dir, split, limit, mapping=mapping)
        source = f"hf://{repo_id}" + (f"/{data_dir}" if data_dir else "") + f"@{split}"
        title = " ".join(x for x in (repo_id, data_dir, split) if x)
        return self._store(pairs, source, source_name=source[:300],
                           source_format="generic_hub" if mapping else "hh_rlhf",
                           sha256=pairs.source_sha256 or "", actor=actor, name=name,
                           default_name=title, swap_seed=swap_seed, limit=limit)

    def _store(self, pairs: pf.ParsedPairs, source: str, *, source_name: str,
               source_format: str, sha256: str, actor: Principal, name: str | None,
               default_name: str, swap_seed: int, limit: int | None) -> DatasetInfo:
        if limit is not None and limit < 1:
            raise ValidationError("limit must be at least 1 (or empty for all pairs).")
        wanted = _valid_name(name if name is not None else default_name[:MAX_NAME_CHARS])
        prepared = prepare_items(pairs, source, swap_seed=swap_seed, limit=limit)
        skipped = {k: v for k, v in prepared.skipped.items() if v}
        if not prepared.rows:
            why = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items())
            raise ImportFormatError(f"{source} holds no usable pairs" +
                                    (f" (skipped: {why})." if why else "."))
        try:
            with self._db.write() as s:
                final = wanted if name is not None else _unique_name(s, wanted)
                if repo.find_dataset(s, name=final) is not None:
                    raise ValidationError(f"A dataset named {final!r} already exists; choose "
                                          "another name.")
                row = repo.create_dataset(
                    s, name=final, source_format=source_format, source_name=source_name,
                    source_sha256=sha256, item_count=len(prepared.rows),
                    skipped_duplicates=prepared.duplicates, swap_seed=swap_seed,
                    created_by=actor.name)
                assert row.id is not None
                earlier = tuple((d.id, d.name) for d in
                                repo.datasets_with_sha256(s, sha256=sha256)
                                if d.id is not None and d.id != row.id) if sha256 else ()
                repo.insert_items(s, dataset_id=row.id, rows=prepared.rows)
                append_event(s, actor=actor.name, action="dataset.import",
                             entity_type="pair_dataset",
                             entity_id=str(row.id),
                             payload={"name": final, "format": source_format,
                                      "source": source_name, "sha256": sha256,
                                      "swap_seed": swap_seed, "limit": limit,
                                      "counts": {"items": len(prepared.rows),
                                                 "duplicates": prepared.duplicates,
                                                 "swapped": sum(r["swapped"]
                                                                for r in prepared.rows),
                                                 **skipped}})
        except SAIntegrityError as exc:  # PostgreSQL: another import took the name just now
            raise ValidationError(f"A dataset named {wanted!r} was created at the same moment; "
                                  "import again.") from exc
        return replace(_info(row, skipped), same_source_as=earlier)

    # --- reading ------------------------------------------------------------------------

    def list_all(self) -> list[DatasetInfo]:
        with self._db.read() as s:
            rows = repo.list_datasets(s, limit=10_000)
            payloads = repo.import_payloads(s, dataset_ids=[r.id for r in rows if r.id])
        return [_info(r, _skips(payloads.get(r.id or 0))) for r in rows]

    def get(self, dataset_id: int) -> DatasetInfo:
        with self._db.read() as s:
            row = repo.get_dataset(s, dataset_id=dataset_id)
            if row is None:
                raise NotFoundError(f"No dataset with id {dataset_id}.")
            payload = repo.import_payloads(s, dataset_ids=[dataset_id]).get(dataset_id)
        return _info(row, _skips(payload))

    def find(self, name: str) -> DatasetInfo | None:
        with self._db.read() as s:
            row = repo.find_dataset(s, name=name)
        return None if row is None else self.get(row.id or 0)

    def items(self, dataset_id: int, limit: int = 50, offset: int = 0
              ) -> list[DatasetItem]:
        """One page of items in dataset order (at most MAX_PAGE)."""
        self.get(dataset_id)
        with self._db.read() as s:
            rows = repo.dataset_items(s, dataset_id=dataset_id, limit=max(0, min(limit, MAX_PAGE)),
                                      offset=max(0, offset))
        return [_item(r) for r in rows]

    def items_by_ids(self, ids: Sequence[int]) -> list[DatasetItem]:
        with self._db.read() as s:
            return [_item(r) for r in repo.items_by_ids(s, ids=ids)]

    def sample(self, dataset_id: int, n: int, seed: int = 0) -> list[int]:
        """Ids of ``n`` items drawn with ``seed`` (all if the dataset is smaller), in order."""
        if n < 1:
            raise ValidationError("The sample size must be at least 1.")
        self.get(dataset_id)
        with self._db.read() as s:
            return repo.sample_item_ids(s, dataset_id=dataset_id, n=n, seed=seed)


def _skips(payload: Mapping[str, Any] | None) -> dict[str, int]:
    counts = (payload or {}).get("counts") or {}
    return {k: int(v) for k, v in counts.items()
            if k not in ("items", "duplicates", "swapped") and isinstance(v, int) and v}


def _valid_name(name: str) -> str:
    name = " ".join(name.split())
    problem = text_problem(name, multiline=False)
    if not name or len(name) > MAX_NAME_CHARS or problem:
        raise ValidationError(f"A dataset name must be 1–{MAX_NAME_CHARS} characters of text"
                              + (f"; it {problem}." if problem else "."))
    return name


def _unique_name(session: Session, wanted: str) -> str:
    """``wanted``, or ``wanted (2)``, ``(3)``… if taken (inside the write transaction)."""
    return free_name(wanted, lambda n: repo.find_dataset(session, name=n) is not None,
                     MAX_NAME_CHARS)
