"""A lab built through the services, one step at a time: the demo's tour, the benchmarks' labs
and the tests' fixtures all start here.

The demo ships in the wheel, so this builder lives in the package, and it is the
one place that says what a plausible run of the reference process looks like
(DESIGN.md; Pittenger et al. 1999, Mazzini et al. 2003): the staff, the patient,
the aspirate, the reagent lots, the passage schedule, the patient's CSF and the
formulation suspended in it, and QC results that pass the default release
specification. Every value is a
default that a keyword overrides.

Each step is one unit of work as the station's logged-in user, as one command at
the bench is, so a caller stops wherever it needs: a bench with a culture
growing, a lot awaiting QC, a released lot with its labels. Times come from a
Clock (days after the aspirate was collected), never from when the scenario
runs, so derived values (population doublings, doubling times, expiries) are
the same on every run. Importing it loads no PDF, image or migration library:
lims.documents and lims.db load those inside the steps that need them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from lims import audit, auth
from lims.config import Settings
from lims.domain.ids import CultureId, PassageId
from lims.domain.timeliness import entered_late
from lims.errors import LimsError, NotFound
from lims.models import Patient, Vial
from lims.services import (
    aspirates,
    bindings,
    counts,
    cultures,
    instrument_files,
    lookup,
    lots,
    patients,
    printing,
    qc,
    reagents,
    reports,
    screening,
    sessions,
    users,
    vials,
)
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views.bench import AspirateView, CultureDetail, PassageView, PatientView
from lims.views.counts import CountView
from lims.views.quality import LotDetail, WrittenReport
from lims.views.release import CriterionView
from lims.views.trail import AuditView, ChainVerification
from lims.views.vials import Verification

Result = TypeVar("Result")

# The staff of a small lab: (username, full name, role); the administrator first.
STAFF = (
    ("admin", "Ada Admin", "admin"),
    ("tech", "Tom Tech", "technician"),
    ("qa", "Quinn QA", "qa"),
)
PATIENT_CODE = "PT-0001"
PATIENT = {"code": PATIENT_CODE, "initials": "MR", "birth_year": 1958, "study": "MSC-ALS"}
CONSENTED_BEFORE_COLLECTION = timedelta(days=7)
# Bone marrow from the iliac crest, received two hours later; the culture plated three after.
ASPIRATE = {
    "volume_ml": 30,
    "anticoagulant": "sodium heparin",
    "tnc": 610_000_000,
    "temperature_c": 18,
}
RECEIVED_AFTER_COLLECTION = timedelta(hours=2)
# Why a step of the scenario's past is typed now: a tour or a test records days gone by.
LATE_REASON = "transcribed from the paper bench record"
STARTED_AFTER_COLLECTION = timedelta(hours=5)
# Reagent lots of a Pittenger-style expansion: gradient, medium, serum, dissociation enzyme.
REAGENTS = (
    ("Percoll 1.073", "P-1107", "Cytiva"),
    ("MEM alpha", "2411A", "Gibco"),
    ("FBS MSC-qualified", "F-0932", "Gibco"),
    ("TrypLE Express", "2409B", "Gibco"),
)
REAGENT_SHELF_LIFE = timedelta(days=180)
START_REAGENTS = ("Percoll 1.073:P-1107", "MEM alpha:2411A", "FBS MSC-qualified:F-0932")
PASSAGE_REAGENTS = ("TrypLE Express:2409B", "MEM alpha:2411A")
# Mononuclear cells from the Percoll gradient, plated in five T175 flasks (P0).
CULTURE = {"mnc": 240_000_000, "vessels": 5, "area_cm2": 875, "reagents": START_REAGENTS}
# Pittenger: the primary culture is passaged at day 12, then every 5 days, at 80-90 %
# confluence, reseeded near 5,000 cells/cm². Five passages (the default passage limit),
# none breaking a bench limit: (harvested, viability %, reseeded, vessels, area cm²).
FIRST_PASSAGE_DAY = 12
PASSAGE_EVERY_DAYS = 5
PASSAGE_FIELDS = ("harvested", "viability", "seeded", "vessels", "area_cm2")
PASSAGES = (
    (4_200_000, 94.0, 4_200_000, 5, 875.0),
    (29_000_000, 93.0, 26_000_000, 30, 5_250.0),
    (190_000_000, 91.0, 150_000_000, 5, 31_800.0),
    (600_000_000, 92.0, 150_000_000, 5, 31_800.0),
    (640_000_000, 90.0, 150_000_000, 5, 31_800.0),
)
AT_EACH_PASSAGE = {"confluence": 85, "reagents": PASSAGE_REAGENTS}
# P2 is counted on a Vi-CELL BLU, the cells resuspended in 10 mL: the demo imports the
# instrument's export (written by vicell_blu_export, as the instrument would) and the
# passage takes its numbers from it. Viable 2.90x10^6/mL x 10 mL = the schedule's 2.9e7.
COUNTED_PASSAGE = 2
COUNT_SUSPENSION_ML = 10
COUNTED_AFTER_HARVEST = timedelta(minutes=20)
VICELL_BLU_COLUMNS = (
    "Sample ID,Cell count,Viable cells,Total (x10^6) cells/mL,Viable (x10^6) cells/mL,"
    "Viability (%),Average diameter (μm),Average viable diameter (μm),"
    "Average circularity,Average viable circularity,Average cells per image,"
    "Average background intensity,Bubble count,Cluster count,Images for analysis,Cell type,"
    "Minimum Diameter (μm),Maximum Diameter (μm),Images,Cell sharpness,"
    "Minimum circularity,Decluster degree,Aspiration cycles,Viable spot brightness (%),"
    "Viable spot area (%),Mixing cycles,Analysis date/time,Reanalysis date/time,"
    "Analysis by,Reanalysis by,Dilution,Wash,Tag"
)
# The final harvest five days after P3, into four vials of 5x10^7 cells in 2 mL.
FORMULATION_DAY = 27
FORMULATION = {
    "harvested": 1_100_000_000,
    "viability": 93,
    "vials": 4,
    "cells_per_vial": 50_000_000,
    "volume_ml": 2,
    "reagents": ("TrypLE Express:2409B",),
}
# Mazzini: the cells are suspended in the patient's own CSF, taken by lumbar puncture on the
# morning of the formulation and kept cold: 10 mL, 8 of them drawn into the four vials.
CSF = {"volume_ml": 10, "temperature_c": 4}
CSF_BEFORE_FORMULATION = timedelta(hours=3)
CSF_IN_TRANSIT = timedelta(minutes=40)
VEHICLE_ML = 8
QC_AFTER_FORMULATION = timedelta(hours=3)
STERILITY_METHOD = "BacT/ALERT, 7 d"
# A result for every test the default specification requires, each passing, by its method.
PASSING_BY_METHOD = {
    "trypan blue": {"viability": "92.4"},
    STERILITY_METHOD: {"sterility": "negative"},
    "NAT": {"mycoplasma": "negative"},
    "LAL kinetic chromogenic": {"endotoxin": "0.8"},
    "flow cytometry": {
        "cd73": "99.2",
        "cd90": "98.7",
        "cd105": "97.1",
        "cd45": "0.6",
        "cd34": "0.4",
        "cd14": "0.9",
        "cd19": "0.2",
        "hla_dr": "0.7",
    },
}
PASSING = {test: value for tests in PASSING_BY_METHOD.values() for test, value in tests.items()}
# What a fresh product is released on while its final sterility result is pending.
INTERIM_BY_METHOD = {
    "Gram stain": {"gram_stain": "negative"},
    "BacT/ALERT, no growth at 18 h": {"sterility_interim": "negative"},
}
METHOD_OF = {
    test: method
    for method, tests in (*PASSING_BY_METHOD.items(), *INTERIM_BY_METHOD.items())
    for test in tests
}


@dataclass(frozen=True)
class Person:
    """Someone with an account in the lab, and the password they log in and sign with."""

    username: str
    full_name: str
    role: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class InstrumentSample:
    """One sample as a cell counter reports it: densities in cells/mL, viability in %."""

    sample: str
    viable_per_ml: float
    viability: float
    analysed_at: datetime  # the instrument's clock, read in the station's zone
    operator: str


def vicell_blu_export(samples: Sequence[InstrumentSample], zone: tzinfo) -> str:
    """A Vi-CELL BLU results export (CSV, one row per sample, 10^6 cells/mL) of the samples,
    as the instrument writes it: the demo's counts come from a file, as at the bench."""
    rows = [VICELL_BLU_COLUMNS]
    for sample in samples:
        viable = sample.viable_per_ml / 1e6
        total = viable * 100 / sample.viability
        # The instrument counts about 2,500 cells per 10^6/mL in its 100 images.
        counted = round(total * 2500)
        wall = sample.analysed_at.astimezone(zone)
        analysed = f"{wall.month}/{wall.day}/{wall.year} {wall.hour}:{wall.minute:02d}"
        rows.append(
            f"{sample.sample},{counted},{round(counted * sample.viability / 100)},"
            f"{total:.2f},{viable:.2f},{sample.viability:g},17.62,17.85,0.88,0.89,"
            f"{round(counted / 100)},134,0,0,100,Mammalian,6,30,100,7,0.1,Medium,3,50,5,3,"
            f"{analysed},,{sample.operator},,1,Normal Wash,"
        )
    return "\n".join(rows) + "\n"


