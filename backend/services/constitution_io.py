"""Importing and exporting constitution files, and seeding the default constitution."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from backend.access import Action, Principal, require
from backend.cai import formats
from backend.cai.default_constitution import (
    DEFAULT_DESCRIPTION,
    DEFAULT_NAME,
    default_constitution,
)
from backend.errors import ImportFormatError
from backend.services.constitutions import ConstitutionService, VersionDetail

ExportFormat = Literal["yaml", "json", "paper"]
MAX_FILES_PER_IMPORT = 8


@dataclass(frozen=True)
class ExportedFile:
    filename: str
    data: bytes


def _basename(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _slug(name: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip().lower())
    return "-".join(part for part in kept.split("-") if part)[:60] or "constitution"


class ConstitutionIO:
    def __init__(self, constitutions: ConstitutionService, *, max_import_bytes: int) -> None:
        self._constitutions = constitutions
        self._max_bytes = max_import_bytes

    def import_files(self, files: Sequence[tuple[str, bytes]], *, actor: Principal,
                     name: str | None = None) -> VersionDetail:
        """Import one own-format file (.yaml/.yml/.json) or the paper's set of JSON files.

        Everything is parsed and validated before anything is written: a bad file stores nothing.
        """
        require(actor, Action.EDIT_CONSTITUTION)
        if not files:
            raise ImportFormatError("No file given; choose a .yaml/.json constitution or the "
                                    "paper's CritiqueRevisionInstructions.json + "
                                    "RLMadisonInstructions.json.")
        if len(files) > MAX_FILES_PER_IMPORT:
            raise ImportFormatError(f"{len(files)} files given; import at most "
                                    f"{MAX_FILES_PER_IMPORT} at once.")
        texts = {_basename(f): formats.decode_text(raw, _basename(f), self._max_bytes)
                 for f, raw in files}
        source = {f: hashlib.sha256(raw).hexdigest() for f, raw in
                  ((_basename(f), raw) for f, raw in files)}
        if any(formats.is_paper_file(f) for f in texts):
            unknown = [f for f in texts if not formats.is_paper_file(f)]
            if unknown:
                raise ImportFormatError(
                    f"{', '.join(unknown)} is not one of the paper's files; import it separately."
                )
            parsed = formats.parse_paper_files(texts, name or "Constitutional AI paper")
        else:
            if len(texts) != 1:
                raise ImportFormatError("Import one constitution file at a time (or the paper's "
                                        "JSON files together).")
            (filename, text), = texts.items()
            if not filename.lower().endswith((".yaml", ".yml", ".json")):
                raise ImportFormatError(f"{filename}: unknown file type; use .yaml, .yml or "
                                        ".json.")
            parsed = formats.parse_document(text, filename)
        wanted = " ".join((name or parsed.name).split())
        return self._constitutions.create(
            self._constitutions.unique_name(wanted) if not name else wanted,
            parsed.description, parsed.content, actor=actor,
            message=f"Imported from {', '.join(sorted(texts))}", source=source,
        )

    def export(self, version_id: int, fmt: ExportFormat) -> ExportedFile:
        detail = self._constitutions.version(version_id)
        c = detail.constitution
        stem = f"{_slug(c.name)}-v{detail.info.number}"
        if fmt == "yaml":
            text = formats.dump_yaml(c.name, c.description, detail.content)
            return ExportedFile(stem + ".yaml", text.encode("utf-8"))
        if fmt == "json":
            text = formats.dump_json(c.name, c.description, detail.content)
            return ExportedFile(stem + ".json", text.encode("utf-8"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for filename, body in formats.dump_paper_files(detail.content).items():
                zf.writestr(filename, body)
        return ExportedFile(stem + "-paper.zip", buffer.getvalue())

    def paper_files(self, version_id: int) -> dict[str, str]:
        return formats.dump_paper_files(self._constitutions.version(version_id).content)

    def seed_default(self, *, actor: Principal) -> VersionDetail | None:
        """Create the built-in constitution if the store holds none; return it if created."""
        if self._constitutions.list_all():
            return None
        return self._constitutions.create(DEFAULT_NAME, DEFAULT_DESCRIPTION,
                                          default_constitution(), actor=actor,
                                          message="Seeded the studio's default constitution")
