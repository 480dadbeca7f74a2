"""Draw the example labels of this folder's README: `python labels/examples.py`.

Each is drawn by lims.documents.labels from its shipped template, with content shaped
as lims.services.printing gives it (a made-up patient, DIN and, on the bag, a made-up
ICCBBA product description code), at 600 dpi so that it reads on a screen. Drawn again
after a template or the drawing changes, they show what a printer is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lims.config import LabelSettings
from lims.documents import labels
from lims.domain import isbt128, screening
from lims.domain.ids import parse_din
from lims.domain.payload import Payload

HERE = Path(__file__).parent
SCREEN_DPI = 600
DIN = parse_din("A999926000001")
EXPIRES = datetime(2026, 12, 28, 13, 0, tzinfo=UTC)
VIAL = "A999926000001-L1-V03"
SITE = LabelSettings()


def example(symbology: str, product: isbt128.ProductCode | None) -> labels.Label:
    division = isbt128.division_text(3)
    symbol = (
        isbt128.compound_message(DIN, product, EXPIRES)
        if product is not None and symbology == "datamatrix"
        else Payload(VIAL, DIN.code, "PT-0001", EXPIRES).encode()
    )
    fields = (
        ("product", SITE.product, True),
        ("vial", f"Vial {VIAL}", False),
        (
            "product_code",
            product.eye_readable if product else f"product code not assigned, division {division}",
            False,
        ),
        ("patient", "Patient PT-0001  MR  born 1958", False),
        ("dose", "40,000,000 cells in 2 mL autologous CSF", False),
        ("expiry", "EXP 2026-12-28 14:00+01:00", True),
        ("storage", SITE.storage, False),
        ("route", SITE.route, False),
        ("facility", "Example Cell Therapy Facility", False),
        ("address", "Example Street 1, 00000 Example City", False),
        ("autologous", "FOR AUTOLOGOUS USE ONLY", True),
        ("infectious", screening.NOT_EVALUATED, True),
        ("caution", SITE.caution, False),
    )
    return labels.Label(
        VIAL, symbol, symbology, f"{DIN.fin} {DIN.year:02d} {DIN.sequence:06d}", DIN.check,
        DIN.isbt128, fields,
        "QUARANTINE — NOT FOR ADMINISTRATION", 0,
    )  # fmt: skip


def main() -> None:
    drawn = {
        "example-cryovial-label.png": ("cryovial", example("qr", None)),
        "example-vial-label.png": (
            "bag",
            example("datamatrix", isbt128.ProductCode("S1234", isbt128.AUTOLOGOUS, 3)),
        ),
    }
    for file, (name, label) in drawn.items():
        template = labels.load_template(name).model_copy(update={"dpi": SCREEN_DPI})
        (HERE / file).write_bytes(labels.render_png(template, label))
        print(HERE / file)


if __name__ == "__main__":
    main()