def temporary(person: Person) -> str:
    """The password an administrator types for person's new account, until they change it."""
    return "temporary " + person.password


def staff(password: str | None = None) -> list[Person]:
    """STAFF as people: each with the password given, or else a new random one of their own."""
    return [Person(*member, password or secrets.token_urlsafe(12)) for member in STAFF]


@dataclass(frozen=True)
class Clock:
    """The scenario's times, counted from when the aspirate was collected."""

    collected: datetime

    @classmethod
    def days_ago(cls, days: float) -> Clock:
        """Collected so many days before now, on the hour (whole hours read well in a tour)."""
        collected = utcnow() - timedelta(days=days)
        return cls(collected.replace(minute=0, second=0, microsecond=0))

    @classmethod
    def formulating_yesterday(cls) -> Clock:
        """Collected so that the lot is formulated yesterday: in date today, for release."""
        return cls.days_ago(FORMULATION_DAY + 1)

    def day(self, days: float) -> datetime:
        """A time so many days after collection."""
        return self.collected + timedelta(days=days)

    @property
    def received(self) -> datetime:
        return self.collected + RECEIVED_AFTER_COLLECTION

    @property
    def started(self) -> datetime:
        return self.collected + STARTED_AFTER_COLLECTION


@dataclass
class Scenario:
    """A lab's database seen from one station: its people, the station's login, and the steps.

    `on(clock)` and `station(settings)` give the same lab on another time line or
    at another station (another home, so another session); people are shared.
    """

    settings: Settings
    clock: Clock
    people: dict[str, Person] = field(default_factory=dict)
    # The equipment each step names unless told (equipment.required's step keys): what the
    # bench uses once the lab has registered its cabinets and incubators.
    equipment: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def initialise(cls, settings: Settings, people: Sequence[Person], clock: Clock) -> Scenario:
        """A new database at the newest schema: the first person, an administrator, creates it
        (as `lims init`) and, logged in, adds the others."""
        admin, *others = people
        users.initialise(
            settings, username=admin.username, full_name=admin.full_name, password=admin.password
        )
        lab = cls(settings, clock, {admin.username: admin})
        if others:
            lab.add_people(*others)
        return lab

    def on(self, clock: Clock) -> Scenario:
        return replace(self, clock=clock)

    def station(self, settings: Settings) -> Scenario:
        return replace(self, settings=settings)

    # --- units of work --------------------------------------------------------------------

    def run(self, service: Callable[..., Result], **values: Any) -> Result:
        """One service call in one unit of work, as the station's user: one command's worth."""
        with unit_of_work(self.settings) as uow:
            return service(uow, **values)

    def read(self, service: Callable[..., Result], **values: Any) -> Result:
        with unit_of_work(self.settings, write=False) as uow:
            return service(uow, **values)

    # --- people ---------------------------------------------------------------------------

    def add_people(self, *people: Person) -> None:
        """Accounts for people, created by the lab's administrator, who is left logged in.

        The administrator types a temporary password for each; each person then logs in
        and, as lims requires before anything else, changes it to their own.
        """
        admin = next(person for person in self.people.values() if person.role == "admin")
        self.login(admin.username)
        with unit_of_work(self.settings) as uow:
            for person in people:
                users.create_user(uow, **asdict(replace(person, password=temporary(person))))
        self.people |= {person.username: person for person in people}
        for person in people:
            self.login(person.username, temporary(person))
            self.change_password(temporary(person), person.password)
        self.login(admin.username)

    def change_password(self, current: str, new: str) -> None:
        """`lims passwd` as the station's user."""
        with unit_of_work(self.settings, while_password_change_due=True) as uow:
            users.change_password(uow, current=current, new=new)

    def login(self, username: str, password: str | None = None) -> None:
        """Log in at this station, with the person's own password unless another is given."""
        if password is None:
            password = self.people[username].password
        with unit_of_work(self.settings, authenticated=False) as uow:
            token, _ = sessions.login(uow, username=username, password=password)
        auth.write_token(self.settings, token)

    def logout(self) -> None:
        with unit_of_work(self.settings, authenticated=False) as uow:
            sessions.logout(uow)
        auth.remove_token(self.settings)

    # --- the bench ------------------------------------------------------------------------

    def patient(self, **values: Any) -> PatientView:
        consented = (self.clock.collected - CONSENTED_BEFORE_COLLECTION).date()
        return self.run(patients.add_patient, **{**PATIENT, "consent_date": consented, **values})

    def aspirate_values(self) -> dict[str, Any]:
        """An aspirate of the default patient, received as the bench receives it."""
        times = {"collected_at": self.clock.collected, "received_at": self.clock.received}
        return {"patient": PATIENT_CODE, **times, **ASPIRATE}

    def aspirate(self, **values: Any) -> AspirateView:
        values = {**self.aspirate_values(), **values}
        return self.run_dated(aspirates.receive, values.get("received_at"), **values)

    def equipped(self, step: str, values: dict[str, Any]) -> dict[str, Any]:
        """values, naming the equipment the bench uses for step unless they name some."""
        named = self.equipment.get(step)
        return {"equipment": list(named), **values} if named else values

    def run_dated(self, service: Callable[..., Result], dated: object, **values: Any) -> Result:
        """`run` for a step dated `dated`: typed now, as the scenario types every step, it
        carries LATE_REASON where the site's rule makes it a late entry (unless a reason is
        given)."""
        with unit_of_work(self.settings) as uow:
            hours = uow.settings.records.late_entry_hours
            if (
                "late_reason" not in values
                and isinstance(dated, datetime)
                and entered_late(dated, utcnow(), hours)
            ):
                values["late_reason"] = LATE_REASON
            return service(uow, **values)

    def add_reagents(self, expires: date | None = None) -> None:
        """REAGENTS registered, usable for REAGENT_SHELF_LIFE after collection unless told."""
        expires = expires or (self.clock.collected + REAGENT_SHELF_LIFE).date()
        with unit_of_work(self.settings) as uow:
            for name, lot, supplier in REAGENTS:
                reagents.add_reagent(uow, name=name, lot=lot, expires=expires, supplier=supplier)

    def culture_values(self) -> dict[str, Any]:
        """A primary culture's start, less its aspirate's DIN."""
        return {**CULTURE, "at": self.clock.started}

    def culture(self, din: str, **values: Any) -> CultureDetail:
        values = self.equipped("culture_start", {**self.culture_values(), **values})
        return self.run_dated(cultures.start_culture, values.get("at"), din=din, **values)

    def primary_culture(self, patient: str = PATIENT_CODE, **values: Any) -> CultureDetail:
        """A fresh aspirate of PATIENT (registered first if new) and its primary culture."""
        try:
            self.read(patients.show_patient, code=patient)
        except NotFound:
            self.patient(code=patient)
        return self.culture(self.aspirate(patient=patient).din.code, **values)

    def passage_values(self, number: int) -> dict[str, Any]:
        """Passage NUMBER (1-5) of the schedule, as the bench logs it, on its day."""
        at = self.clock.day(FIRST_PASSAGE_DAY + PASSAGE_EVERY_DAYS * (number - 1))
        counts = dict(zip(PASSAGE_FIELDS, PASSAGES[number - 1], strict=True))
        return {**counts, **AT_EACH_PASSAGE, "at": at}

    def passage(self, culture: str, number: int = 1, **values: Any) -> PassageView:
        values = self.equipped("passage_log", {**self.passage_values(number), **values})
        return self.run_dated(cultures.log_passage, values.get("at"), culture=culture, **values)

    def import_counts(self, path: Path, samples: Sequence[InstrumentSample]) -> list[CountView]:
        """The samples written at path (a new file) as a Vi-CELL BLU export, then imported
        as `lims count import` does."""
        content = vicell_blu_export(samples, self.settings.tz).encode()
        with path.open("xb") as file:
            file.write(content)
        reading = instrument_files.read(
            content, path.name, "vicell-blu", self.settings.tz, utcnow()
        )
        return self.run(counts.store, file_name=path.name, content=content, read=reading)

    def counted_passage(
        self, culture: str, number: int, directory: Path, operator: str
    ) -> PassageView:
        """Passage NUMBER of the schedule, its harvest counted on a Vi-CELL BLU by `operator`
        just after harvest (the export written in `directory`, named after the passage, and
        imported) and taken from that count."""
        values = self.equipped("passage_log", self.passage_values(number))
        harvested, viability = values.pop("harvested"), values.pop("viability")
        sample = PassageId(CultureId.parse(culture), number).code
        [count] = self.import_counts(
            directory / f"vicell-blu-{sample}.csv",
            [
                InstrumentSample(
                    sample=sample,
                    viable_per_ml=harvested / COUNT_SUSPENSION_ML,
                    viability=viability,
                    analysed_at=values["at"] + COUNTED_AFTER_HARVEST,
                    operator=operator,
                )
            ],
        )
        return self.run_dated(
            cultures.log_passage,
            values["at"],
            culture=culture,
            **values,
            count=count.count_id,
            suspension_ml=COUNT_SUSPENSION_ML,
        )

    def expand(self, culture: str, passages: int) -> list[PassageView]:
        """The schedule's first `passages` passages, each its own command."""
        return [self.passage(culture, number) for number in range(1, passages + 1)]

    # --- the lot and QA -------------------------------------------------------------------

    def csf(self, patient: str = PATIENT_CODE, **values: Any) -> AspirateView:
        """The patient's CSF, received to suspend a lot in: collected CSF_BEFORE_FORMULATION
        before the scenario's formulation unless told."""
        collected = self.clock.day(FORMULATION_DAY) - CSF_BEFORE_FORMULATION
        times = {"collected_at": collected, "received_at": collected + CSF_IN_TRANSIT}
        values = {"patient": patient, "material": "csf", **times, **CSF, **values}
        return self.run_dated(aspirates.receive, values["received_at"], **values)

    def formulate(self, culture: str, **values: Any) -> LotDetail:
        """The culture's final harvest formulated, suspended unless told in VEHICLE_ML of its
        patient's CSF, received for it CSF_BEFORE_FORMULATION before."""
        values = {**FORMULATION, "at": self.clock.day(FORMULATION_DAY), **values}
        values = self.equipped("lot_formulate", values)
        if "vehicle" not in values and "vehicle_din" not in values:
            values = {**self._vehicle_for(culture, values["at"]), **values}
        return self.run_dated(lots.formulate, values.get("at"), culture=culture, **values)

    def _vehicle_for(self, culture: str, at: object) -> dict[str, Any]:
        """The vehicle of a lot formulated from culture at `at` (now, unless a time): the
        patient's CSF received for it, or nothing where the culture is no patient's (a step
        refused for what it names, as the formulation then says)."""
        try:
            din = CultureId.read(culture, "culture").din.code
            patient = self.read(aspirates.show_aspirate, din=din).patient
        except LimsError:
            return {}
        formulated = at if isinstance(at, datetime) else utcnow()
        collected = formulated - CSF_BEFORE_FORMULATION
        donation = self.csf(patient, collected_at=collected, received_at=collected + CSF_IN_TRANSIT)
        return {"vehicle_din": donation.din.code, "vehicle_ml": VEHICLE_ML}

    def record_qc(
        self, lot: str, results: Mapping[str, str] = PASSING, **values: Any
    ) -> list[CriterionView]:
        """QC results (by default every one passing) entered together, with their methods."""
        values = {"at": self.clock.day(FORMULATION_DAY) + QC_AFTER_FORMULATION, **values}
        with unit_of_work(self.settings) as uow:
            return [
                qc.record_result(
                    uow, lot=lot, test=test, value=value, method=METHOD_OF.get(test), **values
                )
                for test, value in results.items()
            ]

    def release(self, lot: str, signer: str, password: str | None = None) -> LotDetail:
        """SIGNER logs in and releases the lot, signing with their password unless another."""
        self.login(signer)
        signed_with = self.people[signer].password if password is None else password
        return self.run(lots.release, lot=lot, password=signed_with)

    # --- documents and the chain of identity ----------------------------------------------

    def batch_record(self, lot: str, out: Path) -> WrittenReport:
        written = self.run(reports.write_batch_record, lot=lot, out=out)
        written.files.publish()
        return written

    def labels(
        self,
        lot: str,
        out: Path,
        formats: Sequence[str] = ("png", "pdf"),
        *,
        preview: bool = False,
    ) -> list[Path]:
        """The lot's labels in each format, one print each, into out (made if need be); as
        previews, watermarked and counted as no label, with `preview`."""
        out.mkdir(exist_ok=True)
        files: list[Path] = []
        for fmt in formats:
            job = self.run(printing.print_labels, lot=lot, fmt=fmt, out=out, preview=preview)
            job.files.publish()
            files += job.files.paths
        return files

    def label_payloads(self, lot: str, patient: str | None = None) -> list[str]:
        """The QR payload printing.label_for puts on each vial's label, or on the same label
        printed for another patient (what a mix-up at the bedside would scan)."""
        from sqlmodel import col, select

        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            found = lookup.lot(uow.session, lot)
            owner = uow.session.get(Patient, found.patient_id)
            assert owner is not None
            if patient is not None:
                owner = Patient(code=patient, initials=owner.initials, birth_year=owner.birth_year)
            in_lot = select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
            vehicle = lots.vehicle_din(uow.session, found)
            assert found.patient_id is not None
            statement = screening.statement_for(uow.session, uow.settings, found.patient_id)
            return [
                printing.label_for(
                    uow.settings,
                    found,
                    owner,
                    vial,
                    banner=None,
                    vehicle=vehicle,
                    statement=statement,
                ).symbol
                for vial in uow.session.exec(in_lot)
            ]

    def scan(self, lot: str, patient: str) -> Verification:
        """The first vial's QR code scanned against PATIENT, as at the bedside."""
        first, *_ = self.label_payloads(lot)
        return self.run(vials.verify, scan=first, patient=patient)

    # --- the record -----------------------------------------------------------------------

    def audit_trail(self) -> list[AuditView]:
        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            return audit.entries(uow.session)

    def verify_trail(self) -> ChainVerification:
        """The chain and the records bound to it, as `lims audit verify` checks them."""
        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            return bindings.verify(uow.session.connection())
