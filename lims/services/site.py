"""The site's settings and its release specification: shown to anyone, changed on record.

`site set` (admin) changes one site setting; `spec set` (QA, a signature) lays a
file's [release.<test>] tables over the specification in force. Either is
validated as `lims init` validates the files, is stored as a new version (the
old ones stay: lots keep being judged by theirs), and is audited with the old
and new value of every key it changes and the reason.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from lims import audit, site
from lims.config import (
    SITE_SECTIONS,
    Settings,
    SiteSettings,
    StationSettings,
    flatten,
    typed_value,
)
from lims.domain import quantities
from lims.domain import signatures as signing
from lims.domain.spec import laid_over
from lims.errors import BadInput, LimsError, NotFound, shown
from lims.models import LONG_TEXT_MAX, Signature, SiteSettingsVersion, SpecificationVersion
from lims.services import signatures
from lims.timeutil import utcnow
from lims.uow import UnitOfWork, unit_of_work
from lims.validation import free_text
from lims.views.site import SiteSettingsView, SpecificationSummary, SpecificationView

STATION_KEYS = tuple(StationSettings.model_fields)
# Site settings that are a list of tables, set whole (sites: where vials may be shipped).
LIST_SECTIONS = tuple(
    section
    for section in SITE_SECTIONS
    if section != "release"
    and getattr(SiteSettings.model_fields[section].annotation, "__origin__", None) is list
)
VERSION_MAX = 1_000_000


# --- the site's settings ------------------------------------------------------------------


def show_site(uow: UnitOfWork) -> SiteSettingsView:
    """The site's settings in force, besides its specification (`lims site show`)."""
    uow.require("read_records")
    return _site_view(_latest_site(uow.session))


def set_site(uow: UnitOfWork, *, key: str, value: str, reason: str) -> SiteSettingsView:
    """A new version of the site's settings with KEY set to VALUE (JSON, or a bare word)."""
    session = uow.session
    actor = uow.require("manage_site")
    section, name, entry = _site_key(key)
    typed = typed_value(value)
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    current = _latest_site(session)
    # As in force: a section a record of an earlier lims lacks holds its defaults.
    before = site.site_values(site.site_settings_of(current.values, current.version))
    values = json.loads(site.canonical(before))
    if name is None:  # a list set whole: sites
        if not isinstance(typed, list):
            raise BadInput(key, f"must be a JSON list [...] (got {shown(value)})")
        values[section] = typed
    else:
        stored = typed
        if entry is not None:  # one key of a table: equipment.required.passage_log
            stored = {**values[section][name], entry: typed}
        values[section] = {**values[section], name: stored}
    try:
        validated = SiteSettings.model_validate(values)
    except ValidationError as error:
        raise _bad_value(key, typed, error) from None
    new_values = site.site_values(validated)
    changes = _changes(flatten(before), flatten(new_values))
    if not changes:
        raise BadInput(key, f"is already {shown(typed)} in site settings version {current.version}")
    record = SiteSettingsVersion(
        version=current.version + 1,
        values=site.canonical(new_values),
        reason=reason,
        recorded_by=actor.username,
        recorded_at=utcnow(),
    )
    session.add(record)
    audit.record_changes(
        session,
        ("site_settings", str(record.version)),
        "site.set",
        changes,
        by=actor.username,
        reason=reason,
    )
    session.flush()
    return _site_view(record)


def _site_key(key: str) -> tuple[str, str | None, str | None]:
    """SECTION.NAME of a site setting, SECTION.TABLE.KEY of one of a table of its own
    (equipment.required.passage_log), or a list set whole (sites): the section, the name
    (None for a list) and the table's key (None for a plain setting). The station's keys
    and the specification's are refused."""
    section, _, name = key.partition(".")
    if section in STATION_KEYS:
        raise BadInput(
            key, "is this station's setting, not the site's: set it in lims.toml or as LIMS_*"
        )
    if section == "release":
        raise BadInput(key, "is part of the release specification: change it with lims spec set")
    if section in LIST_SECTIONS:
        if name:
            raise BadInput(
                key, f"{section} is set whole, as a JSON list: lims site set {section} '[...]'"
            )
        return section, None, None
    name, _, entry = name.partition(".")
    if (
        section not in SITE_SECTIONS
        or not name
        or (entry and (not _is_table(section, name) or "." in entry))
    ):
        sections = ", ".join(s for s in SITE_SECTIONS if s != "release" and s not in LIST_SECTIONS)
        lists = ", ".join(LIST_SECTIONS)
        raise BadInput(
            "key",
            f"must be SECTION.NAME as in lims.toml (SECTION.TABLE.KEY for a key of a table "
            f"such as equipment.required), SECTION one of {sections}, or a list set whole: "
            f"{lists} (got {shown(key)})",
        )
    return section, name, entry or None


