"""At scale: `lims culture show` among 1,000,000 passages, and `lims audit verify` over their trail.

The large database is loaded through SQLAlchemy Core in large batches, in
the order a lab would have recorded it (patients, aspirates, cultures and
passages of 10,000 cultures interleaved in time), with each record's audit
entry chained as the services would have written it. The culture shown is
also loaded, alone and identical, into an almost empty database: the floor.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from common import (
    LIMS,
    Bench,
    Database,
    Row,
    days,
    now,
    paired_medians,
    ratio_row,
    run_process,
    set_up_lab,
    show,
    timed,
)

BATCH = 20_000  # audit entries (about one per row loaded) per transaction
START_EVERY = timedelta(hours=4)  # a new culture every four hours
AREA_CM2 = 875.0  # five T175 flasks at every passage
VESSELS = 5
TECHNICIAN = "tech"


@dataclass(frozen=True)
class Scale:
    cultures: int
    passages: int  # per culture
    end: datetime  # the last passage of the last culture is a day before this

    def shown(self) -> int:
        """The culture shown: one from the middle of the history."""
        return self.cultures // 2


def scale_rows(bench: Bench) -> list[Row]:
    scale = Scale(
        cultures=200 if bench.quick else 10_000, passages=20 if bench.quick else 100, end=now()
    )
    large, small = bench.database("large"), bench.database("small")
    with timed(bench, f"loading {scale.cultures:,} cultures × {scale.passages} passages"):
        entries = load(large, scale, range(scale.cultures))
    load(small, scale, [scale.shown()])
    code = culture_code(scale, scale.shown())
    show_large, show_small = paired_medians(
        [
            run_process([*LIMS, "culture", "show", code], large.env()),
            run_process([*LIMS, "culture", "show", code], small.env()),
        ],
        bench.runs,
    )
    rows = [
        ratio_row(
            f"`lims culture show` among {scale.cultures * scale.passages:,} passages "
            f"of {scale.cultures:,} cultures",
            show_large,
            f"same culture ({scale.passages} passages), almost empty database",
            show_small,
            1.2,
            "ms",
        )
    ]
    return rows + audit_rows(bench, large, entries)


# --- the audit trail of the large database ------------------------------------------------


def audit_rows(bench: Bench, database: Database, entries: int) -> list[Row]:
    runs = 3  # each takes seconds at full size
    url = database.url
    verify, floor = paired_medians([lims_verify(url), plain_hash_chain(url)], runs)
    [command] = paired_medians([run_process([*LIMS, "audit", "verify"], database.env())], runs)
    return [
        Row(
            f"`audit.verify`, {entries:,} entries",
            "SHA-256 chain over the stored records, read in order",
            "≤ 2×",
            f"{show(verify, 's')} ({entries / verify:,.0f}/s)",
            show(floor, "s"),
            f"{verify / floor:.2f}×",
            "ok" if verify / floor <= 2 else "OVER",
        ),
        ratio_row(
            f"`lims audit verify` process, {entries:,} entries",
            command,
            "same",
            floor,
            None,
            "s",
        ),
    ]


def plain_hash_chain(database_url: str) -> Callable[[], object]:
    """The floor for verification: read the stored bytes in order and chain SHA-256 over them."""
    from lims import db
    from lims.config import load_settings

    engine = db.engine_for(load_settings(database_url=database_url))

    def action() -> str:
        previous = "0" * 64
        with engine.connect() as connection:
            rows = connection.execution_options(
                stream_results=True, yield_per=20_000
            ).exec_driver_sql("SELECT canonical FROM audit_entries ORDER BY seq")
            sha256 = hashlib.sha256
            for (canonical,) in rows:
                previous = sha256(canonical.encode() + previous.encode()).hexdigest()
        return previous

    return action


def lims_verify(database_url: str) -> Callable[[], object]:
    from lims import audit, db
    from lims.config import load_settings

    engine = db.engine_for(load_settings(database_url=database_url))

    def action() -> None:
        with engine.connect() as connection:
            result = audit.verify(connection)
        assert result.intact, result.problem

    return action


# --- what a lab would have recorded -------------------------------------------------------


def culture_code(scale: Scale, index: int) -> str:
    return f"{din_of(scale, index)[0]}-C1"


def din_of(scale: Scale, index: int) -> tuple[str, str]:
    from lims.domain.ids import Din

    collected = _started(scale, index) - timedelta(hours=5)
    din = Din.of("A9999", collected.year, index + 1)
    return din.code, din.check


def _started(scale: Scale, index: int) -> datetime:
    from lims.scenario import PASSAGE_EVERY_DAYS

    last_start = scale.end - days(1 + PASSAGE_EVERY_DAYS * scale.passages)
    return last_start - (scale.cultures - 1 - index) * START_EVERY


@dataclass
class Step:
    """One record as the bench made it, and its audit entry."""

    at: datetime  # recorded at
    index: int  # the culture
    kind: str  # patient, aspirate, culture, passage
    number: int = 0  # the passage's
    values: dict[str, Any] = field(default_factory=dict)


def in_order(scale: Scale, cultures: Iterable[int]) -> Iterator[Step]:
    """The steps of all the cultures, merged in the order they were recorded."""
    ordered = (
        ((step.at, step.index, step.number, step) for step in steps_of(scale, index))
        for index in cultures
    )
    for *_, step in heapq.merge(*ordered):
        yield step


def steps_of(scale: Scale, index: int) -> Iterator[Step]:
    """A culture's history in order: patient, aspirate, culture start, then its passages.

    Values vary from culture to culture but are the same on every run, so the
    culture shown is identical in both databases. Derived values come from
    lims.domain.growth, as the services derive them.
    """
    from lims.domain import growth
    from lims.scenario import PASSAGE_EVERY_DAYS
    from lims.services.cultures import PRIMARY_METHOD

    draw = random.Random(index)
    started = _started(scale, index)
    collected = started - timedelta(hours=5)
    received = collected + timedelta(hours=2)
    din, check = din_of(scale, index)
    yield Step(
        collected - days(7),
        index,
        "patient",
        values={
            "code": f"PT-{index + 1:06d}",
            "initials": "".join(draw.choice("ABCDEFGHIJKLMNPRSTUVZ") for _ in range(2)),
            "birth_year": draw.randint(1940, 1995),
            "consent_date": (collected - days(14)).date(),
            "study": "MSC-ALS",
        },
    )
    tnc = draw.randint(300, 900) * 1_000_000
    yield Step(
        received + timedelta(minutes=10),
        index,
        "aspirate",
        values={
            "din": din,
            "din_check": check,
            "fin": din[:5],
            "year": int(din[5:7]),
            "sequence": int(din[7:]),
            "collected_at": collected,
            "received_at": received,
            "volume_ml": float(draw.randint(20, 40)),
            "site": "posterior iliac crest",
            "anticoagulant": "sodium heparin",
            "tnc": tnc,
            "temperature_c": float(draw.randint(15, 22)),
        },
    )
    plated = tnc * 2 // 5
    yield Step(
        started + timedelta(minutes=10),
        index,
        "culture",
        values={
            "code": f"{din}-C1",
            "number": 1,
            "kind": "primary",
            "cells_plated": plated,
            "vessels": VESSELS,
            "area_cm2": AREA_CM2,
            "method": PRIMARY_METHOD,
            "started_at": started,
            "status": "active",
        },
    )
    harvests = []
    seeded = 0
    for number in range(1, scale.passages + 1):
        at = started + days(PASSAGE_EVERY_DAYS * number) + timedelta(minutes=draw.randint(0, 120))
        # The first harvest of a primary culture: the few MNC that adhered, grown out.
        harvested = (
            draw.randint(3_000, 6_000) * 1_000
            if number == 1
            else round(seeded * draw.uniform(3.0, 6.0))
        )
        seeded = min(harvested, round(AREA_CM2 * draw.uniform(4_500, 5_500)))
        harvests.append(growth.Harvest(at, harvested, seeded, AREA_CM2))
    derived = growth.kinetics(True, growth.Plating(started, plated), harvests)
    for number, (harvest, values) in enumerate(zip(harvests, derived, strict=True), start=1):
        yield Step(
            harvest.at + timedelta(minutes=20),
            index,
            "passage",
            number,
            {
                "code": f"{din}-C1-P{number}",
                "number": number,
                "harvested_at": harvest.at,
                "harvested": harvest.harvested,
                "viability": round(draw.uniform(86.0, 97.0), 1),
                "seeded": harvest.seeded,
                "vessels": VESSELS,
                "area_cm2": AREA_CM2,
                "confluence": float(draw.randint(80, 90)),
                "population_doublings": values.population_doublings,
                "cumulative_population_doublings": values.cumulative_population_doublings,
                "doubling_time_hours": values.doubling_time_hours,
                "fold_expansion": values.fold_expansion,
                "seeding_density_per_cm2": values.seeding_density_per_cm2,
            },
        )


# --- loading -----------------------------------------------------------------------------


class Loader:
    """Rows and audit entries collected in order, written in batches through SQLAlchemy Core."""

    def __init__(self, database: Database) -> None:
        from sqlalchemy import select

        from lims import db
        from lims.models import AuditHead, ReagentLot

        self.engine = db.engine_for(database.settings())
        with self.engine.connect() as connection:
            self.seq, self.hash = connection.execute(select(AuditHead.seq, AuditHead.hash)).one()
            self.reagents = {
                f"{name}:{lot}": id
                for id, name, lot in connection.execute(
                    select(ReagentLot.id, ReagentLot.name, ReagentLot.lot)
                )
            }
        self.next_id = {"patients": 1, "aspirates": 1, "cultures": 1, "passages": 1}
        self.ids: dict[tuple[int, str], int] = {}  # (culture index, kind): id, while it grows
        self.rows: dict[str, list[dict[str, Any]]] = {
            table: [] for table in (*self.next_id, "reagent_uses", "audit_entries")
        }
        self.entries = 0

    def add(self, step: Step) -> None:
        from lims import audit
        from lims.scenario import PASSAGE_REAGENTS, START_REAGENTS
        from lims.timeutil import json_time

        table = step.kind + "s"
        row_id = self.next_id[table]
        self.next_id[table] += 1
        row = {"id": row_id, **step.values, "recorded_at": step.at, "recorded_by": TECHNICIAN}
        shown = {
            name: json_time(value) if isinstance(value, datetime) else value
            for name, value in step.values.items()
        }
        if step.kind == "patient":
            self.ids[step.index, "patient"] = row_id
            entity, action = step.values["code"], "patient.create"
            new = shown | {"consent_date": str(step.values["consent_date"])}
        elif step.kind == "aspirate":
            self.ids[step.index, "aspirate"] = row_id
            row["patient_id"] = self.ids.pop((step.index, "patient"))
            entity, action = step.values["din"], "aspirate.receive"
            new = {name: shown[name] for name in shown if name not in ("fin", "year", "sequence")}
        elif step.kind == "culture":
            self.ids[step.index, "culture"] = row_id
            row["aspirate_id"] = self.ids.pop((step.index, "aspirate"))
            used = list(START_REAGENTS)
            self._uses(row_id, None, used)
            entity, action = step.values["code"], "culture.start"
            new = {name: shown[name] for name in shown if name not in ("code", "number", "status")}
            new |= {"reagents": used}
        else:
            culture_id = self.ids[step.index, "culture"]
            row |= {"culture_id": culture_id, "corrections": 0}
            used = list(PASSAGE_REAGENTS)
            self._uses(culture_id, row_id, used)
            entity, action = step.values["code"], "passage.log"
            new = {name: shown[name] for name in shown if name not in ("code", "number")}
            new |= {"reagents": used}
        self.rows[table].append(row)
        self._audit(step.at, action, step.kind, entity, audit.to_json(new))

    def _uses(self, culture_id: int, passage_id: int | None, used: list[str]) -> None:
        self.rows["reagent_uses"] += [
            {
                "reagent_lot_id": self.reagents[label],
                "culture_id": culture_id,
                "passage_id": passage_id,
                "lot_id": None,
            }
            for label in used
        ]

    def _audit(self, at: datetime, action: str, kind: str, entity: str, new: str | None) -> None:
        from lims import audit
        from lims.timeutil import audit_timestamp

        self.seq += 1
        fields = [str(self.seq), audit_timestamp(at), TECHNICIAN, action, kind, entity, None, new]
        fields.append(None)
        canonical = audit.encode_fields(fields)
        digest = audit.chain_hash(canonical, self.hash)
        self.rows["audit_entries"].append(
            dict(zip(audit.CHAINED_COLUMNS, [self.seq, *fields[1:]], strict=True))
            | {"prev_hash": self.hash, "hash": digest, "canonical": canonical}
        )
        self.hash = digest
        self.entries += 1
        if len(self.rows["audit_entries"]) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write what is collected in one transaction, parents first, and move the chain's head."""
        from sqlalchemy import insert, update

        from lims.models import SQLModel

        tables = SQLModel.metadata.tables
        with self.engine.begin() as connection:
            for name, rows in self.rows.items():
                if rows:
                    connection.execute(insert(tables[name]), rows)
                    rows.clear()
            connection.execute(update(tables["audit_head"]).values(seq=self.seq, hash=self.hash))

    def finish(self) -> None:
        from sqlalchemy import text

        self.flush()
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                # Ids were given explicitly: move the sequences past them.
                for table in self.next_id:
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
            # Autovacuum would have analysed tables this size within a minute of the load.
            with self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.execute(text("ANALYZE"))


def load(database: Database, scale: Scale, cultures: range | list[int]) -> int:
    """A lab with users and reagent lots, then the cultures' histories merged in time order.

    Returns the number of audit entries in the database.
    """
    from lims import db

    set_up_lab(database).add_reagents(expires=(scale.end + days(365)).date())
    loader = Loader(database)
    for step in in_order(scale, cultures):
        loader.add(step)
    loader.finish()
    entries = loader.seq
    db.dispose_engines()
    return int(entries)


def explain(database: Database, code: str) -> list[str]:
    """The query plans of `culture show`, for finding a missing index (not run by default)."""
    from sqlalchemy import event

    from lims import db
    from lims.services import cultures
    from lims.uow import unit_of_work

    engine = db.engine_for(database.settings())
    statements: list[tuple[str, Any]] = []

    def collect(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", collect)
    with unit_of_work(database.settings(), write=False) as uow:
        cultures.show_culture(uow, culture=code)
    event.remove(engine, "before_cursor_execute", collect)
    plans = []
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = connection.exec_driver_sql(prefix + statement, parameters).all()
            plans.append(statement + "\n    " + "\n    ".join(json.dumps(list(p)) for p in plan))
    return plans
