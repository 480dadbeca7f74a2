"""The site's records: its settings and its release specification, versioned in the database.

The latest version of each is in force; the unit of work lays them over the
station's settings before it authenticates anyone, so every rule reads the
site's own values through `uow.settings`. A lot is judged by the specification
version it was formulated under (`specification`). Validating the stored JSON
is cached by its text: commands at the bench pay two small queries, not a
validation, once a process has read a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from sqlmodel import Session, col, select

from lims import audit
from lims.config import SITE_SECTIONS, Settings, SiteSettings
from lims.domain.spec import Criterion, StoredSpec
from lims.errors import Unavailable
from lims.models import SiteSettingsVersion, SpecificationVersion, User
from lims.timeutil import utcnow

FIRST_VERSION_REASON = "lims init"
STORED_SPEC: TypeAdapter[dict[str, Criterion]] = TypeAdapter(StoredSpec)


@dataclass(frozen=True)
class InForce:
    """The station's settings with the site's records laid over them, and their versions."""

    settings: Settings
    site_version: int | None  # None only while `lims init` has yet to store the first
    spec_version: int | None


def canonical(value: Any) -> str:
    """The one text of a record's JSON: equal settings are equal text, and hash alike."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def site_values(settings: Settings | SiteSettings) -> dict[str, Any]:
    """The site's settings besides its specification, as a site_settings record holds them."""
    return {
        section: to_jsonable_python(getattr(settings, section))
        for section in SITE_SECTIONS
        if section != "release"
    }


def spec_tables(spec: Any) -> dict[str, dict[str, Any]]:
    """A specification as [release.<test>] tables, as a specifications record holds it."""
    return {test: criterion.as_table() for test, criterion in spec.items()}


@lru_cache(maxsize=16)
def site_settings_of(values: str, version: int) -> SiteSettings:
    try:
        return SiteSettings.model_validate_json(values)
    except ValidationError as error:
        raise _damaged("site settings", version, error) from None


@lru_cache(maxsize=16)
def spec_of(text: str, version: int) -> dict[str, Criterion]:
    try:
        return STORED_SPEC.validate_json(text)
    except ValidationError as error:
        raise _damaged("specification", version, error) from None


def _damaged(what: str, version: int, error: ValidationError) -> Unavailable:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    return Unavailable(
        f"{what} version {version} in the database is not valid ({key}: {first['msg']}); "
        "it was changed outside lims: restore it from a backup"
    )


def in_force(session: Session, settings: Settings) -> InForce:
    """settings with the latest site settings and specification laid over them."""
    site = session.exec(
        select(SiteSettingsVersion.version, SiteSettingsVersion.values)
        .order_by(col(SiteSettingsVersion.version).desc())
        .limit(1)
    ).first()
    spec = session.exec(
        select(SpecificationVersion.version, SpecificationVersion.spec)
        .order_by(col(SpecificationVersion.version).desc())
        .limit(1)
    ).first()
    if site is None or spec is None:
        if session.exec(select(User.id).limit(1)).first() is not None:
            # Falling back to the packaged defaults would undo whatever the site approved.
            raise Unavailable(
                "the site's settings or specification records are missing from the database "
                "(removed outside lims): restore the database from a backup"
            )
        return InForce(settings, None, None)  # `lims init` has yet to store version 1
    sections = site_settings_of(site[1], site[0])
    laid = settings.model_copy(
        update={
            **{name: getattr(sections, name) for name in type(sections).model_fields},
            "release": dict(spec_of(spec[1], spec[0])),  # a copy: the cached one is shared
        }
    )
    return InForce(laid, site[0], spec[0])


def specification(session: Session, version: int) -> dict[str, Criterion]:
    """The release specification of that version (a lot's: lots.spec_version)."""
    record = session.get(SpecificationVersion, version)
    if record is None:
        raise Unavailable(f"specification version {version} is missing from the database")
    return dict(spec_of(record.spec, version))  # a copy: the cached one is shared


def store_first_versions(session: Session, settings: Settings, *, by: str) -> None:
    """Version 1 of the site's settings and specification, from the settings `lims init` read."""
    now = utcnow()
    values = site_values(settings)
    tables = spec_tables(settings.release)
    first: dict[str, Any] = {"version": 1, "reason": FIRST_VERSION_REASON}
    session.add(
        SiteSettingsVersion(**first, values=canonical(values), recorded_by=by, recorded_at=now)
    )
    session.add(
        SpecificationVersion(**first, spec=canonical(tables), approved_by=by, approved_at=now)
    )
    audit.record_about(
        session, ("site_settings", "1"), "site.set", by=by, new=values, reason=FIRST_VERSION_REASON
    )
    audit.record_about(
        session, ("specification", "1"), "spec.set", by=by, new=tables, reason=FIRST_VERSION_REASON
    )
