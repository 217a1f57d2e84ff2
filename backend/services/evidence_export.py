"""Evidence export: a filtered selection of the critique log as JSONL and CSV, streamed in
constant memory (keyset pages), with a manifest (query, counts, time, constitution versions,
sha256 of each file, the audit hash-chain and seal-chain heads), and its verification against
the database."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from backend.access import Action, Principal, require
from backend.errors import NotFoundError, ValidationError
from backend.services.audit_search import filter_problem
from db import audit_annotations_repo as notes_repo
from db import audit_search_repo as repo
from db.anchor import Anchor
from db.audit_chain import append_event, canonical_json
from db.audit_models import FLAG, AuditEvent
from db.audit_search_repo import SearchFilters
from db.base_models import utcnow
from db.constitution_models import Constitution, ConstitutionVersion
from db.critique_log_models import CritiqueLogRecord
from db.critique_log_repo import HASHED_FIELDS, record_hash, records_by_ids
from db.engine import Database
from db.record_seal import head as seal_head

MANIFEST = "manifest.json"
RECORDS_JSONL = "records.jsonl"
RECORDS_CSV = "records.csv"
SCHEMA = "cstudio-evidence/1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
CSV_COLUMNS = ["id", "created_at", *HASHED_FIELDS, "record_hash", "flagged", "comments"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_name(name: str) -> str:
    """An export or download name: letters, digits, '.', '_' and '-', starting with a letter
    or digit, at most 100 characters; anything naming another folder is refused."""
    name = name.strip()
    if not _NAME.fullmatch(name) or ".." in name:
        raise ValidationError(f"{name[:120]!r} is not a valid export name: use letters, digits, "
                              "'.', '_' and '-' only (no folders, no '..'), at most 100 "
                              "characters, starting with a letter or digit.")
    return name


def inside(base: Path, name: str) -> Path:
    """``base/name``, refusing anything that resolves outside ``base``."""
    root = base.resolve()
    path = (root / safe_name(name)).resolve()
    if path.parent != root:
        raise ValidationError(f"{name!r} points outside the exports folder; refused.")
    return path


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = canonical_json(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a spreadsheet would run it as a formula; JSONL keeps it exact
    return value


class _HashingWriter:
    """A text file that hashes what is written to it (so files are hashed while streamed)."""

    def __init__(self, path: Path) -> None:
        self._f: IO[bytes] = path.open("wb")
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self._f.write(data)
        self.sha.update(data)
        self.bytes += len(data)
        return len(text)

    def close(self) -> None:
        self._f.close()


def record_json(row: CritiqueLogRecord, flagged: bool, comments: list[dict[str, str]]
                ) -> dict[str, Any]:
    data: dict[str, Any] = {"id": row.id,
                            "created_at": row.created_at.isoformat(timespec="microseconds")}
    data.update({name: getattr(row, name) for name in HASHED_FIELDS})
    data.update(record_hash=row.record_hash, flagged=flagged, comments=comments)
    return data


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    archive: Path
    manifest: dict[str, Any]

    @property
    def count(self) -> int:
        return int(self.manifest["counts"]["records"])


@dataclass
class ExportCheck:
    ok: bool = True
    records_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


class EvidenceExportService:
    def __init__(self, db: Database, exports_dir: Path, anchor: Anchor | None = None) -> None:
        self._db = db
        self.exports_dir = exports_dir
        self._anchor = anchor

    def export(self, filters: SearchFilters, *, actor: Principal, name: str | None = None,
               directory: Path | None = None, batch: int = 1000) -> ExportResult:
        """Write the selection to ``exports_dir/name`` (or an explicit ``directory``, for the
        CLI) and a zip of it beside; refuses names that leave the exports folder."""
        require(actor, Action.EXPORT)
        problem = filter_problem(filters)
        if problem:
            raise ValidationError(problem)
        stamp = utcnow()
        if directory is None:  # check the name before creating anything
            directory = inside(self.exports_dir, name or f"evidence-{stamp:%Y%m%d-%H%M%S-%f}")
        if directory.exists() and any(directory.iterdir()):
            raise ValidationError(f"{directory} already exists and is not empty; choose another "
                                  "name.")
        directory.mkdir(parents=True, exist_ok=True)
        jsonl, csv_out = (_HashingWriter(directory / RECORDS_JSONL),
                          _HashingWriter(directory / RECORDS_CSV))
        writer = csv.writer(csv_out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        kinds: Counter[str] = Counter()
        version_ids: set[int] = set()
        flagged_count = 0
        try:
            with self._db.read() as s:
                events: Any = AuditEvent.__table__  # type: ignore[attr-defined]
                last_event = s.execute(select(events.c.id, events.c.hash).order_by(
                    events.c.id.desc()).limit(1)).first()
                seals = seal_head(s)
                for page in repo.iter_matches(s, filters=filters, batch=batch):
                    ids = [r.id for r in page if r.id is not None]
                    flags = notes_repo.flag_state(s, record_ids=ids)
                    notes = notes_repo.comments_for(s, record_ids=ids)
                    for row in page:
                        flagged = getattr(flags.get(row.id or 0), "action", None) == FLAG
                        comments = [{"actor": c.actor, "body": c.body,
                                     "created_at": c.created_at.isoformat()}
                                    for c in notes.get(row.id or 0, [])]
                        data = record_json(row, flagged, comments)
                        jsonl.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
                        writer.writerow([_csv_cell(data[c]) if c != "comments" else len(comments)
                                         for c in CSV_COLUMNS])
                        kinds[row.kind] += 1
                        flagged_count += flagged
                        if row.constitution_version_id is not None:
                            version_ids.add(row.constitution_version_id)
                versions = _versions(s, version_ids)
        finally:
            jsonl.close()
            csv_out.close()
        manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "created_at": stamp.isoformat(timespec="microseconds"),
            "created_by": actor.name,
            "database": self._db.dialect,
            "query": filters.query,
            "filters": filters.as_dict(),
            "counts": {"records": sum(kinds.values()), "by_kind": dict(sorted(kinds.items())),
                       "flagged": flagged_count},
            "constitution_versions": versions,
            "files": {RECORDS_JSONL: {"sha256": jsonl.sha.hexdigest(), "bytes": jsonl.bytes},
                      RECORDS_CSV: {"sha256": csv_out.sha.hexdigest(), "bytes": csv_out.bytes}},
            "audit_chain_head": {"event_id": last_event[0] if last_event else None,
                                 "hash": last_event[1] if last_event else None},
            "seal_chain_head": seals,
            # the newest head anchored outside the database, with its MAC (db/anchor.py)
            "anchor": self._anchor.latest() if self._anchor is not None else None,
        }
        body = json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        (directory / MANIFEST).write_text(body, encoding="utf-8")
        archive = directory.with_name(directory.name + ".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for fname in (MANIFEST, RECORDS_JSONL, RECORDS_CSV):
                z.write(directory / fname, arcname=f"{directory.name}/{fname}")
        with self._db.write() as s:
            append_event(s, actor=actor.name, action="audit.export", entity_type="evidence",
                         entity_id=directory.name[:120],
                         payload={"manifest_sha256": hashlib.sha256(body.encode()).hexdigest(),
                                  "records": manifest["counts"]["records"],
                                  "filters": manifest["filters"]})
        return ExportResult(directory, archive, manifest)

    def archive_path(self, name: str) -> Path:
        """The zip of an earlier export, by name (for downloads); traversal is refused."""
        path = inside(self.exports_dir, safe_name(name).removesuffix(".zip") + ".zip")
        if not path.is_file():
            raise NotFoundError(f"No export named {name!r}.")
        return path

    def verify(self, directory: Path, *, batch: int = 1000) -> ExportCheck:
        """Check each file against the manifest's sha256, and every exported record against
        the database (same stored hash, and the exported fields still give that hash)."""
        check = ExportCheck()
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            files = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            check.fail(f"{directory / MANIFEST}: cannot read the manifest ({exc}).")
            return check
        for fname in (RECORDS_JSONL, RECORDS_CSV):
            entry = files.get(fname) if isinstance(files, dict) else None
            path = directory / fname
            if not isinstance(entry, dict) or not path.is_file():
                check.fail(f"{fname}: missing from the export or from its manifest.")
            elif _file_sha256(path) != entry.get("sha256"):
                check.fail(f"{fname}: its sha256 differs from the manifest (the file was "
                           "altered).")
        if check.ok:
            self._verify_records(directory / RECORDS_JSONL, manifest, check, batch)
        return check

    def _verify_records(self, path: Path, manifest: dict[str, Any], check: ExportCheck,
                        batch: int) -> None:
        with self._db.read() as s, path.open(encoding="utf-8") as f:
            head = manifest.get("audit_chain_head") or {}
            if head.get("event_id") is not None:
                event = s.get(AuditEvent, head["event_id"])
                if event is None or event.hash != head.get("hash"):
                    check.fail(f"audit_event id {head['event_id']}: the chain head recorded in "
                               "the manifest is no longer in the database's chain.")
            pending: list[dict[str, Any]] = []
            for line_no, line in enumerate(f, start=1):
                pending.append({"line": line_no, **json.loads(line)})
                if len(pending) >= batch:
                    self._check_batch(s, pending, check)
                    pending = []
            self._check_batch(s, pending, check)
        expected = manifest.get("counts", {}).get("records")
        if expected != check.records_checked:
            check.fail(f"{RECORDS_JSONL}: {check.records_checked} records, the manifest says "
                       f"{expected}.")

    @staticmethod
    def _check_batch(s: Any, items: list[dict[str, Any]], check: ExportCheck) -> None:
        if not items:
            return
        stored = records_by_ids(s, ids=[int(d["id"]) for d in items])
        for d in items:
            check.records_checked += 1
            row = stored.get(d["id"])
            where = f"{RECORDS_JSONL} line {d['line']} (critique_log id {d['id']})"
            if row is None:
                check.fail(f"{where}: the record is not in the database.")
                continue
            exported = CritiqueLogRecord(
                created_at=datetime.fromisoformat(d["created_at"]), record_hash="",
                **{k: d[k] for k in HASHED_FIELDS})
            if record_hash(exported) != d["record_hash"]:
                check.fail(f"{where}: its fields do not give its record_hash (the exported "
                           "record was altered).")
            elif row.record_hash != d["record_hash"] or record_hash(row) != row.record_hash:
                check.fail(f"{where}: the database's record differs from the export.")
        s.expunge_all()


def _versions(s: Any, version_ids: set[int]) -> list[dict[str, Any]]:
    if not version_ids:
        return []
    v_table: Any = ConstitutionVersion.__table__  # type: ignore[attr-defined]
    c_table: Any = Constitution.__table__  # type: ignore[attr-defined]
    rows = s.execute(select(v_table.c.id, c_table.c.name, v_table.c.number,
                            v_table.c.content_hash).join(
        c_table, c_table.c.id == v_table.c.constitution_id).where(
        v_table.c.id.in_(sorted(version_ids))).order_by(v_table.c.id)).all()
    return [{"version_id": r[0], "constitution": r[1], "number": r[2], "content_hash": r[3]}
            for r in rows]


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


