"""``cstudio user add|passwd|role|disable|enable|remove|list``: studio users and their roles.

Passwords are read from a hidden prompt (typed twice) or, with ``--password-stdin``, from the
first line of standard input; never from the command line. Changes are made as
``cli_actor`` (see studio/cli/common.py): the local user while no users exist, then the studio user
named by CSTUDIO_USER, who must be an admin (anyone may change their own password).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backend.access import Role
from backend.errors import ValidationError
from studio.cli.common import DataDir, DbUrl, cli_actor, open_services, out

user_app = typer.Typer(help="Studio users and roles (sign-in is required once one exists).",
                       no_args_is_help=True)

UserName = Annotated[str, typer.Argument(help="User name.")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]
ROLES = ", ".join(r.value for r in Role)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValidationError("--password-stdin: standard input is empty; pipe the "
                                  "password in, e.g. `printf '%s\\n' \"$PW\" | cstudio user "
                                  "add NAME --password-stdin`.")
        return line.rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option(help=f"One of: {ROLES}.")] = "viewer",
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Add a user. The first user must be an admin; from then on the studio requires sign-in."""
    services = open_services(data_dir, database_url)
    actor = cli_actor(services)
    first = not services.users.any_users()
    info = services.users.add(name, role, _password(password_stdin), actor=actor)
    out.print(f"Added {info.name} as {info.role.value}.", markup=False, highlight=False)
    if first:
        out.print("Sign-in is now required: restart a running studio (`cstudio serve`).",
                  markup=False)


@user_app.command("passwd")
def user_passwd(name: UserName, password_stdin: PasswordStdin = False,
                data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Set a user's password (admins: anyone's; everyone: their own)."""
    services = open_services(data_dir, database_url)
    actor = cli_actor(services)
    info = services.users.set_password(name, _password(password_stdin), actor=actor)
    out.print(f"Password of {info.name} changed.", markup=False, highlight=False)


@user_app.command("role")
def user_role(
    name: UserName,
    role: Annotated[str, typer.Argument(help=f"One of: {ROLES}.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Change a user's role (the last admin cannot be demoted)."""
    services = open_services(data_dir, database_url)
    info = services.users.set_role(name, role, actor=cli_actor(services))
    out.print(f"{info.name} is now {info.role.value}.", markup=False, highlight=False)


@user_app.command("disable")
def user_disable(name: UserName, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Stop a user from signing in (their history stays; `enable` undoes it)."""
    _set_disabled(name, True, data_dir, database_url)


@user_app.command("enable")
def user_enable(name: UserName, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(name, False, data_dir, database_url)


def _set_disabled(name: str, disabled: bool, data_dir: Path | None,
                  database_url: str | None) -> None:
    services = open_services(data_dir, database_url)
    info = services.users.set_disabled(name, disabled, actor=cli_actor(services))
    state = "disabled" if disabled else "enabled"
    out.print(f"{info.name} is {state}.", markup=False, highlight=False)


@user_app.command("remove")
def user_remove(name: UserName, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Remove a user (the last admin cannot be removed)."""
    services = open_services(data_dir, database_url)
    info = services.users.remove(name, actor=cli_actor(services))
    out.print(f"Removed {info.name}.", markup=False, highlight=False)


@user_app.command("list")
def user_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List users and their roles."""
    services = open_services(data_dir, database_url)
    users = services.users.list_all()
    if not users:
        out.print("No users: the studio runs for the single local user and binds only to "
                  "127.0.0.1.", markup=False)
        return
    table = Table("name", "role", "status", "added by", "added (UTC)", "changed (UTC)")
    for u in users:
        table.add_row(escape(u.name), u.role.value, "disabled" if u.disabled else "active",
                      escape(u.created_by), u.created_at.strftime("%Y-%m-%d %H:%M"),
                      u.updated_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
