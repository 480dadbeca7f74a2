"""A guided tour on a fresh database: what lims records, start to finish, so far.

The tour is lims.scenario's full path, narrated by `lims demo` (lims/cli/demo.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from lims.config import Settings, load_settings
from lims.domain.spec import OOS
from lims.domain.states import DEVIATION
from lims.errors import RuleViolation
from lims.scenario import (
    COUNTED_PASSAGE,
    INTERIM_BY_METHOD,
    PASSING,
    QC_AFTER_FORMULATION,
    STERILITY_METHOD,
    VEHICLE_ML,
    Clock,
    Scenario,
    staff,
)
from lims.services import (
    aspirates,
    bank,
    counts,
    cultures,
    deviations,
    equipment,
    lots,
    qc,
    reports,
    samples,
    shipments,
    site,
    storage,
    trace,
    vials,
)
from lims.views.demo import (
    DemoResult,
    DemoUser,
    FreshProduct,
    Investigation,
    Recall,
    Storage,
)
from lims.views.equipment import EquipmentSummary

DEMO_PATIENT = {"code": "DEMO-0001", "study": "MSC-ALS demo"}
PASSAGES_BEFORE_HARVEST = 3  # the final harvest is five days after P3; P2 is counted
# QA tightens the viability criterion before the lot is formulated: the lot is judged by it.
SPEC_CHANGE = "[release.viability]\nmin = 80.0\n"
SPEC_REASON = "annual product review 2026: viability of the final product at least 80 %"
# CD105 first reads below its minimum: an out-of-specification result, investigated.
FIRST_CD105 = "91.0"
CD105_RETEST = "97.1"
# Part of P3's harvest the flasks did not take (1.9e8 harvested, 1.5e8 reseeded) starts a
# second culture, two hours later: 30 T-175 flasks at about 5,700 cells/cm².
SPLIT = {"seeded": 30_000_000, "vessels": 30, "area_cm2": 5250}
SPLIT_AFTER_HARVEST = timedelta(hours=2)
# A 48-hour product outlives no sterility culture: it is released on a Gram stain and an
# automated culture negative to date, its final sterility result pending; endotoxin reads
# below the method's range.
ON_INTERIM_RESULTS = {
    **{test: value for test, value in PASSING.items() if test != "sterility"},
    "endotoxin": "<0.5",
    **{test: value for tests in INTERIM_BY_METHOD.values() for test, value in tests.items()},
}
STERILITY_DAYS = 7
# QA's register: a cabinet and an incubator, each certified a month before collection for a
# year; every bench step names those it used. Certificates as a service engineer's.
EQUIPMENT = (
    ("BSC-01", "biosafety_cabinet", "Class II cabinet, room 2.14", "CERT-BSC-2026-031"),
    ("INC-01", "incubator", "CO2 incubator, room 2.14", "CERT-INC-2026-077"),
)
CALIBRATED_BEFORE_COLLECTION = timedelta(days=30)
CALIBRATION_INTERVAL_DAYS = 365
AT_THE_BENCH = {
    "culture_start": ("BSC-01", "INC-01"),
    "culture_split": ("BSC-01", "INC-01"),
    "passage_log": ("BSC-01", "INC-01"),
    "lot_formulate": ("BSC-01",),
    "culture_freeze": ("BSC-01",),
}
# A liquid-nitrogen tank with a 9 x 9 box: what is left of P3's harvest after the split is
# frozen in it as a backup, and two samples of the lot are retained beside it.
BOX = "LN2-1/rack-1/box-01"
STORAGE = (("LN2-1", "tank"), ("LN2-1/rack-1", "rack"))
BOX_GRID = {"rows": 9, "columns": 9}
BACKUP = {"cells_per_vial": 5_000_000, "vials": 2, "medium": "CryoStor CS10"}
FROZEN_AFTER_SPLIT = timedelta(hours=1)
RETAINED = 2
RETAINED_AFTER_FORMULATION = timedelta(hours=1)
ADMINISTRATION = {"route": "intraspinal", "physician": "Dr A. Rossi (neurosurgery)"}
# Where the first vial is taken to be given: the site setting `sites`, set by the admin.
THEATRE = {
    "code": "OR-1",
    "name": "Neurosurgery operating theatre",
    "address": "Example University Hospital, 1 Example Street, block B, 2nd floor",
}
SHIPMENT = {"to": THEATRE["code"], "courier": "hospital porter", "logger": "TL-0042"}


def demo_settings(directory: Path) -> Settings:
    directory = directory.resolve()
    return load_settings(home=directory, database_url=f"sqlite:///{directory / 'lims.db'}")


def run_demo(directory: Path) -> DemoResult:
    """Create the database in directory, its users, and walk through the work so far."""
    settings = demo_settings(directory)
    assert settings.sqlite_path is not None
    if settings.sqlite_path.exists():
        raise RuleViolation(
            f"{directory} already holds a lims database; give --dir a new or empty directory"
        )
    people = staff()
    admin, technician, reviewer = (person.username for person in people)
    lab = Scenario.initialise(settings, people, Clock.formulating_yesterday())

    lab.login(admin)
    lab.run(
        site.set_site,
        key="sites",
        value=json.dumps([THEATRE]),
        reason="vials go to the neurosurgery theatre to be given",
    )
    lab.login(reviewer)
    spec = lab.run(
        site.set_spec,
        file=_spec_file(settings),
        reason=SPEC_REASON,
        password=lab.people[reviewer].password,
    )

    registered = _registers(lab)
    lab.equipment = AT_THE_BENCH

    lab.login(technician)
    patient = lab.patient(**DEMO_PATIENT)
    din = lab.aspirate(patient=patient.code).din.code
    lab.add_reagents()
    culture = lab.culture(din).summary.culture_id
    lab.passage(culture, 1)
    counted = lab.counted_passage(culture, COUNTED_PASSAGE, settings.home, technician)
    last = lab.passage(culture, PASSAGES_BEFORE_HARVEST)
    count = lab.read(counts.show_count, count=counted.count.count_id)
    split_at = last.harvested_at + SPLIT_AFTER_HARVEST
    split = lab.run_dated(
        cultures.split_culture,
        split_at,
        **lab.equipped("culture_split", {"culture": culture, "at": split_at, **SPLIT}),
    )
    frozen_at = split_at + FROZEN_AFTER_SPLIT
    frozen = lab.run_dated(
        bank.freeze,
        frozen_at,
        **lab.equipped(
            "culture_freeze", {"culture": culture, "into": BOX, "at": frozen_at, **BACKUP}
        ),
    )
    # As the technician saw them before the final harvest: the culture still active.
    received = lab.read(aspirates.show_aspirate, din=din)
    grown = lab.read(cultures.show_culture, culture=culture)
    # The patient's own CSF, taken on the morning of the final harvest, suspends the cells.
    csf = lab.csf(patient.code).din.code
    formulated = lab.formulate(culture, vehicle_din=csf, vehicle_ml=VEHICLE_ML)
    vehicle = lab.read(aspirates.show_aspirate, din=csf)
    lot = formulated.summary.lot_id
    retained_at = formulated.summary.formulated_at + RETAINED_AFTER_FORMULATION
    retained = lab.run_dated(
        samples.retain_samples, retained_at, lot=lot, count=RETAINED, into=BOX, at=retained_at
    )
    box = lab.read(storage.show_location, path=BOX)
    late_entries = [
        *(donation.din.display for donation in (received, vehicle) if donation.late_entry),
        *(c.summary.culture_id for c in (grown, split) if c.summary.late_entry),
        *(passage.passage_id for passage in grown.passages if passage.late_entry),
        *([lot] if formulated.summary.late_entry else []),
        *(vial.bank_vial_id for vial in frozen.bank_vials if vial.late_entry),
        *(sample.item for sample in retained.samples if sample.late_entry),
    ]
    late_entry_hours = lab.read(site.show_site).settings["records.late_entry_hours"]
    investigation = _out_of_specification(lab, lot, reviewer, technician)
    released = lab.release(lot, signer=reviewer)  # on interim results: sterility pending
    written = lab.batch_record(lot, settings.home / f"batch-record-{lot}.pdf")
    lab.login(technician)
    # A sheet previewed first (counted as no label), then each vial's label printed once.
    labels = lab.labels(lot, settings.home / "labels", ("pdf",), preview=True)
    labels += lab.labels(lot, settings.home / "labels", ("png",))
    scan = lab.scan(lot, patient.code)
    fresh, recall = _hold_administer_recall(lab, lot, patient.code, reviewer, technician)
    traced = lab.read(trace.trace, item=fresh.given.vial_id)
    lab.logout()
    return DemoResult(
        settings=settings,
        users=[DemoUser(**asdict(person)) for person in people],
        spec=spec,
        patient=patient,
        aspirate=received,
        vehicle=vehicle,
        culture=grown,
        count=count,
        split=split,
        equipment=registered,
        storage=Storage(frozen=frozen, retained=retained, box=box),
        late_entries=late_entries,
        late_entry_hours=late_entry_hours,
        investigation=investigation,
        lot=released,
        batch_record=written.path,
        batch_record_pages=written.pages,
        labels=labels,
        scan=scan,
        fresh=fresh,
        recall=recall,
        trace=traced,
        trail=lab.audit_trail(),
        verification=lab.verify_trail(),
    )


def _registers(lab: Scenario) -> list[EquipmentSummary]:
    """QA (logged in) registers the cabinet and incubator with their certificates, and the
    tank, rack and box the lab keeps cells in."""
    calibrated = lab.clock.collected - CALIBRATED_BEFORE_COLLECTION
    for code, kind, name, certificate in EQUIPMENT:
        lab.run(
            equipment.add_equipment,
            equipment=code,
            kind=kind,
            name=name,
            calibration_interval_days=CALIBRATION_INTERVAL_DAYS,
        )
        lab.run(equipment.calibrate, equipment=code, at=calibrated, certificate=certificate)
    for path, kind in STORAGE:
        lab.run(storage.add_location, path=path, kind=kind, temperature_c=-196)
    lab.run(storage.add_location, path=BOX, kind="box", temperature_c=-196, **BOX_GRID)
    return lab.read(equipment.list_equipment)


def _spec_file(settings: Settings) -> Path:
    file = settings.home / "spec-viability-80.toml"
    file.write_text(SPEC_CHANGE, encoding="utf-8")
    return file


def _out_of_specification(lab: Scenario, lot: str, reviewer: str, technician: str) -> Investigation:
    """Sterility is started and the rest recorded on interim results. CD105 fails, which opens
    a deviation; the sample proves mislabelled, QA invalidates the result and the retest
    recorded in the investigation counts."""
    started = lab.clock.day(27) + QC_AFTER_FORMULATION
    lab.run(
        qc.record_result,
        lot=lot,
        test="sterility",
        value="pending",
        method=STERILITY_METHOD,
        at=started,
        expected_final=started + timedelta(days=STERILITY_DAYS),
    )
    lab.record_qc(lot, {**ON_INTERIM_RESULTS, "cd105": FIRST_CD105})
    [opened] = [d for d in lab.read(lots.show_lot, lot=lot).deviations if d.kind == OOS]
    tested = started + timedelta(hours=2)
    lab.run(
        qc.record_result,
        lot=lot,
        test="cd105",
        value=CD105_RETEST,
        method="flow cytometry, fresh antibody lot",
        at=tested,
        investigation=opened.deviation_id,
    )
    lab.login(reviewer)
    closed = lab.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="the first tube was the isotype control, mislabelled; see INV-2026-014",
        password=lab.people[reviewer].password,
        invalidate=True,
    )
    lab.login(technician)
    results = [r for r in lab.read(lots.show_lot, lot=lot).results if r.test == "cd105"]
    return Investigation(opened=opened, closed=closed, results=results)


def _hold_administer_recall(
    lab: Scenario, lot: str, patient: str, reviewer: str, technician: str
) -> tuple[FreshProduct, Recall]:
    """QA holds the released lot and the bedside scan is refused; the hold is lifted, the
    first vial is shipped to the operating theatre, received there with its temperature in
    range, issued, its issuer acknowledging that sterility is pending, and given. The
    final sterility result comes back negative and QA completes the release. A late
    karyotype comes back abnormal: its deviation holds the lot, QA confirms the result and
    recalls the lot, and the vials not given are recalled."""
    first_scan, *_ = lab.label_payloads(lot)
    first = f"{lot}-V01"
    sign = {"password": lab.people[reviewer].password}
    lab.login(reviewer)
    held = lab.run(lots.hold, lot=lot, reason="incubator 2 alarm log under review", **sign)
    lab.login(technician)
    refused = lab.run(vials.verify, scan=first_scan, patient=patient)
    lab.login(reviewer)
    lab.run(lots.unhold, lot=lot, reason="alarm was a sensor fault; no excursion", **sign)
    lab.login(technician)
    sent = lab.run(shipments.create_shipment, **SHIPMENT).shipment_id
    lab.run(shipments.add_vial, shipment=sent, vial=first, scan=first_scan)
    lab.run(shipments.dispatch, shipment=sent)
    shipped = lab.run(
        shipments.receive, shipment=sent, scans=[first_scan], temperature_ok="yes"
    ).shipment
    issued = lab.run(
        vials.issue, vial=first, scan=first_scan, patient=patient, acknowledge_pending=True
    )
    given = lab.run(
        vials.administer, vial=first, scan=first_scan, patient=patient, **ADMINISTRATION
    )
    final = lab.run(
        qc.record_result, lot=lot, test="sterility", value="negative", method=STERILITY_METHOD
    )
    lab.login(reviewer)
    completed = lab.run(lots.complete, lot=lot, **sign)
    lab.login(technician)
    lab.run(qc.record_result, lot=lot, test="karyotype", value="abnormal", method="G-banding")
    late = lab.read(lots.show_lot, lot=lot)
    [opened] = [d for d in late.deviations if d.kind == OOS and DEVIATION.pending(d.status)]
    lab.login(reviewer)
    lab.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="repeat metaphase count confirms trisomy 8 in 4 of 20 cells",
        confirm=True,
        **sign,
    )
    recalled = lab.run(lots.recall, lot=lot, reason="late karyotype abnormal, confirmed", **sign)
    notice = lab.run(
        reports.write_recall_notice, lot=lot, out=lab.settings.home / f"recall-{lot}.pdf"
    )
    notice.files.publish()
    fresh = FreshProduct(
        shipped=shipped, issued=issued, given=given, final=final, completed=completed
    )
    return fresh, Recall(
        held=held, refused=refused, late=late, recalled=recalled, notice=notice.path
    )
