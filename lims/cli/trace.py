"""`lims trace ID`: the patient's whole tree of materials, from any id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from lims.cli.common import JsonOption, alarm, print_rich, print_view
from lims.cli.options import service_options
from lims.cli.service import read

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.trace import Trace, TraceNode, TraceRef


def trace(
    ctx: typer.Context,
    item: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="A DIN, culture, passage, lot, vial, bank vial, retained sample or shipment "
            "id, or a patient code.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Trace any id both ways: the patient's donations, cultures and splits, bank vials, lots,
    vials, shipments, administrations and events, each with its state, time and who. A
    record reached twice (a lot from a marrow donation suspended in a CSF donation, a
    shipment of several vials) is drawn once and referred to elsewhere as "see ID".

    \b
    Example:
      lims trace A999926000001-L1-V02
      lims trace PT-0001 --json
    """
    from lims.services import trace as tracing

    found, zone = read(tracing.trace, **service_options(ctx))
    print_view(found, as_json, print_trace, zone)


def print_trace(found: Trace, zone: tzinfo) -> None:
    from rich.tree import Tree

    def grow(branch: Tree, node: TraceNode | TraceRef) -> None:
        child = branch.add(_label(node, found.traced, zone))
        for below in getattr(node, "children", ()):
            grow(child, below)

    root = Tree(_label(found.tree, found.traced, zone))
    for node in found.tree.children:
        grow(root, node)
    print_rich(root)


def _label(node: TraceNode | TraceRef, traced: str, zone: tzinfo) -> Any:
    from rich.text import Text

    from lims.timeutil import show_time
    from lims.views.trace import TraceRef

    if isinstance(node, TraceRef):
        return Text(f"{node.ref} (see above)", style="dim")
    label = Text()
    label.append(node.id, style="bold")
    label.append(f"  {node.kind.replace('_', ' ')}  ")
    state = node.state or "—"
    label.append_text(alarm(state) if node.alarm else Text(state))
    label.append(f"  {show_time(node.at, zone)}  {node.by or '—'}")
    if node.detail:
        label.append(f"  {node.detail}", style="dim")
    if node.id == traced:
        label.append("  ◀ traced", style="bold")
    return label
