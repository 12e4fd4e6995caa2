"""Running an installation: ``surveillance users|tokens|sites|db|audit ...``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from surveillance.accounts import auth
from surveillance.accounts.auth import list_users
from surveillance.alerting import endpoints
from surveillance.cli.context import actor, migrated_runtime, runtime, upgrade_schema
from surveillance.kit import audit, migrate, secret_box
from surveillance.kit.db import read_session, write_session
from surveillance.kit.text_table import render
from surveillance.records.sites import add_site, list_sites

users_app = typer.Typer(help="Users, roles and passwords.", no_args_is_help=True)
tokens_app = typer.Typer(help="API bearer tokens and calendar-feed tokens.", no_args_is_help=True)
sites_app = typer.Typer(help="Sites and their time zones.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


# -- users and tokens ------------------------------------------------------------------------


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts).",
    ),
]


def read_password(*, from_stdin: bool) -> str:
    """The new password, from a hidden prompt asked twice or from stdin: never from the
    command line, where the process list and the shell's history would show it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="nurse, investigator, pharmacovigilance or admin.")],
    site: Annotated[
        list[str] | None,
        typer.Option(help="A site of a nurse or investigator; repeat for several."),
    ] = None,
    with_password: Annotated[
        bool,
        typer.Option(
            "--with-password", help="Also set a password for the web pages (asked, hidden)."
        ),
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user (nurses and investigators work at one or more sites)."""
    password = read_password(from_stdin=password_stdin) if with_password or password_stdin else None
    with write_session(migrated_runtime(create=True).engine) as session:
        auth.add_user(session, email=email, role=role, sites=site or [], actor=actor())
        if password is not None:
            auth.set_password(session, email=email, password=password, actor=actor())
    typer.echo(f"added {email} ({role}{': ' + ', '.join(site) if site else ''})")


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option()], password_stdin: PasswordStdin = False
) -> None:
    """Set the password a user signs in to the web pages with (asked twice, hidden; or
    --password-stdin). Ends the user's browser sessions."""
    password = read_password(from_stdin=password_stdin)
    with write_session(migrated_runtime().engine) as session:
        auth.set_password(session, email=email, password=password, actor=actor())
    typer.echo(f"password set for {email}")


@users_app.command("deactivate")
def users_deactivate(email: Annotated[str, typer.Argument()]) -> None:
    """Stop a user signing in: their browser sessions end and their tokens are revoked
    (API clients holding a token see it refused within SURVEILLANCE_CACHE_SECONDS)."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        auth.deactivate_user(session, email=email, actor=actor(), now=current.clock())
    typer.echo(f"deactivated {email}: sessions ended, tokens revoked")


@users_app.command("reactivate")
def users_reactivate(email: Annotated[str, typer.Argument()]) -> None:
    """Let a deactivated user sign in again (their old tokens stay revoked)."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        auth.reactivate_user(session, email=email, actor=actor(), now=current.clock())
    typer.echo(f"reactivated {email}")


@users_app.command("list")
def users_list() -> None:
    with read_session(migrated_runtime().engine) as session:
        users = list_users(session)
    rows = [
        (
            u.email,
            u.role,
            ", ".join(sites),
            "yes" if u.password_hash else "no",
            "yes" if u.active else "no",
        )
        for u, sites in users
    ]
    typer.echo(render(("email", "role", "sites", "password", "active"), rows))


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option()],
    feed_site: Annotated[
        str | None,
        typer.Option("--feed-site", help="A read-only calendar-feed token for this site."),
    ] = None,
) -> None:
    """Create a token for a user; it is printed once and stored only as a hash."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        row, token = auth.create_token(
            session, email=email, actor=actor(), feed_site=feed_site, now=current.clock()
        )
    typer.echo(token)
    if feed_site:
        typer.echo(
            f"calendar feed: {current.settings.base_url}"
            f"/api/v1/sites/{feed_site}/calendar.ics?token={token}",
            err=True,
        )
    typer.echo(f"token {row.prefix}… for {email}: store it now, it is not shown again", err=True)


@tokens_app.command("revoke")
def tokens_revoke(
    prefix: Annotated[
        str, typer.Argument(help="The token's first 12 characters (see tokens list).")
    ],
) -> None:
    """Revoke a token: it stops working within SURVEILLANCE_CACHE_SECONDS (default 5 s)."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        auth.revoke_token(session, prefix=prefix, actor=actor(), now=current.clock())
    typer.echo(f"revoked {prefix}")


