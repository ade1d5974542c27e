"""`koppla admin create-user`: a person who may sign in; the password never an argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from koppla.core.layout import Layout
from koppla.platform.catalog.users import SignInRefused, UserStore
from tests.cli.conftest import Koppla

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"
PASSWORD = "correct horse battery"


def _sign_in(home: Path, email: str, password: str) -> str:
    users = UserStore(Layout(home).catalog)
    try:
        return users.sign_in(email, password).org_id
    finally:
        users.close()


def test_a_password_from_stdin(koppla: Koppla, home: Path) -> None:
    result = koppla("admin", "create-user", "ann@example.com", "--password-stdin", input=PASSWORD)
    assert result.exit_code == 0, result.output
    assert "user ann@example.com created" in result.stdout
    assert PASSWORD not in result.output
    assert _sign_in(home, "ann@example.com", PASSWORD) == "KOPPLADEMO00000000000000@AdobeOrg"


def test_only_the_first_line_of_stdin_and_without_its_line_break(
    koppla: Koppla, home: Path
) -> None:
    result = koppla(
        "admin",
        "create-user",
        "bo@example.com",
        "--org",
        ORG,
        "--password-stdin",
        input=f" {PASSWORD} \r\nnext line\n",
    )
    assert result.exit_code == 0, result.output
    assert _sign_in(home, "bo@example.com", f" {PASSWORD} ") == ORG


def test_a_password_typed_twice_at_a_hidden_prompt(koppla: Koppla, home: Path) -> None:
    result = koppla("admin", "create-user", "cy@example.com", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.stderr and "Repeat" in result.stderr
    assert PASSWORD not in result.output  # the prompt does not echo it
    assert _sign_in(home, "cy@example.com", PASSWORD)


def test_a_mistyped_confirmation_is_asked_again(koppla: Koppla, home: Path) -> None:
    typed = f"{PASSWORD}\n{PASSWORD}x\n{PASSWORD}\n{PASSWORD}\n"
    result = koppla("admin", "create-user", "di@example.com", input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.stderr
    assert _sign_in(home, "di@example.com", PASSWORD)


def test_a_short_password_is_refused_and_no_user_made(koppla: Koppla, home: Path) -> None:
    result = koppla(
        "admin", "create-user", "ed@example.com", "--password-stdin", input="elevenchars"
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: a password needs at least 12 characters"
    with pytest.raises(SignInRefused):
        _sign_in(home, "ed@example.com", "elevenchars")


def test_bad_email_org_or_a_second_account_are_refused(koppla: Koppla) -> None:
    bad_email = koppla("admin", "create-user", "not-an-email", "--password-stdin", input=PASSWORD)
    assert bad_email.exit_code == 2 and "not an email address" in bad_email.stderr
    bad_org = koppla(
        "admin", "create-user", "fi@example.com", "--org", "x", "--password-stdin", input=PASSWORD
    )
    assert bad_org.exit_code == 2 and "24 letters or digits" in bad_org.stderr
    koppla("admin", "create-user", "gu@example.com", "--password-stdin", input=PASSWORD)
    twice = koppla("admin", "create-user", "GU@example.com", "--password-stdin", input=PASSWORD)
    assert twice.exit_code == 2 and "exists" in twice.stderr


def test_the_password_is_no_argument(koppla: Koppla) -> None:
    result = koppla("admin", "create-user", "ho@example.com", "--password", PASSWORD)
    assert result.exit_code == 2 and "No such option" in result.stderr
