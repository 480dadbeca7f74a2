"""Options and arguments more than one command takes, and how a command hands them on.

Defined once so that the same option reads the same in every command's help.
Light, like common: loaded with the command modules; nothing here touches the store.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="ISO",
        help="When it happened, e.g. 2026-11-25T14:30 (station's zone unless an offset "
        "is given). Default: now.",
    ),
]
LateReasonOption = Annotated[
    str | None,
    typer.Option(
        "--late-reason",
        metavar="TEXT",
        help="Why the step is entered late: required when --at lies more than "
        "records.late_entry_hours (site setting, default 24) before now; the step is then "
        "marked as a late entry wherever it is shown.",
    ),
]
ReagentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reagent",
        metavar="NAME:LOT",
        help="A reagent lot used in this step (repeat for each); it must not be expired.",
    ),
]
EquipmentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--equipment",
        metavar="ID",
        help="A piece of equipment from the register used in this step (repeat for each); it "
        "must be in service and within calibration at the step's time. The site setting "
        "equipment.required says which kinds a step must name.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace an existing file, but only one lims wrote and recorded (its SHA-256 "
        "unchanged since); never the database, a directory, a symbolic link or a device.",
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")]
# A step's cells taken from a count imported from a cell counter (`lims count import`).
CountOption = Annotated[
    str | None,
    typer.Option(
        "--count",
        metavar="CNT-…",
        help="Take the cells from this imported count instead of typing them (with "
        "--suspension-ml); it must be ok, unused and analysed within counts.max_age_hours "
        "(site setting, default 12) of the step.",
    ),
]
SuspensionOption = Annotated[
    str | None,
    typer.Option(
        "--suspension-ml",
        metavar="ML",
        help="With --count: the volume the counted cells are suspended in, 0.01-5000 mL; "
        "cells = the count's cells/mL × this volume.",
    ),
]
LotArgument = Annotated[str, typer.Argument(help="The lot id, e.g. A999926000001-L1.")]
CultureArgument = Annotated[str, typer.Argument(help="The culture id, e.g. A999926000001-C1.")]

# Options that choose how a command prints or asks, not what its service does.
_OWN_OPTIONS = frozenset({"as_json", "password_stdin"})


def service_options(ctx: typer.Context) -> dict[str, Any]:
    """A command's arguments and options, by name, for a service that takes them as they are.

    Where a command only carries what was typed to its service, its parameters are named
    as the service's keywords and passed on unread: the service checks them, and the
    command's signature is the one list of them. Left out are the command's own (--json,
    --password-stdin). A repeated option that was not given is empty rather than None, as
    the services' defaults are.
    """
    return {name: value for name, value in ctx.params.items() if name not in _OWN_OPTIONS}
