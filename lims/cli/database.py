"""The database: its schema revision, bringing it up to date, backing it up and restoring it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    PasswordStdinOption,
    new_area,
    print_record,
    print_view,
    read_password,
    say,
    settings,
)
from lims.cli.options import ForceOption

if TYPE_CHECKING:
    from lims.views.database import BackupResult, RestoreResult, SchemaState, Upgrade

app = new_area(
    "The database: show its schema revision, upgrade it, back it up, restore it (SQLite; "
    "on PostgreSQL use pg_dump and pg_restore)."
)


@app.command("upgrade")
def upgrade(as_json: JsonOption = False) -> None:
    """Upgrade the database to the newest schema this lims knows (audited).

    Creates the database if there is none. Run it after installing a new lims.

    \b
    Example:
      lims db upgrade
    """
    from lims.uow import Schema, unit_of_work

    with unit_of_work(settings(), authenticated=False, schema=Schema.UPGRADE) as uow:
        result = uow.upgrade
    assert result is not None
    print_view(result, as_json, _say_upgraded)


def _say_upgraded(result: Upgrade) -> None:
    if result.from_revision == result.to_revision:
        say(f"Database schema already at {result.to_revision}.")
    else:
        say(
            f"Database schema upgraded from {result.from_revision or 'blank'} "
            f"to {result.to_revision}."
        )


@app.command("current")
def current(as_json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest this lims knows, and write formats.

    \b
    Example:
      lims db current --json
    """
    from lims import db
    from lims.config import redacted_url
    from lims.views.database import SchemaState

    config = settings()
    with db.engine_for(config).connect() as connection:
        revision = db.stored_revision(connection)
        minimum = db.minimum_write_format(connection)
    state = SchemaState(
        database=str(config.sqlite_path or redacted_url(config.database_url)),
        current=revision,
        head=db.SCHEMA_HEAD,
        write_format=db.WRITE_FORMAT,
        minimum_write_format=minimum,
    )
    print_view(state, as_json, _print_schema)


def _print_schema(state: SchemaState) -> None:
    print_record(
        "Database schema",
        {
            "database": state.database,
            "current": state.current,
            "head": state.head,
            "up_to_date": state.up_to_date,
            "write format": f"{state.write_format} (the database accepts "
            + (
                f"{state.minimum_write_format} and newer)"
                if state.minimum_write_format is not None
                else "any)"
            ),
        },
    )


@app.command("backup")
def backup(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="The backup to write; must not exist yet (see --force)."
        ),
    ],
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Copy the SQLite database to FILE while other stations keep working (admin only, audited).

    Uses SQLite's online backup. The copy is written beside FILE under a
    temporary name and put in place only after it passes SQLite's integrity
    check and its audit trail verifies; FILE is readable by its owner only.
    An existing FILE is refused (exit 1) unless --force, which replaces only a
    backup lims wrote there and recorded (its SHA-256 unchanged), e.g. a
    nightly copy under one name; never the database, a directory, a symbolic
    link or a device (exit 2). Prints the file's SHA-256: keep it with the
    copy. The trail records the backup (`lims audit log --entity backup:SHA256`).

    A backup holds every patient record: store it as securely as the database.
    On PostgreSQL use pg_dump instead (this command says how).

    \b
    Example:
      lims db backup /mnt/backup/lims-2026-11-25.db
      lims db backup lims-before-upgrade.db --json
      lims db backup /mnt/backup/lims-nightly.db --force
    """
    from lims.services import backup as service

    print_view(service.backup(settings(), file, force=force), as_json, _print_backup)


def _print_backup(result: BackupResult) -> None:
    print_record(
        "Backup written",
        {
            "file": str(result.path),
            "size": f"{result.size:,} bytes",
            "sha256": result.sha256,
            "audit entries": result.facts.audit_entries,
            "audit head": result.facts.head_hash,
            "schema": result.facts.revision,
        },
    )


@app.command("restore")
def restore(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A backup made by `lims db backup`.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the database without asking (for scripts).")
    ] = False,
    admin: Annotated[
        str | None,
        typer.Option(
            "--admin",
            metavar="NAME",
            help="An admin of the backup, asked for only when the database has no users "
            "table to read (prompted for if not given).",
        ),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Replace the SQLite database with the backup in FILE (audited); refuses a bad backup.

    FILE must pass SQLite's integrity check, its audit trail must verify and
    its schema must be one this lims knows (an older one is upgraded). The
    database is swapped atomically: it is either the old one or the backup,
    never a mixture. Everything recorded after the backup was taken is lost.
    The restored trail gains a `db.restore` entry naming FILE's SHA-256.

    It needs the database's admin logged in at this station (exit 4 otherwise),
    even when the database is damaged, and asks first unless --yes. Only when
    the database has no users table that can be read (there is none, or it is
    damaged past that) does an admin of the backup authorise the restore
    instead: their user name (--admin or asked) and password (asked, or the
    first line of standard input with --password-stdin) are checked against
    the backup's users; the restored trail names who. A database damaged so
    that no session can be checked is moved aside first (then there is none).
    Stop `lims` on other stations first. Afterwards every session has ended:
    log in again. On PostgreSQL use pg_restore (this command says how).

    \b
    Example:
      lims db restore /mnt/backup/lims-2026-11-25.db
      lims db restore lims-before-upgrade.db --yes --json
      printf '%s\\n' "$PASSWORD" | lims db restore old.db --admin ada --password-stdin --yes
    """
    from lims.errors import BadInput
    from lims.services import backup as service
    from lims.views.database import RestorePlan

    def confirm(plan: RestorePlan) -> bool:
        live = plan.replaces
        if yes or not live.exists:
            return True
        held = f"{live.audit_entries} audit entries" if live.healthy else f"damaged: {live.problem}"
        return bool(
            typer.confirm(
                f"Replace {live.path} ({held}) with {plan.source} "
                f"({plan.facts.audit_entries} audit entries)? "
                "Everything recorded after that backup is lost",
                default=False,
            )
        )

    def credentials() -> tuple[str, str]:
        if admin is None and password_stdin:
            raise BadInput("admin", "give --admin NAME with --password-stdin")
        name = admin or str(typer.prompt("User name of an admin in the backup"))
        return name, read_password(password_stdin, prompt=f"Password for {name}")

    restored = service.restore(settings(), file, confirm=confirm, credentials=credentials)
    print_view(restored, as_json, _say_restored)


def _say_restored(result: RestoreResult) -> None:
    plan = result.plan
    say(f"Restored {plan.replaces.path} from {plan.source} (sha256 {plan.sha256}).")
    if result.upgraded_from is not None:
        say(f"Schema upgraded from {result.upgraded_from} to {result.revision}.")
    say(
        f"Audit trail intact: {result.audit_entries} entries, head {result.head_hash[:16]}…; "
        f"{result.sessions_ended} session(s) from the backup ended."
    )
    say("Every station is logged out: run `lims login NAME`.")
