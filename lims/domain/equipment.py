"""Equipment: its kinds, the steps that name it, and whether it could be used at a time."""

from __future__ import annotations

EQUIPMENT_KINDS = (
    "biosafety_cabinet",
    "incubator",
    "centrifuge",
    "cell_counter",
    "freezer",
    "ln2_tank",
    "refrigerator",
    "label_printer",
    "other",
)
# The steps that name the equipment they used (`--equipment ID`), as the site setting
# equipment.required names them, with the command each is.
EQUIPMENT_STEPS = {
    "culture_start": "culture start",
    "culture_split": "culture split",
    "passage_log": "passage log",
    "lot_formulate": "lot formulate",
    "qc_record": "qc record",
    "count_import": "count import",
    "culture_freeze": "culture freeze",
    "bank_thaw": "bank thaw",
}
CALIBRATION_RESULTS = ("pass", "fail")
