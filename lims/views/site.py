"""The site's records: a version of its settings, and a version of its release specification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class SiteSettingsView:
    """A version of the site's settings; `settings` by dotted key, as in lims.toml."""

    version: int
    recorded_by: str | None  # None: stored by a migration from the packaged defaults
    recorded_at: datetime
    reason: str
    settings: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class SpecificationSummary:
    """A version of the release specification as `spec history` lists it."""

    version: int
    approved_by: str | None  # None: stored by a migration from the packaged defaults
    approved_at: datetime
    reason: str
    signature: str | None  # the QA signature's manifestation; the first version has none


@dataclass(frozen=True, kw_only=True)
class SpecificationView:
    """A version of the release specification: each test's [release.<test>] table."""

    version: int
    approved_by: str | None
    approved_at: datetime
    reason: str
    signature: str | None
    in_force: bool  # the latest version: lots formulated now are judged by it
    criteria: dict[str, dict[str, Any]]
