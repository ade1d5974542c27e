"""`koppla up`: run the platform (edge, pipeline, profile stage, APIs) in the foreground."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from koppla.cli.common import HomeOption, catalog, console, fail, settings
from koppla.cli.demo import ensure_demo_stream, print_demo
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from koppla.web.listening import find, recorded

ROLES = ("all", "edge", "pipeline", "api")


def up(
    home: HomeOption = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind.", show_default="the host setting: 127.0.0.1"),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind.", show_default="the port setting: 8080")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Create and print the demo datastream.")] = False,
    demo_shop: Annotated[
        bool,
        typer.Option(
            help="With --demo: run the demo shop's order simulator and its store connector."
        ),
    ] = True,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate: serve HTTPS.", show_default="the tls_cert setting: none, HTTP"
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM key for --tls-cert.", show_default="the tls_key setting: none"),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="What this process runs: all | edge | pipeline | api (other roles than all "
            "need spool_url and catalog_url, shared by every process of a deployment).",
            show_default="the role setting: all",
        ),
    ] = None,
    pg_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the PostgreSQL wire-protocol server (psql, BI tools); 0 runs none.",
            show_default="the query_pg_port setting: 5433",
        ),
    ] = None,
) -> None:
    """Run Koppla: the edge, the pipeline and the APIs, with all state under --home.

    While it runs, <home>/server.json says where it listens (client commands such as
    `koppla debug` read it).
    """
    from koppla.web.server import serve

    if role is not None and role not in ROLES:
        fail(f"--role: {role!r} is not one of {', '.join(ROLES)}", 2)
    loaded = settings(
        home,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        query_pg_port=pg_port,
        role=role,
    )
    if loaded.spool_url and not loaded.catalog_url:
        fail(
            "spool_url needs catalog_url: the pipeline workers of a shared log keep their "
            "cursors, leases and dedupe claims in PostgreSQL"
        )
    if loaded.role != "all":
        _serve_role(loaded)
        return
    running = find(loaded.home)
    if running is not None:
        fail(
            f"a Koppla server is already running for home {loaded.home} at {running.url} "
            f"(pid {running.pid}); stop it first, or use another --home"
        )
    opened = catalog(loaded)
    try:
        if not opened.has_tokens():
            token = opened.add_token("admin")
            console.print(f"[bold]Admin API token[/] (shown once, store it): {token}")
        org_id = opened.default_org()
        _first_admin(loaded.home, org_id)
        _warn_unreachable(loaded.home, opened)
        if demo:
            print_demo(loaded, ensure_demo_stream(loaded, opened))
    finally:
        opened.close()
    console.print(
        f"Koppla is up on {loaded.scheme}://{loaded.host}:{loaded.port} "
        f"with data in {loaded.home.resolve()}  (Ctrl+C stops it)"
    )
    console.print(f"  admin pages:  {loaded.scheme}://{loaded.host}:{loaded.port}/admin/")
    if loaded.query_pg_port:
        console.print(
            f'  PostgreSQL:   psql "host={loaded.host} port={loaded.query_pg_port} '
            f'dbname=prod:all user={org_id} sslmode=require" (password: an API token)',
            highlight=False,
        )
    with recorded(loaded):
        serve(loaded, demo_shop=demo and demo_shop)


def _serve_role(loaded: Settings) -> None:
    """Run one role of a deployment whose processes share `spool_url` and `catalog_url`.

    Several processes may share a home on one machine (each edge, each worker), so no
    `server.json` is claimed, except by the API, which client commands talk to.
    """
    from koppla.web.server import serve

    if not loaded.spool_url or not loaded.catalog_url:
        fail(
            f"--role {loaded.role} needs spool_url and catalog_url (KOPPLA_SPOOL_URL, "
            "KOPPLA_CATALOG_URL), which every process of the deployment shares; "
            "--role all runs everything in this process on embedded defaults"
        )
    where = (
        "" if loaded.role == "pipeline" else f" on {loaded.scheme}://{loaded.host}:{loaded.port}"
    )
    console.print(f"Koppla {loaded.role}{where} with data in {loaded.home.resolve()}")
    if loaded.role == "api":
        with recorded(loaded):
            serve(loaded)
    else:
        serve(loaded)


FIRST_ADMIN = "admin@koppla.local"


def unreachable_orgs(home: Path, opened: Catalog) -> list[str]:
    """The organizations holding datasets that no token, credential or person acts for (after
    an upgrade, older tokens act for the home's organization only)."""
    users = UserStore(Layout(home).catalog)
    try:
        reach = {t.org_id for t in opened.tokens()} | {u.org_id for u in users.users()}
    finally:
        users.close()
    reach |= {c.org_id for c in opened.credentials() if not c.revoked}
    return sorted({d.org_id for d in opened.datasets()} - reach)


def _warn_unreachable(home: Path, opened: Catalog) -> None:
    for org in unreachable_orgs(home, opened):
        console.print(
            f"[yellow]Organization {org} has datasets no token reaches[/]: "
            f"`koppla token create --org {org} --home {home}` makes one"
        )


def _first_admin(home: Path, org_id: str) -> None:
    """On a home nobody can sign in to yet, make the first admin and print the password once,
    when a person reads it (a terminal): output going to a log gets a hint instead."""
    users = UserStore(Layout(home).catalog)
    try:
        if users.users():
            return
        if not sys.stdout.isatty():
            console.print(
                "[bold]Admin pages[/]: nobody can sign in yet; add a person with "
                f"`koppla admin create-user EMAIL --home {home}`"
            )
            return
        password = secrets.token_urlsafe(18)
        users.create_user(FIRST_ADMIN, password, org_id=org_id)
    finally:
        users.close()
    console.print(
        f"[bold]Admin pages[/]: sign in at /admin/ as {FIRST_ADMIN} with password {password} "
        "(shown once; `koppla admin create-user` adds people)",
        highlight=False,  # the password is printed exactly, no colour codes inside it
    )
