"""The site's records: `lims site` (its settings) and `lims spec` (its release specification)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    PasswordStdinOption,
    new_area,
    print_record,
    print_table,
    print_view,
    read_password,
)
from lims.cli.options import ReasonOption
from lims.cli.service import read, run

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.site import SiteSettingsView, SpecificationSummary, SpecificationView

site_app = new_area("The site's settings, versioned in the database: show, set (admin).")
spec_app = new_area(
    "The release specification, versioned in the database: show, history, set (QA signature)."
)


@site_app.command("show")
def show_site(as_json: JsonOption = False) -> None:
    """Print the site's settings in force, and which version they are.

    \b
    Example:
      lims site show
      lims site show --json
    """
    from lims.services import site

    view, zone = read(site.show_site)
    print_view(view, as_json, _print_site, zone)


@site_app.command("set")
def set_site(
    key: Annotated[
        str, typer.Argument(help="The setting, dotted as in lims.toml: security.lockout_threshold.")
    ],
    value: Annotated[
        str, typer.Argument(help='JSON (24, true, "text", [...], {...}); a bare word is text.')
    ],
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Record a new version of the site's settings with one setting changed (admin only).

    The release specification changes only with `lims spec set`, and the station's own
    settings (home, database_url, timezone) in lims.toml or the environment.

    \b
    Example:
      lims site set security.lockout_threshold 3 --reason "SOP-IT-004 rev 2"
      lims site set facility.name "Turin Cell Factory" --reason "name on labels"
    """
    from lims.services import site

    view, zone = run(site.set_site, key=key, value=value, reason=reason)
    print_view(view, as_json, _print_site, zone)


def _print_site(view: SiteSettingsView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        f"Site settings, version {view.version}",
        {
            "recorded by": view.recorded_by,
            "recorded at": show_time(view.recorded_at, zone),
            "reason": view.reason,
        },
    )
    print_table(
        "Settings",
        ["setting", "value"],
        [(key, _shown(value)) for key, value in view.settings.items()],
    )


def _shown(value: object) -> object:
    """A setting's value as the table shows it: a list of tables (sites) one to a line,
    its values joined by dashes."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "\n".join(" — ".join(str(part) for part in item.values()) for item in value)
    return value


@spec_app.command("show")
def show_spec(
    version: Annotated[
        int | None,
        typer.Option("--version", metavar="N", help="That version. Default: the one in force."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a version of the release specification: each test and its criterion.

    \b
    Example:
      lims spec show
      lims spec show --version 1 --json
    """
    from lims.services import site

    view, zone = read(site.show_spec, version=version)
    print_view(view, as_json, _print_spec, zone)


@spec_app.command("history")
def spec_history(as_json: JsonOption = False) -> None:
    """List every version of the release specification, who approved it and why.

    \b
    Example:
      lims spec history
    """
    from lims.services import site

    views, zone = read(site.spec_history)
    print_view(views, as_json, _print_history, zone)


@spec_app.command("set")
def set_spec(
    file: Annotated[
        Path,
        typer.Argument(
            help="A TOML file of [release.<test>] tables, each laid over the version in force "
            "key by key; a new test must be defined completely."
        ),
    ],
    reason: ReasonOption,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Approve a new version of the release specification with your signature (QA only).

    Lots formulated from now on are judged by it; earlier lots keep their version.
    Sterility, mycoplasma and endotoxin stay required and never waivable, a positive
    sterility or mycoplasma result never passes, and endotoxin keeps a maximum.

    \b
    Example:
      printf '[release.endotoxin]\\nmax = 5.0\\n' > spec.toml
      lims spec set spec.toml --reason "intrathecal dose revised: 5 EU/mL"
    """
    from lims.services import site

    password = read_password(password_stdin, prompt="Password to sign the specification")
    view, zone = run(site.set_spec, file=file, reason=reason, password=password)
    print_view(view, as_json, _print_spec, zone)


def _print_history(views: list[SpecificationSummary], zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_table(
        "Release specification versions",
        ["version", "approved by", "approved at", "reason", "signature"],
        [
            (v.version, v.approved_by, show_time(v.approved_at, zone), v.reason, v.signature)
            for v in views
        ],
    )


def _print_spec(view: SpecificationView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        f"Release specification, version {view.version}" + (" (in force)" if view.in_force else ""),
        {
            "approved by": view.approved_by,
            "approved at": show_time(view.approved_at, zone),
            "reason": view.reason,
            "signature": view.signature,
        },
    )
    keys = ("kind", "description", "unit", "min", "max", "values", "passing")
    print_table(
        "Criteria",
        ["test", *keys, "required", "waivable"],
        [
            (
                test,
                *(", ".join(t[k]) if isinstance(t[k], list) else t[k] for k in keys),
                t["required"],
                t["waivable"],
            )
            for test, t in view.criteria.items()
        ],
    )