def _is_table(section: str, name: str) -> bool:
    """Whether a site setting is a table of keys of its own (equipment.required)."""
    model = SiteSettings.model_fields[section].annotation
    fields = getattr(model, "model_fields", {})
    return name in fields and isinstance(fields[name].default, dict)


def _bad_value(key: str, typed: Any, error: ValidationError) -> BadInput:
    first = error.errors()[0]
    location = first["loc"]
    if location and location[0] in LIST_SECTIONS and len(location) > 1:
        return _bad_item(key, first)
    if first["type"] == "extra_forbidden":
        return BadInput(key, "unknown site setting; `lims site show` lists them")
    message = first["msg"].removeprefix("Value error, ")
    if location and location[-1] == "[key]":  # a table's key: name it, not the value
        return BadInput(key, f"{message} (got {shown(location[-2])})")
    return BadInput(key, f"{message} (got {shown(typed)})")


def _bad_item(key: str, error: Any) -> BadInput:
    """What is wrong with one item of a list set whole (sites): which item, which of its
    keys, and the value it was given."""
    _, index, *where = error["loc"]
    item = f"item {index + 1}" if isinstance(index, int) else str(index)
    named = f"{item}, {'.'.join(str(part) for part in where)}" if where else item
    if error["type"] == "extra_forbidden":
        return BadInput(key, f"{named}: unknown key")
    message = error["msg"].removeprefix("Value error, ")
    return BadInput(key, f"{named}: {message} (got {shown(error['input'])})")


def _latest_site(session: Session) -> SiteSettingsVersion:
    record = session.exec(
        select(SiteSettingsVersion).order_by(col(SiteSettingsVersion.version).desc()).limit(1)
    ).first()
    if record is None:
        raise NotFound("the database has no site settings; run `lims init`")
    return record


def _site_view(record: SiteSettingsVersion) -> SiteSettingsView:
    return SiteSettingsView(
        version=record.version,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
        reason=record.reason,
        settings=flatten(
            site.site_settings_of(record.values, record.version).model_dump(mode="json")
        ),
    )


# --- the release specification ------------------------------------------------------------


def show_spec(uow: UnitOfWork, *, version: int | None = None) -> SpecificationView:
    """A version of the release specification: the one in force unless version is given."""
    session = uow.session
    uow.require("read_records")
    latest = _latest_spec(session)
    record = latest
    if version is not None:
        number = quantities.whole_number("version", version, low=1, high=VERSION_MAX)
        found = session.get(SpecificationVersion, number)
        if found is None:
            raise NotFound(f"no specification version {number} (the latest is {latest.version})")
        record = found
    return _spec_view(session, record, in_force=record.version == latest.version)


def spec_history(uow: UnitOfWork) -> list[SpecificationSummary]:
    """Every version of the release specification, oldest first."""
    session = uow.session
    uow.require("read_records")
    records = session.exec(
        select(SpecificationVersion).order_by(col(SpecificationVersion.version))
    ).all()
    approvals = _approvals(session)
    return [
        SpecificationSummary(
            version=record.version,
            approved_by=record.approved_by,
            approved_at=record.approved_at,
            reason=record.reason,
            signature=approvals.get(record.version),
        )
        for record in records
    ]


