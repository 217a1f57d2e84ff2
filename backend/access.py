"""Who may do what. Services call ``require(actor, Action.X)`` before every write, so the UI,
the Gradio API and the CLI all obey the same rules (hiding a button is never the check)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backend.errors import PermissionDeniedError


class Role(StrEnum):
    VIEWER = "viewer"
    AUDITOR = "auditor"
    AUTHOR = "author"
    OPERATOR = "operator"
    ADMIN = "admin"


class Action(StrEnum):
    READ = "read"
    FLAG = "flag"  # flag records, add comments
    EXPORT = "export"  # evidence export
    EDIT_CONSTITUTION = "edit constitutions"
    RUN_PREVIEW = "run previews"  # playground critiques and verdicts
    RUN_EVALUATION = "run evaluations"  # datasets, evaluations, golden cases
    LAUNCH_JOB = "launch jobs"
    LAUNCH_PIPELINE = "launch pipelines"  # a chain of jobs ending in a comparison (issue 17)
    CANCEL_JOB = "cancel jobs"
    CONFIGURE = "change engine settings"
    MANAGE_USERS = "manage users"
    BACKUP = "back up and restore the store"  # admin only (a backup holds everything)


_AUDITOR = frozenset({Action.READ, Action.FLAG, Action.EXPORT})
_AUTHOR = frozenset({Action.READ, Action.EDIT_CONSTITUTION, Action.RUN_PREVIEW,
                     Action.RUN_EVALUATION, Action.LAUNCH_PIPELINE})
_OPERATOR = frozenset({Action.READ, Action.LAUNCH_JOB, Action.CANCEL_JOB,
                       Action.LAUNCH_PIPELINE})

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.AUDITOR: _AUDITOR,
    Role.AUTHOR: _AUTHOR,
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: frozenset(Action),
}


@dataclass(frozen=True)
class Principal:
    """The user an action is done for; ``name`` is what the store records as the actor."""

    name: str
    role: Role

    def can(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]


def local_admin(name: str) -> Principal:
    """The single local user of a studio with no users configured (bound to 127.0.0.1 only)."""
    return Principal(name=name, role=Role.ADMIN)


def require(actor: Principal, action: Action) -> None:
    """Raise PermissionDeniedError unless ``actor`` may do ``action``."""
    if not actor.can(action):
        raise PermissionDeniedError(
            f"Not allowed: {actor.name} has the role {actor.role.value}, which may not "
            f"{action.value}. Ask an admin for a role that allows it."
        )
