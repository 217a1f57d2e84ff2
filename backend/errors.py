"""Typed errors. Each message says what went wrong and what the user can do about it."""

from __future__ import annotations


class StudioError(Exception):
    """Base class for errors that are shown to the user as a plain message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(StudioError):
    """Input broke a rule; ``problems`` lists each one as 'where: what to fix'."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        full = message if not self.problems else message + "\n" + "\n".join(
            f"- {p}" for p in self.problems
        )
        super().__init__(full)


class ImportFormatError(ValidationError):
    """An imported file is malformed, too large, or of an unknown or unsupported format."""


class NotFoundError(StudioError):
    """The thing asked for does not exist (or no longer does)."""


class ConflictError(StudioError):
    """Someone else saved first: the edit was based on a version that is no longer the head."""


class NoChangesError(StudioError):
    """A save that would create a version identical to the current head."""


class IntegrityError(StudioError):
    """Stored data failed verification (hash chain or content hash mismatch)."""


class EngineError(StudioError):
    """The model engine is misconfigured, unreachable, or answered with something unusable."""


class ChoiceTokenError(EngineError):
    """A choice (such as 'A') is not a single token for this model's tokenizer."""


class PermissionDeniedError(StudioError):
    """The signed-in user's role does not allow this action."""


class FileVersionError(StudioError):
    """A job-directory file (job.json, manifest.json, result.json, metrics.jsonl) was written in
    a format this studio does not read (a newer version, or an unknown one)."""
