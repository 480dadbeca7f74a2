"""The database schema: its revision, and bringing it up to date."""

from __future__ import annotations

from lims.cli.common import JsonOption, new_area, print_json, print_record, say, settings

app = new_area("The database schema: show its revision, upgrade it.")


@app.command("upgrade")
def upgrade(as_json: JsonOption = False) -> None:
    """Upgrade the database to the newest schema this lims knows (audited).

    Creates the database if there is none. Run it after installing a new lims.

    \b
    Example:
      lims db upgrade
    """
    from lims import db

    with db.upgrading(settings()) as done:
        result = {"from": done.from_revision, "to": done.to_revision}
    if as_json:
        print_json(result)
    elif result["from"] == result["to"]:
        say(f"Database schema already at {result['to']}.")
    else:
        say(f"Database schema upgraded from {result['from'] or 'blank'} to {result['to']}.")


@app.command("current")
def current(as_json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest this lims knows.

    \b
    Example:
      lims db current --json
    """
    from lims import db
    from lims.config import redacted_url

    config = settings()
    with db.engine_for(config).connect() as connection:
        revision = db.stored_revision(connection)
    result = {
        "database": str(config.sqlite_path or redacted_url(config.database_url)),
        "current": revision,
        "head": db.SCHEMA_HEAD,
        "up_to_date": revision == db.SCHEMA_HEAD,
    }
    if as_json:
        print_json(result)
        return
    print_record("Database schema", list(result.items()))
