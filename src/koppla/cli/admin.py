"""`koppla admin ...`: the people who sign in to the admin pages."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from koppla.cli.common import HomeOption, OrgOption, catalog, console, fail, run, settings
from koppla.core.layout import Layout
from koppla.platform.catalog.models import check_org_id
from koppla.platform.catalog.users import MIN_PASSWORD_LENGTH, UserStore
from koppla.web.listening import find


def group() -> typer.Typer:
    """The `koppla admin` commands."""
    app = typer.Typer(no_args_is_help=True, help="People who sign in to the admin pages.")
    app.command("create-user")(create_user)
    return app


def create_user(
    email: Annotated[str, typer.Argument(help="The person's email: their sign-in name.")],
    home: HomeOption = None,
    org: OrgOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from standard input instead of asking for it (hidden, twice).",
        ),
    ] = False,
) -> None:
    """Add a person who may sign in to the admin pages (the password is never an argument)."""
    if org is not None:
        run(lambda: check_org_id(org))
    password = _read_password() if password_stdin else _ask_password()
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", 2)
    loaded = settings(home)
    opened = catalog(loaded)
    try:
        org_id = org or opened.default_org()
    finally:
        opened.close()
    users = UserStore(Layout(loaded.home).catalog)
    try:
        user = run(lambda: users.create_user(email, password, org_id=org_id))
    finally:
        users.close()
    running = find(loaded.home)
    where = f"{running.url}/admin/login" if running else "/admin/login once koppla up runs"
    console.print(
        f"user {user.email} created for organization {user.org_id}; sign in at {where}",
        markup=False,
        highlight=False,
    )


def _read_password() -> str:
    """The password on standard input: its first line, without the line break."""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def _ask_password() -> str:
    """The password typed at a hidden prompt, confirmed."""
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password