@tokens_app.command("list")
def tokens_list() -> None:
    with read_session(migrated_runtime().engine) as session:
        rows = [
            (t.prefix + "…", email, t.kind, t.feed_site_id or "", t.created_at, t.revoked_at or "")
            for t, email in auth.list_tokens(session)
        ]
    typer.echo(render(("token", "user", "kind", "site", "created", "revoked"), rows))


# -- sites, schema, audit trail ----------------------------------------------------------------


@sites_app.command("add")
def sites_add(
    site_id: Annotated[str, typer.Option("--id", help="Short name used everywhere, e.g. Rome.")],
    name: Annotated[str, typer.Option()],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Rome.")],
    country: Annotated[
        str | None, typer.Option(help="ISO 3166 two-letter code, e.g. IT (sent in the AE feed).")
    ] = None,
) -> None:
    """Add a site."""
    with write_session(migrated_runtime(create=True).engine) as session:
        add_site(session, site_id=site_id, name=name, timezone=timezone, country=country)
    typer.echo(f"added site {site_id} ({timezone})")


@sites_app.command("list")
def sites_list() -> None:
    with read_session(migrated_runtime().engine) as session:
        rows = [(s.id, s.timezone, s.name) for s in list_sites(session)]
    typer.echo(render(("site", "time zone", "name"), rows))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema of DATABASE_URL to the newest version (passing revision
    0007 also reads results stored as free text into their declared types; passing 0014
    takes the rows of patients who had died or withdrawn, their reporting duties aside,
    off the due list's index).

    Without DATABASE_URL: the SQLite file surveillance.db in SURVEILLANCE_DATA_DIR,
    created owner-only with its folder if missing.
    """
    current = runtime(create=True)
    engine = current.engine
    report = upgrade_schema(current)
    typer.echo(
        f"schema at revision {migrate.current_revision(engine)} ({engine.url.render_as_string()})"
    )
    if report is not None:
        typer.echo(report.summary())


@db_app.command("new-key")
def db_new_key() -> None:
    """Print a new encryption key (for SURVEILLANCE_ENCRYPTION_KEYS or encryption.key)."""
    typer.echo(secret_box.new_key())


@db_app.command("reencrypt-secrets")
def db_reencrypt_secrets() -> None:
    """Encrypt the stored webhook secrets again with the first configured key (the last
    step of a key rotation; afterwards the old key can be removed)."""
    with write_session(migrated_runtime().engine) as session:
        count = endpoints.reencrypt_secrets(session)
    typer.echo(f"re-encrypted the secrets of {count} webhook endpoint(s) with the first key")


@audit_app.command("head")
def audit_head() -> None:
    """Print the audit chain's last checkpoint (row count, head row, hash): keep a copy
    outside the database, so even a rewrite of the whole chain can be noticed."""
    with read_session(migrated_runtime().engine) as session:
        head = audit.last_checkpoint(session)
    if head is None:
        typer.echo("no audit rows yet")
        return
    typer.echo(f"rows {head.row_count}  head {head.head_id}  hash {head.head_hash}")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="A head hash kept outside the database (the admins' daily digest, "
            "`audit head`): it must still be in the trail."
        ),
    ] = None,
    expect_count: Annotated[
        int | None,
        typer.Option(min=1, help="The row count kept with it: the head must be that row."),
    ] = None,
) -> None:
    """Check the audit trail's hash chain; exit 1 if a row was edited or deleted.

    With --expect-head (and --expect-count) it also checks the trail against a head kept
    outside the database, which catches the newest rows deleted together with their
    checkpoints."""
    if expect_count is not None and expect_head is None:
        raise typer.BadParameter("--expect-count needs --expect-head", param_hint="--expect-count")
    expect = None
    if expect_head is not None:
        expect = audit.ExpectedHead(head_hash=expect_head.strip().lower(), row_count=expect_count)
    with read_session(migrated_runtime().engine) as session:
        breaks = audit.verify_chain(session, expect)
    if breaks:
        for item in breaks:
            where = f"audit row {item.entry_id}" if item.entry_id else "audit trail"
            typer.echo(f"{where}: {item.problem}", err=True)
        raise typer.Exit(1)
    against = f", the head {expect_head} included" if expect_head else ""
    typer.echo(f"audit trail intact{against}")
