from __future__ import annotations

import pytest

from backend.access import PERMISSIONS, Action, Principal, Role, local_admin, require
from backend.errors import PermissionDeniedError

# The issue's roles, written out again here so a change to backend/access.py shows up as a diff
# against this table rather than silently changing who may do what.
EXPECTED = {
    Role.VIEWER: {Action.READ},
    Role.AUDITOR: {Action.READ, Action.FLAG, Action.EXPORT},
    Role.AUTHOR: {Action.READ, Action.EDIT_CONSTITUTION, Action.RUN_PREVIEW,
                  Action.RUN_EVALUATION, Action.LAUNCH_PIPELINE},
    Role.OPERATOR: {Action.READ, Action.LAUNCH_JOB, Action.CANCEL_JOB, Action.LAUNCH_PIPELINE},
    Role.ADMIN: set(Action),
}


def test_each_role_has_exactly_the_issues_permissions() -> None:
    assert {role: set(actions) for role, actions in PERMISSIONS.items()} == EXPECTED


def test_only_admins_manage_users_or_change_engines() -> None:
    for role in Role:
        allowed = Principal("x", role).can(Action.MANAGE_USERS)
        assert allowed == (role is Role.ADMIN)
        assert Principal("x", role).can(Action.CONFIGURE) == (role is Role.ADMIN)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_require_allows_or_refuses_with_a_message(role: Role, action: Action) -> None:
    actor = Principal("dana", role)
    if action in EXPECTED[role]:
        require(actor, action)
        return
    with pytest.raises(PermissionDeniedError) as info:
        require(actor, action)
    message = str(info.value)
    assert "dana" in message and role.value in message and action.value in message
    assert "Ask an admin" in message


def test_the_local_user_is_an_admin() -> None:
    me = local_admin("me")
    assert me == Principal("me", Role.ADMIN)
    for action in Action:
        require(me, action)
