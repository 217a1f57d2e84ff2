"""Constitution use-cases: create, list, save (versioned, conflict-checked), revert, diff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlmodel import Session

from backend.access import Action, Principal, require
from backend.cai.constitution import (
    MAX_NAME_CHARS,
    ConstitutionContent,
    FewShotExample,
    Principle,
    clean_principle,
    validate_content,
    validate_description,
    validate_message,
    validate_name,
)
from backend.cai.diff import ConstitutionDiff, diff_contents
from backend.errors import ConflictError, NoChangesError, NotFoundError, ValidationError
from backend.services.naming import free_name
from db import constitution_repo as repo
from db.audit_chain import append_event
from db.constitution_models import Constitution, ConstitutionVersion
from db.engine import Database


@dataclass(frozen=True)
class VersionInfo:
    id: int
    constitution_id: int
    number: int
    parent_id: int | None
    content_hash: str
    author: str
    message: str
    created_at: datetime

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class ConstitutionSummary:
    id: int
    name: str
    description: str
    head: VersionInfo


@dataclass(frozen=True)
class VersionDetail:
    constitution: ConstitutionSummary
    info: VersionInfo
    content: ConstitutionContent


def _info(row: ConstitutionVersion) -> VersionInfo:
    assert row.id is not None
    return VersionInfo(row.id, row.constitution_id, row.number, row.parent_id, row.content_hash,
                       row.author, row.message, row.created_at)


def load_content(session: Session, version_id: int) -> ConstitutionContent:
    principles = tuple(
        Principle(r.key, r.title, r.critique_request, r.revision_request, r.choice_instruction,
                  tuple(r.tags), r.enabled)
        for r in repo.version_principles(session, version_id=version_id)
    )
    few_shots = tuple(FewShotExample(r.kind, dict(r.data))
                      for r in repo.version_few_shots(session, version_id=version_id))
    return ConstitutionContent(principles, few_shots)


def _principle_rows(content: ConstitutionContent) -> list[dict[str, object]]:
    return [
        {"key": p.key, "title": p.title, "critique_request": p.critique_request,
         "revision_request": p.revision_request, "choice_instruction": p.choice_instruction,
         "tags": list(p.tags), "enabled": p.enabled}
        for p in content.principles
    ]


def prepare_content(content: ConstitutionContent) -> ConstitutionContent:
    """Normalise and validate; raises ValidationError listing every problem."""
    cleaned = ConstitutionContent(tuple(clean_principle(p) for p in content.principles),
                                  content.few_shots)
    validate_content(cleaned)
    return cleaned


class ConstitutionService:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reading ---------------------------------------------------------------------------

    def _summary(self, session: Session, row: Constitution) -> ConstitutionSummary:
        assert row.id is not None
        head = repo.head_version(session, constitution_id=row.id)
        if head is None:
            raise NotFoundError(f"Constitution {row.name!r} has no saved version.")
        return ConstitutionSummary(row.id, row.name, row.description, _info(head))

    def list_all(self) -> list[ConstitutionSummary]:
        with self._db.read() as s:
            return [self._summary(s, row) for row in repo.list_constitutions(s)]

    def get(self, constitution_id: int) -> ConstitutionSummary:
        with self._db.read() as s:
            row = repo.get_constitution(s, constitution_id=constitution_id)
            if row is None:
                raise NotFoundError(f"No constitution with id {constitution_id}; pick one from "
                                    "the list.")
            return self._summary(s, row)

    def find(self, ref: str) -> ConstitutionSummary:
        """By exact name, or by numeric id."""
        with self._db.read() as s:
            row = repo.find_constitution(s, name=ref)
            if row is None and ref.isdigit():
                row = repo.get_constitution(s, constitution_id=int(ref))
            if row is None:
                raise NotFoundError(f"No constitution named {ref!r}; `cstudio constitution list` "
                                    "shows the names.")
            return self._summary(s, row)

    def version(self, version_id: int) -> VersionDetail:
        with self._db.read() as s:
            row = repo.get_version(s, version_id=version_id)
            if row is None:
                raise NotFoundError(f"No constitution version with id {version_id}.")
            owner = repo.get_constitution(s, constitution_id=row.constitution_id)
            assert owner is not None
            return VersionDetail(self._summary(s, owner), _info(row), load_content(s, version_id))

    def version_by_number(self, constitution_id: int, number: int) -> VersionDetail:
        with self._db.read() as s:
            row = repo.get_version_by_number(s, constitution_id=constitution_id, number=number)
        if row is None or row.id is None:
            raise NotFoundError(f"This constitution has no version {number}.")
        return self.version(row.id)

    def head(self, constitution_id: int) -> VersionDetail:
        return self.version(self.get(constitution_id).head.id)

    def history(self, constitution_id: int, *, limit: int = 50, offset: int = 0
                ) -> list[VersionInfo]:
        with self._db.read() as s:
            rows = repo.list_versions(s, constitution_id=constitution_id, limit=limit,
                                      offset=offset)
            return [_info(r) for r in rows]

    def diff(self, old_version_id: int, new_version_id: int) -> ConstitutionDiff:
        return diff_contents(self.version(old_version_id).content,
                             self.version(new_version_id).content)

    def validate(self, content: ConstitutionContent) -> list[str]:
        try:
            prepare_content(content)
        except ValidationError as exc:
            return exc.problems or [exc.message]
        return []

    # --- writing ---------------------------------------------------------------------------

    def unique_name(self, wanted: str) -> str:
        """``wanted``, or ``wanted (2)``, ``(3)``… if taken; shortened to fit the name limit."""
        with self._db.read() as s:
            return free_name(wanted, lambda n: repo.find_constitution(s, name=n) is not None,
                             MAX_NAME_CHARS)

    def create(self, name: str, description: str, content: ConstitutionContent, *,
               actor: Principal, message: str = "Created", source: dict[str, str] | None = None
               ) -> VersionDetail:
        require(actor, Action.EDIT_CONSTITUTION)
        name = " ".join(name.split())
        validate_name(name)
        validate_description(description)
        validate_message(message)
        content = prepare_content(content)
        with self._db.write() as s:
            if repo.find_constitution(s, name=name) is not None:
                raise ValidationError(f"A constitution named {name!r} already exists; choose "
                                      "another name.")
            row = repo.create_constitution(s, name=name, description=description,
                                           created_by=actor.name)
            assert row.id is not None
            version = self._insert(s, row.id, 1, None, content, actor.name, message)
            append_event(s, actor=actor.name, action="constitution.create",
                         entity_type="constitution",
                         entity_id=str(row.id),
                         payload={"name": name, "version_id": version.id, "number": 1,
                                  "content_hash": version.content_hash, "message": message,
                                  "source": source or {}})
            version_id = version.id
        assert version_id is not None
        return self.version(version_id)

    def save(self, constitution_id: int, base_version_id: int, content: ConstitutionContent,
             message: str, *, actor: Principal, action: str = "constitution.save",
             extra: dict[str, object] | None = None) -> VersionDetail:
        """Save ``content`` as the next version, if ``base_version_id`` is still the head."""
        require(actor, Action.EDIT_CONSTITUTION)
        validate_message(message)
        content = prepare_content(content)
        try:
            with self._db.write() as s:
                head = repo.head_version(s, constitution_id=constitution_id)
                if head is None:
                    raise NotFoundError(f"No constitution with id {constitution_id}.")
                if head.id != base_version_id:
                    raise self._conflict(s, base_version_id, head)
                if head.content_hash == content.content_hash():
                    raise NoChangesError(f"Nothing to save: the content is identical to "
                                         f"v{head.number}.")
                version = self._insert(s, constitution_id, head.number + 1, head.id, content,
                                       actor.name, message)
                append_event(s, actor=actor.name, action=action, entity_type="constitution",
                             entity_id=str(constitution_id),
                             payload={"version_id": version.id, "number": version.number,
                                      "parent_id": head.id, "content_hash": version.content_hash,
                                      "message": message, **(extra or {})})
                version_id = version.id
        except SAIntegrityError as exc:  # another writer took this number between our reads
            raise ConflictError(
                "Someone saved this constitution at the same moment; nothing was overwritten. "
                "Reload the latest version and save again.") from exc
        assert version_id is not None
        return self.version(version_id)

    def revert(self, constitution_id: int, target_version_id: int, base_version_id: int, *,
               actor: Principal, message: str = "") -> VersionDetail:
        require(actor, Action.EDIT_CONSTITUTION)
        target = self.version(target_version_id)
        if target.info.constitution_id != constitution_id:
            raise ValidationError("That version belongs to another constitution.")
        text = message.strip() or f"Revert to v{target.info.number}"
        return self.save(constitution_id, base_version_id, target.content, text, actor=actor,
                         action="constitution.revert",
                         extra={"reverted_to": target.info.id})

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _insert(s: Session, constitution_id: int, number: int, parent_id: int | None,
                content: ConstitutionContent, actor: str, message: str) -> ConstitutionVersion:
        return repo.insert_version(
            s, constitution_id=constitution_id, number=number, parent_id=parent_id,
            content_hash=content.content_hash(), author=actor, message=message,
            principles=_principle_rows(content),
            few_shots=[{"kind": f.kind, "data": f.data} for f in content.few_shots],
        )

    @staticmethod
    def _conflict(s: Session, base_version_id: int, head: ConstitutionVersion) -> ConflictError:
        base = repo.get_version(s, version_id=base_version_id)
        base_label = f"v{base.number}" if base else f"version id {base_version_id}"
        when = head.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return ConflictError(
            f"Conflict: your edit is based on {base_label}, but {head.author} saved "
            f"v{head.number} at {when} ({head.message!r}). Nothing was overwritten and your "
            "edits are still in the editor: open the latest version, re-apply them, and save."
        )

