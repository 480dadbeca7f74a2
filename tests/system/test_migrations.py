"""The schema comes only from Alembic revisions, and they match the models exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import lims.models  # noqa: F401
from lims import db
from lims.cli.errors import UNAVAILABLE
from lims.config import Settings
from lims.errors import NotFound, NotPermitted, RuleViolation, Unavailable
from lims.uow import Schema, unit_of_work
from tests.support.cli import invoke
from tests.support.lab import ON_POSTGRES, PASSWORD, Lab

if TYPE_CHECKING:
    from tests.support.quality import Quality


def _upgrade(settings: Settings) -> None:
    with unit_of_work(settings, authenticated=False, schema=Schema.UPGRADE):
        pass


def test_revisions_known_to_lims_are_the_migration_history() -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config())
    assert scripts.get_heads() == [db.SCHEMA_HEAD]
    history = [revision.revision for revision in scripts.walk_revisions()]
    assert tuple(reversed(history)) == db.SCHEMA_REVISIONS


def test_blank_database_upgraded_to_head_matches_the_models(settings: Settings) -> None:
    _upgrade(settings)
    with db.engine_for(settings).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert db.stored_revision(connection) == db.SCHEMA_HEAD


def test_upgrade_is_audited_and_idempotent(settings: Settings) -> None:
    _upgrade(settings)
    _upgrade(settings)
    with db.engine_for(settings).connect() as connection:
        actions = connection.execute(text("SELECT action FROM audit_entries")).scalars().all()
    assert actions == ["db.upgrade"]


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite connection settings")
def test_sqlite_runs_with_wal_foreign_keys_full_sync_and_a_busy_timeout(settings: Settings) -> None:
    _upgrade(settings)
    with db.engine_for(settings).connect() as connection:

        def pragma(name: str) -> object:
            return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") >= 5000


def test_commands_refuse_a_missing_database_without_creating_it(settings: Settings) -> None:
    result = invoke("whoami")
    assert result.exit_code == 3
    assert "lims init" in result.stderr
    if settings.sqlite_path is not None:
        assert not settings.sqlite_path.exists()


def test_commands_refuse_a_database_from_a_newer_lims(settings: Settings) -> None:
    _upgrade(settings)
    with db.engine_for(settings).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with (
        db.transaction(db.engine_for(settings), write=False) as session,
        pytest.raises(Unavailable, match="newer lims"),
    ):
        db.check_schema(session, settings)
    for command in (("audit", "verify"), ("db", "upgrade")):
        result = invoke(*command)
        assert result.exit_code == UNAVAILABLE, command
        assert "newer lims" in result.stderr
        assert "Traceback" not in result.stderr


def test_commands_refuse_an_older_schema_and_name_the_upgrade(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgrade(settings)
    with db.engine_for(settings).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    monkeypatch.setattr(db, "SCHEMA_REVISIONS", ("0000_older", *db.SCHEMA_REVISIONS))
    with (
        db.transaction(db.engine_for(settings), write=False) as session,
        pytest.raises(RuleViolation, match="lims db upgrade"),
    ):
        db.check_schema(session, settings)
    result = invoke("audit", "verify")
    assert result.exit_code == 1  # a rule lims resolves itself, not an unavailable database
    assert "lims db upgrade" in result.stderr


def test_blank_database_is_reported_as_not_initialised(settings: Settings) -> None:
    with (
        db.transaction(db.engine_for(settings, create=True), write=False) as session,
        pytest.raises(NotFound, match="not initialised"),
    ):
        db.check_schema(session, settings)


def test_db_upgrade_and_current_commands(settings: Settings) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    current = invoke("db", "current", "--json")
    assert current.exit_code == 0
    assert '"up_to_date": true' in current.stdout
    again = invoke("db", "upgrade", "--json")
    assert again.exit_code == 0
    assert f'"from": "{db.SCHEMA_HEAD}"' in again.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET reason = 'changed'",
        "DELETE FROM audit_entries",
    ],
)
def test_the_database_refuses_to_change_audit_entries(settings: Settings, statement: str) -> None:
    _upgrade(settings)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        db.engine_for(settings).begin() as connection,
    ):
        connection.execute(text(statement))


@pytest.mark.skipif(not ON_POSTGRES, reason="TRUNCATE exists on PostgreSQL only")
def test_postgresql_refuses_to_truncate_audit_entries(settings: Settings) -> None:
    _upgrade(settings)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        db.engine_for(settings).begin() as connection,
    ):
        connection.execute(text("TRUNCATE audit_entries"))


# --- the write format: an older lims cannot write to a database a newer one has written ----


def _minimum_write_format(settings: Settings) -> int | None:
    with db.engine_for(settings).connect() as connection:
        return connection.execute(text("SELECT minimum FROM write_format")).scalar()


def test_a_new_database_admits_this_lims_write_format(settings: Settings) -> None:
    _upgrade(settings)
    assert _minimum_write_format(settings) == db.WRITE_FORMAT


def test_a_lims_below_the_databases_write_format_refuses_to_write(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    before = lab.audit_count()
    older = db.WRITE_FORMAT
    monkeypatch.setattr(db, "WRITE_FORMAT", older + 1)  # a newer lims writes once
    assert (
        invoke(
            "patient",
            "add",
            "PT-0042",
            "--initials",
            "AB",
            "--birth-year",
            "1960",
            "--consent-date",
            "2020-01-15",
        ).exit_code
        == 0
    )
    assert _minimum_write_format(lab.settings) == older + 1
    with db.engine_for(lab.settings).connect() as connection:
        raised = connection.execute(
            text("SELECT action, new_value FROM audit_entries ORDER BY seq DESC LIMIT 2")
        ).all()
    assert [action for action, _ in raised] == ["patient.create", "db.write_format"]

    monkeypatch.setattr(db, "WRITE_FORMAT", older)  # the older lims again
    for command in (
        (
            "patient",
            "add",
            "PT-0043",
            "--initials",
            "AB",
            "--birth-year",
            "1960",
            "--consent-date",
            "2020-01-15",
        ),
        ("patient", "list"),  # reading as a user touches the login session: a write too
        ("login", "tom", "--password-stdin"),
    ):
        result = invoke(*command, input="x\n")
        assert result.exit_code == UNAVAILABLE, (command, result.stderr)
        assert f"write format {older + 1}" in result.stderr
        assert f"writes format {older}" in result.stderr
    assert lab.audit_count() == before + 2
    assert invoke("db", "current", "--json").exit_code == 0  # reading without a login still works


def test_db_current_shows_both_write_formats(settings: Settings) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    current = invoke("db", "current", "--json")
    assert f'"write_format": {db.WRITE_FORMAT}' in current.stdout
    assert f'"minimum_write_format": {db.WRITE_FORMAT}' in current.stdout


def test_a_missing_write_format_record_is_not_put_back_by_whoever_writes_next(lab: Lab) -> None:
    with db.engine_for(lab.settings).begin() as connection:
        connection.execute(text("DELETE FROM write_format"))
    result = invoke(
        "patient",
        "add",
        "PT-0042",
        "--initials",
        "AB",
        "--birth-year",
        "1960",
        "--consent-date",
        "2020-01-15",
    )
    assert result.exit_code == UNAVAILABLE
    assert "write format record is missing" in result.stderr
    assert _minimum_write_format(lab.settings) is None


@pytest.mark.parametrize("table", ["site_settings", "specifications"])
def test_missing_site_records_are_refused_not_replaced_by_defaults(lab: Lab, table: str) -> None:
    with db.engine_for(lab.settings).begin() as connection:
        connection.execute(text(f"DELETE FROM {table}"))
    result = invoke("login", "admin", "--password-stdin", input="x\n")
    assert result.exit_code == UNAVAILABLE
    assert "records are missing" in result.stderr


def _before_custody(lab: Lab) -> Quality:
    """A Quality lab whose lot is suspended in a typed vehicle, as lims held lots before
    0012_custody: a downgrade below it refuses while a CSF donation would be lost."""
    from tests.support.quality import Quality

    lab.set_site(vehicle={"allow_non_autologous": True})
    return Quality(lab, vehicle="autologous CSF")


@pytest.mark.parametrize("previous", [db.SCHEMA_REVISIONS[-2], "0007_oos_holds_recall"])
def test_a_database_holding_a_released_lot_upgrades_from_an_earlier_revision(
    lab: Lab, previous: str
) -> None:
    """Revision 0006 rebuilds `lots` (SQLite batch mode) under the foreign keys of its vials,
    signatures and results: the upgrade keeps every row and every reference."""
    from alembic import command

    quality = _before_custody(lab)
    quality.record_passing()
    quality.release()
    with db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session:
        command.downgrade(db.alembic_config(session.connection()), previous)
    assert invoke("db", "upgrade").exit_code == 0
    with db.engine_for(lab.settings).connect() as connection:
        assert db.stored_revision(connection) == db.SCHEMA_HEAD
        assert connection.execute(text("SELECT status FROM lots")).scalars().all() == ["released"]
        assert connection.execute(text("SELECT count(*) FROM vials")).scalar() == 4
        # 0013 numbers the vials of a DIN as its divisions, in the order they were made.
        divisions = connection.execute(text("SELECT din, division FROM vials ORDER BY id"))
        assert [tuple(row) for row in divisions] == [
            (quality.lot_id[:13], number) for number in (1, 2, 3, 4)
        ]
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    quality.lab.login("rita")
    if previous == "0007_oos_holds_recall":
        # Every account but the first admin's kept the password an admin typed before 0008.
        refused = invoke("lot", "show", quality.lot_id)
        assert refused.exit_code == NotPermitted.exit_code
        assert "change your password with lims passwd" in refused.stderr
        changed = invoke("passwd", "--password-stdin", input=f"{PASSWORD}\nrita's own choice\n")
        assert changed.exit_code == 0, changed.stderr
    assert invoke("lot", "show", quality.lot_id).exit_code == 0
    lab.login("admin")
    assert invoke("user", "list").exit_code == 0


def test_a_downgrade_below_0013_is_refused_while_screening_or_a_rejected_vial_would_be_lost(
    lab: Lab,
) -> None:
    from alembic import command

    quality = _before_custody(lab)
    quality.lab.login("tom")
    assert (
        invoke("patient", "screen", "PT-0001", "--test", "hiv", "--result", "negative").exit_code
        == 0
    )
    with (
        db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session,
        pytest.raises(RuntimeError, match=r"below 0013_labels.*screenings"),
    ):
        command.downgrade(db.alembic_config(session.connection()), "0012_custody")
    quality.lab.login("rita")
    rejected = invoke(
        "lot", "reject", quality.lot_id, "--reason", "sterility positive", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert rejected.exit_code == 0, rejected.stderr
    with db.engine_for(lab.settings).begin() as connection:
        connection.execute(text("DELETE FROM screenings"))
    with (
        db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session,
        pytest.raises(RuntimeError, match=r"vials \(rejected\)"),
    ):
        command.downgrade(db.alembic_config(session.connection()), "0012_custody")


def test_a_downgrade_below_0007_is_refused_while_a_hold_would_be_lost(lab: Lab) -> None:
    from alembic import command

    from lims.services import lots

    quality = _before_custody(lab)
    lab.login("rita")
    quality.run(lots.hold, lot=quality.lot_id, password=PASSWORD, reason="alarm")
    with (
        pytest.raises(RuntimeError, match="holds"),
        db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session,
    ):
        command.downgrade(db.alembic_config(session.connection()), "0006_site_records")
    with db.engine_for(lab.settings).connect() as connection:
        assert db.stored_revision(connection) == db.SCHEMA_HEAD
        assert connection.execute(text("SELECT count(*) FROM lot_holds")).scalar() == 1


def test_a_downgrade_below_0008_is_refused_while_a_late_entry_would_be_lost(lab: Lab) -> None:
    from alembic import command

    with db.engine_for(lab.settings).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO late_entries (action, entity_type, entity_id, at, entered_at,"
                " entered_by, reason) VALUES ('passage.log', 'passage', 'P', :at, :at, 'tom',"
                " 'counted on Friday, typed on Monday')"
            ),
            {"at": datetime(2026, 11, 2, tzinfo=UTC)},
        )
    with (
        pytest.raises(RuntimeError, match="late entries"),
        db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session,
    ):
        command.downgrade(db.alembic_config(session.connection()), "0007_oos_holds_recall")
    with db.engine_for(lab.settings).connect() as connection:
        assert db.stored_revision(connection) == db.SCHEMA_HEAD


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE qc_results SET pending = :yes",
        "UPDATE lots SET pending_at_release = '[\"sterility\"]'",
        "UPDATE deviations SET severity = 'critical'",
    ],
)
def test_a_downgrade_below_0009_is_refused_while_a_fresh_products_record_would_be_lost(
    lab: Lab, statement: str
) -> None:
    from alembic import command

    quality = _before_custody(lab)
    quality.record("viability", "50")  # fails: opens an OOS deviation
    with db.engine_for(lab.settings).begin() as connection:
        connection.execute(text(statement), {"yes": True})
    with (
        pytest.raises(RuntimeError, match="0009_fresh_product"),
        db.transaction(db.engine_for(lab.settings), write=True, migrate=True) as session,
    ):
        command.downgrade(db.alembic_config(session.connection()), "0008_record_stays_true")
    with db.engine_for(lab.settings).connect() as connection:
        assert db.stored_revision(connection) == db.SCHEMA_HEAD