def set_spec(uow: UnitOfWork, *, file: Path, reason: str, password: str) -> SpecificationView:
    """QA's signature approving a new specification version: file's tables over the current one.

    file holds [release.<test>] tables; each replaces only the keys it names, and a test
    the specification lacks must be defined completely. No version may relax the rules
    in lims.domain.spec (sterility, mycoplasma and endotoxin are never optional).
    """
    session = uow.session
    actor = uow.require("sign")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    tables = _release_tables(_read_text(file))
    current = _latest_spec(session)
    current_spec = site.spec_of(current.spec, current.version)
    try:
        new_spec = site.STORED_SPEC.validate_python(laid_over(current_spec, tables))
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(["release", *(str(part) for part in first["loc"])])
        message = first["msg"].removeprefix("Value error, ")
        raise BadInput(key, message) from None
    new_tables = site.spec_tables(new_spec)
    changes = _changes(flatten(site.spec_tables(current_spec)), flatten(new_tables))
    if not changes:
        raise BadInput("file", f"changes nothing in specification version {current.version}")
    version = current.version + 1
    signer = signatures.confirm_signer(
        session, uow.settings, actor, password, signing=f"specification version {version}"
    )
    stored = site.canonical(new_tables)
    record = SpecificationVersion(
        version=version,
        spec=stored,
        reason=reason,
        approved_by=signer.username,
        approved_at=utcnow(),
    )
    session.add(record)
    session.flush()
    signatures.sign(
        session,
        record,
        signer=signer,
        record_hash=hashlib.sha256(stored.encode()).hexdigest(),
        meaning=f"specification version {version} approved",
    )
    audit.record_changes(
        session,
        ("specification", str(version)),
        "spec.set",
        {f"release.{key}": change for key, change in changes.items()},
        by=signer.username,
        reason=reason,
    )
    session.flush()
    return _spec_view(session, record, in_force=True)


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput("file", f"{file} is not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise BadInput("file", f"{file} cannot be read: {error.strerror}") from None


def _release_tables(text: str) -> dict[str, Any]:
    """The [release.<test>] tables of a `spec set` file; anything else in it is refused."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput("file", f"not valid TOML: {error}") from None
    for key in document:
        if key != "release":
            raise BadInput(key, "a specification file holds [release.<test>] tables only")
    tables = document.get("release")
    if not isinstance(tables, dict) or not tables:
        raise BadInput("release", "give at least one [release.<test>] table")
    for test, table in tables.items():
        if not isinstance(table, dict):
            raise BadInput(f"release.{test}", "must be a table: [release.<test>]")
    return tables


def _latest_spec(session: Session) -> SpecificationVersion:
    record = session.exec(
        select(SpecificationVersion).order_by(col(SpecificationVersion.version).desc()).limit(1)
    ).first()
    if record is None:
        raise NotFound("the database has no release specification; run `lims init`")
    return record


def _approvals(session: Session) -> dict[int, str]:
    """Each signed specification version's signature, as its manifestation."""
    signed = session.exec(
        select(Signature).where(col(Signature.specification_version).is_not(None))
    ).all()
    return {
        signature.specification_version: signing.manifestation(
            signature.username, signature.full_name, signature.signed_at, signature.meaning
        )
        for signature in signed
        if signature.specification_version is not None
    }


def _spec_view(
    session: Session, record: SpecificationVersion, *, in_force: bool
) -> SpecificationView:
    return SpecificationView(
        version=record.version,
        approved_by=record.approved_by,
        approved_at=record.approved_at,
        reason=record.reason,
        signature=_approvals(session).get(record.version),
        in_force=in_force,
        criteria=site.spec_tables(site.spec_of(record.spec, record.version)),
    )


# --- both -----------------------------------------------------------------------------------


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each key whose value differs, with its old and new value (None where it had none)."""
    return {
        key: (old.get(key), new.get(key))
        for key in [*old, *(key for key in new if key not in old)]
        if old.get(key) != new.get(key)
    }


def settings_in_force(settings: Settings) -> tuple[Settings, tuple[str, str]]:
    """settings with the site's records laid over them, and where each kind came from.

    For `lims config show`, which must work without a database, or before `lims init`:
    then the site's settings shown are the packaged defaults, and the reason is given.
    """
    try:
        with unit_of_work(settings, write=False, authenticated=False) as uow:
            if uow.site_version is None or uow.spec_version is None:
                raise NotFound("the database has no site records; run `lims init`")
            return uow.settings, (
                f"site record, version {uow.site_version}",
                f"specification, version {uow.spec_version}",
            )
    except (LimsError, SQLAlchemyError):
        unread = "default (no site record: the database cannot be read)"
        return settings, (unread, unread)
