"""Settings: the station's from packaged defaults < ./lims.toml < $LIMS_CONFIG < environment;
the site's from the database.

Station settings (home, database_url, timezone) say where this station finds its
database and which clock it reads. Site settings (the SITE_SECTIONS) decide safety:
they are versioned records in the database (lims.site), which the unit of work lays
over the defaults. `lims init` stores their first version from the configuration
files; afterwards a site key in a file or in the environment is ignored with a
warning, so whoever runs a command cannot relax them.

Validated with pydantic-settings. Every key is documented in the top-level
lims.toml; `lims config show` prints the effective value of each and where it
came from.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from lims.domain.equipment import EQUIPMENT_KINDS, EQUIPMENT_STEPS
from lims.domain.ids import FIN_PATTERN
from lims.domain.spec import DEFAULT_SPEC, ReleaseSpec
from lims.errors import ConfigError, shown

if TYPE_CHECKING:
    from lims.views.config import SettingOrigin

ENV_PREFIX = "LIMS_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV = "LIMS_CONFIG"
LOCAL_CONFIG = Path("lims.toml")
DATABASE_FILENAME = "lims.db"
DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
# Sections whose values are site records in the database, changed only by `lims site set`
# (release: `lims spec set`); every other key is the station's own.
SITE_SECTIONS = (
    "facility",
    "security",
    "patients",
    "aspirate",
    "expansion",
    "lot",
    "labels",
    "screening",
    "records",
    "administration",
    "counts",
    "equipment",
    "vehicle",
    "sites",
    "release",
)


def _facility_identification_number(value: str) -> str:
    if not FIN_PATTERN.fullmatch(value):
        raise ValueError(
            "must be an ISBT 128 facility identification number: "
            "a letter (not O) and 4 digits, e.g. A9999"
        )
    return value


def _timezone_name(value: str) -> str:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
            raise ValueError(
                "must be an IANA time zone name such as Europe/Rome, or empty for the system's"
            ) from None
    return value


def normalise_database_url(value: str) -> str:
    for alias in ("postgresql://", "postgres://"):
        if value.startswith(alias):
            return "postgresql+psycopg://" + value[len(alias) :]
    if value == "" or value.startswith("postgresql+psycopg://"):
        return value
    if value.startswith("sqlite:///") and value[len("sqlite:///") :] not in ("", ":memory:"):
        return value
    raise ValueError(f"must be {DATABASE_URL_FORMS}")


class FacilitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=120)] = "Example Cell Therapy Facility"
    fin: Annotated[str, AfterValidator(_facility_identification_number)] = "A9999"
    # Where the facility is: the DIN's year is the collection year here, whichever station
    # records the aspirate (ISBT 128 ST-001 2.4.1).
    timezone: Annotated[str, Field(min_length=1), AfterValidator(_timezone_name)] = "UTC"
    # Printed on every bag label: an investigational product names its manufacturer
    # (EU Regulation 536/2014, Annex VI).
    address: Annotated[str, Field(min_length=1, max_length=200)] = (
        "Example Street 1, 00000 Example City"
    )


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_idle_minutes: Annotated[WholeNumber, Field(ge=1, le=1440)] = 30
    session_max_hours: Annotated[WholeNumber, Field(ge=1, le=24)] = 12
    password_min_length: Annotated[WholeNumber, Field(ge=8, le=128)] = 12
    lockout_threshold: Annotated[WholeNumber, Field(ge=1, le=100)] = 5
    # How long a locked account waits when no other admin can unlock it (its only admin).
    lockout_minutes: Annotated[WholeNumber, Field(ge=1, le=1440)] = 30
    password_max_age_days: Annotated[WholeNumber, Field(ge=1, le=3650)] = 180
    password_history: Annotated[WholeNumber, Field(ge=1, le=24)] = 5
    # argon2id cost (RFC 9106 second recommended option by default); each hash carries its own
    # parameters, so a change applies to passwords set or logged in with afterwards.
    argon2_time_cost: Annotated[WholeNumber, Field(ge=1, le=20)] = 3
    argon2_memory_kib: Annotated[WholeNumber, Field(ge=8, le=4_194_304)] = 65_536
    argon2_parallelism: Annotated[WholeNumber, Field(ge=1, le=16)] = 4

    @model_validator(mode="after")
    def _enough_memory_for_the_lanes(self) -> SecuritySettings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 × argon2_parallelism")
        return self


def _regular_expression(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"must be a regular expression ({error})") from None
    return value


PositiveNumber = Annotated[float, BeforeValidator(_not_a_boolean), Field(gt=0, allow_inf_nan=False)]
Temperature = Annotated[
    float, BeforeValidator(_not_a_boolean), Field(ge=-273.15, le=100, allow_inf_nan=False)
]


class PatientSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code_pattern: Annotated[str, AfterValidator(_regular_expression)] = "[A-Z0-9-]{3,32}"
    code_description: Annotated[str, Field(min_length=1, max_length=200)] = (
        "3-32 upper-case letters, digits and dashes"
    )
    # A body weight outside this range is taken for a typing error: it decides a dose per kg.
    min_weight_kg: Annotated[PositiveNumber, Field(ge=0.5, le=400)] = 2.0
    max_weight_kg: Annotated[PositiveNumber, Field(ge=0.5, le=400)] = 250.0

    @model_validator(mode="after")
    def _ordered(self) -> PatientSettings:
        if self.min_weight_kg >= self.max_weight_kg:
            raise ValueError("min_weight_kg must be below max_weight_kg")
        return self


class AspirateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_volume_ml: PositiveNumber = 100.0
    # CSF, collected to suspend the product in, comes in millilitres, not a marrow harvest.
    csf_max_volume_ml: PositiveNumber = 30.0
    min_temperature_c: Temperature = 2.0
    max_temperature_c: Temperature = 30.0
    max_transit_hours: Annotated[
        float, BeforeValidator(_not_a_boolean), Field(gt=0, le=24 * 30, allow_inf_nan=False)
    ] = 48.0

    @model_validator(mode="after")
    def _ordered(self) -> AspirateSettings:
        if self.min_temperature_c >= self.max_temperature_c:
            raise ValueError("min_temperature_c must be below max_temperature_c")
        return self


class ExpansionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    viability_flag_below_percent: Annotated[
        float, BeforeValidator(_not_a_boolean), Field(ge=0, le=100, allow_inf_nan=False)
    ] = 80.0
    seeding_density_min_per_cm2: PositiveNumber = 1000.0
    seeding_density_max_per_cm2: PositiveNumber = 10000.0
    reseeding_density_per_cm2: PositiveNumber = 5000.0
    max_passage: Annotated[WholeNumber, Field(ge=1, le=100)] = 5
    # Beyond either, a passage's counts are taken for a typo unless confirmed as unusual:
    # well above MSC confluence (about 20,000-50,000/cm²), and faster than MSC divide.
    max_harvest_density_per_cm2: PositiveNumber = 100_000.0
    min_doubling_time_hours: PositiveNumber = 12.0

    @model_validator(mode="after")
    def _ordered(self) -> ExpansionSettings:
        low, high = self.seeding_density_min_per_cm2, self.seeding_density_max_per_cm2
        if low >= high:
            raise ValueError(
                "seeding_density_min_per_cm2 must be below seeding_density_max_per_cm2"
            )
        if not low <= self.reseeding_density_per_cm2 <= high:
            raise ValueError("reseeding_density_per_cm2 must lie within the seeding density range")
        return self


class LotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shelf_life_hours: Annotated[
        float, BeforeValidator(_not_a_boolean), Field(gt=0, le=24 * 365, allow_inf_nan=False)
    ] = 48.0
    vehicle: Annotated[str, Field(min_length=1, max_length=100)] = "autologous CSF"
    formulation_blocked_by: list[
        Literal[
            "low_viability",
            "seeding_density",
            "passage_limit",
            "no_growth",
            "unusual_count",
            "manual",
        ]
    ] = ["passage_limit", "no_growth"]


Millimetres = Annotated[
    float, BeforeValidator(_not_a_boolean), Field(ge=0, le=1000, allow_inf_nan=False)
]
PositiveMillimetres = Annotated[
    float, BeforeValidator(_not_a_boolean), Field(gt=0, le=1000, allow_inf_nan=False)
]
# An ICCBBA product description code: a letter (S for cellular therapy) and four digits.
PRODUCT_CODE_PATTERN = r"^[A-Z][0-9]{4}$"


class LabelStock(BaseModel):
    """A sheet of labels that PDF labels are laid out on: the page, the label, the grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Annotated[str, Field(max_length=120)] = "A4 sheet, 5 x 20 labels of 38 x 13 mm"
    page_width_mm: PositiveMillimetres = 210.0
    page_height_mm: PositiveMillimetres = 297.0
    label_width_mm: PositiveMillimetres = 38.0
    label_height_mm: PositiveMillimetres = 13.0
    columns: Annotated[WholeNumber, Field(ge=1, le=100)] = 5
    rows: Annotated[WholeNumber, Field(ge=1, le=200)] = 20
    margin_left_mm: Millimetres = 5.0
    margin_top_mm: Millimetres = 8.5
    gap_x_mm: Millimetres = 2.5
    gap_y_mm: Millimetres = 1.0

    @model_validator(mode="after")
    def _fits_the_page(self) -> LabelStock:
        across = self.margin_left_mm + self.columns * self.label_width_mm
        across += (self.columns - 1) * self.gap_x_mm
        down = self.margin_top_mm + self.rows * self.label_height_mm
        down += (self.rows - 1) * self.gap_y_mm
        if across > self.page_width_mm + 1e-6 or down > self.page_height_mm + 1e-6:
            raise ValueError(
                f"{self.columns} x {self.rows} labels with these margins and gaps take "
                f"{across:g} x {down:g} mm, more than the {self.page_width_mm:g} x "
                f"{self.page_height_mm:g} mm page"
            )
        return self


class LabelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A template shipped in labels/ (cryovial, bag) or the path of a site's own.
    template: Annotated[str, Field(min_length=1, max_length=300)] = "cryovial"
    product: Annotated[str, Field(min_length=1, max_length=60)] = "Autologous bone-marrow MSC"
    # The site's own ICCBBA product description code; none is ever invented. Without it
    # labels say "product code not assigned" and carry no data structure 003.
    product_code: Annotated[str | None, Field(pattern=PRODUCT_CODE_PATTERN)] = None
    storage: Annotated[str, Field(min_length=1, max_length=80)] = (
        "Store at 15-25 °C. Do not refrigerate or irradiate."
    )
    caution: Annotated[str, Field(min_length=1, max_length=120)] = (
        "Caution: New Drug - Limited by Federal (or United States) law to investigational use."
    )
    route: Annotated[str, Field(min_length=1, max_length=60)] = "For intraspinal injection"
    # The 2-D symbol: the lims payload in a QR code, or an ISBT 128 compound message
    # (DIN, product code with the vial's division, expiry) in a Data Matrix.
    symbology: Literal["qr", "datamatrix"] = "qr"
    isbt128_barcode: bool = True
    stock: LabelStock = LabelStock()

    @model_validator(mode="after")
    def _datamatrix_names_the_vial(self) -> LabelSettings:
        if self.symbology == "datamatrix" and self.product_code is None:
            raise ValueError(
                "symbology datamatrix needs labels.product_code: without it the Data Matrix "
                "cannot name the vial's division"
            )
        return self


ScreeningTest = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class ScreeningSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The donor screening tests (`lims patient screen --test`): until each has a result,
    # labels read NOT EVALUATED FOR INFECTIOUS SUBSTANCES (21 CFR 1271.90(c)). HTLV and
    # CMV because marrow is rich in leukocytes (1271.85(b)).
    tests: Annotated[list[ScreeningTest], Field(min_length=1)] = [
        "hiv",
        "hbv",
        "hcv",
        "syphilis",
        "htlv",
        "cmv",
    ]

    @field_validator("tests")
    @classmethod
    def _distinct_tests(cls, tests: list[str]) -> list[str]:
        if len(set(tests)) != len(tests):
            raise ValueError("tests must not repeat a name")
        return tests


class RecordSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A step dated further back than this from when it is typed is a late entry: it needs
    # a reason and is marked as such wherever it is shown.
    late_entry_hours: PositiveNumber = 24.0


RouteName = Annotated[str, Field(pattern=r"[a-z][a-z0-9_-]{0,31}")]


class AdministrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The routes `vial administer --route` accepts.
    routes: list[RouteName] = [
        "intraspinal",
        "intrathecal",
        "intravenous",
        "intra-arterial",
        "intramuscular",
        "intra-articular",
        "intralesional",
        "subcutaneous",
    ]
    # Whether an administration must name its route and its treating physician.
    route_required: bool = False
    physician_required: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> AdministrationSettings:
        if not self.routes:
            raise ValueError("routes must name at least one route")
        if len(set(self.routes)) != len(self.routes):
            raise ValueError("routes must not repeat")
        return self


class CountSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # How far apart, before or after, an instrument's count and the step that uses it may be:
    # cells are counted just after they are harvested, not a shift earlier or later.
    max_age_hours: Annotated[
        float, BeforeValidator(_not_a_boolean), Field(gt=0, le=72, allow_inf_nan=False)
    ] = 12.0


def _one_of(allowed: tuple[str, ...] | dict[str, str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


EquipmentStep = Annotated[str, _one_of(EQUIPMENT_STEPS, "a step")]
EquipmentKind = Annotated[str, _one_of(EQUIPMENT_KINDS, "an equipment kind")]


class EquipmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The kinds of equipment each step must name (`--equipment ID`). A kind is required only
    # once the register holds a piece of it that is not retired: a lab that has not set up its
    # register is not blocked, and one that has cannot forget it.
    required: dict[EquipmentStep, list[EquipmentKind]] = {
        "culture_start": ["biosafety_cabinet", "incubator"],
        "culture_split": ["biosafety_cabinet", "incubator"],
        "passage_log": ["biosafety_cabinet", "incubator"],
        "lot_formulate": ["biosafety_cabinet"],
        "culture_freeze": ["biosafety_cabinet"],
        "bank_thaw": ["biosafety_cabinet", "incubator"],
    }

    @model_validator(mode="after")
    def _distinct(self) -> EquipmentSettings:
        for step, kinds in self.required.items():
            if len(set(kinds)) != len(kinds):
                raise ValueError(f"required.{step} must not repeat a kind")
        return self


class VehicleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Oldest the patient's CSF may be when the cells are suspended in it.
    max_age_hours: Annotated[
        float, BeforeValidator(_not_a_boolean), Field(gt=0, le=24 * 30, allow_inf_nan=False)
    ] = 24.0
    # Whether a lot may be suspended in a typed vehicle (saline) instead of a CSF donation.
    allow_non_autologous: bool = False


SITE_CODE_MAX = 16  # lims.models.SITE_CODE_MAX
# What a shipping site's code is made of (`lims ship create --to CODE` reads it in any case).
SITE_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9._-]*$"


class ShippingSite(BaseModel):
    """Where vials may be shipped: an operating theatre, another hospital."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=SITE_CODE_PATTERN, max_length=SITE_CODE_MAX)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    address: Annotated[str, Field(min_length=1, max_length=500)]


class SiteSettings(BaseModel):
    """The site's settings besides its specification: what one site_settings record holds."""

    model_config = ConfigDict(extra="forbid")

    facility: FacilitySettings = FacilitySettings()
    security: SecuritySettings = SecuritySettings()
    patients: PatientSettings = PatientSettings()
    aspirate: AspirateSettings = AspirateSettings()
    expansion: ExpansionSettings = ExpansionSettings()
    lot: LotSettings = LotSettings()
    labels: LabelSettings = LabelSettings()
    screening: ScreeningSettings = ScreeningSettings()
    records: RecordSettings = RecordSettings()
    administration: AdministrationSettings = AdministrationSettings()
    counts: CountSettings = CountSettings()
    equipment: EquipmentSettings = EquipmentSettings()
    vehicle: VehicleSettings = VehicleSettings()
    sites: list[ShippingSite] = []

    @field_validator("sites")
    @classmethod
    def _distinct_sites(cls, sites: list[ShippingSite]) -> list[ShippingSite]:
        codes = [site.code for site in sites]
        if len(set(codes)) != len(codes):
            raise ValueError("sites must not repeat a code")
        return sites


def _default_home() -> Path:
    return platformdirs.user_data_path("lims", appauthor=False)


class StationSettings(BaseModel):
    """Where this station finds its database, and which clock it reads."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(default_factory=_default_home)
    database_url: Annotated[str, AfterValidator(normalise_database_url)] = ""
    timezone: Annotated[str, AfterValidator(_timezone_name)] = ""


# The bases' fields come first, station before site, in lims.toml's order.
class Settings(BaseSettings, SiteSettings, StationSettings):
    """The station's settings, and the site's sections that the unit of work fills from
    the site's records."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    release: ReleaseSpec = Field(default_factory=lambda: dict(DEFAULT_SPEC))  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _database_in_home(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / DATABASE_FILENAME}"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [_toml_source(settings_cls, path) for _, path in reversed(config_files())]
        return (init_settings, _station_environment(), *map(cls._file_keys, files))

    @staticmethod
    def _file_keys(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
        """What a configuration file may set outside `lims init`: the station's keys."""
        return _StationKeys(source)

    @property
    def tz(self) -> ZoneInfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        import tzlocal

        return tzlocal.get_localzone()

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, or None when the store is not SQLite."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :].split("?", 1)[0])
        return None


class InitialSettings(Settings):
    """The settings `lims init` starts a database with: the files' site keys count too.

    They become the first version of the site's records; the environment's never do,
    so a shell variable cannot slip into a site's records unnoticed.
    """

    @staticmethod
    def _file_keys(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
        return source


class _StationFields(BaseSettings):
    """The keys the environment may set; its site keys are never parsed, only warned of."""

    home: str = ""
    database_url: str = ""
    timezone: str = ""


def _station_environment() -> EnvSettingsSource:
    return EnvSettingsSource(
        _StationFields, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER
    )


class _StationKeys(PydanticBaseSettingsSource):
    """Another source with the site's sections left out (see ignored_site_keys)."""

    def __init__(self, source: PydanticBaseSettingsSource) -> None:
        super().__init__(source.settings_cls)
        self._source = source

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in self._source().items() if name not in SITE_SECTIONS}


def site_key(key: str) -> bool:
    """Whether a dotted key (security.lockout_threshold) is a site setting."""
    return key.split(".", 1)[0] in SITE_SECTIONS


def ignored_site_keys(*, at_init: bool = False) -> list[tuple[str, str, Any]]:
    """Each site key the environment or a file gives: (key, source, value given).

    lims ignores them; at `lims init` the files' site keys are the site's first
    records, so only the environment's are ignored then.
    """
    ignored = []
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name != CONFIG_ENV:
            key = name[len(ENV_PREFIX) :].lower().replace(ENV_NESTED_DELIMITER, ".")
            if site_key(key):
                ignored.append((key, "env " + name, typed_value(os.environ[name])))
    if not at_init:
        for label, path in config_files():
            values = _toml_source(Settings, path)()
            site = {section: values[section] for section in SITE_SECTIONS if section in values}
            ignored += [(key, label, value) for key, value in flatten(site).items()]
    return ignored


def typed_value(text: str) -> Any:
    """A value typed as text (the environment, `site set`) as the JSON it may be (`100`,
    `false`, `[...]`), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# What this process has warned of: one line per key and source, however many units of work.
_warned: set[tuple[str, str]] = set()


def warn_ignored_site_keys(in_force: Settings, *, at_init: bool = False) -> None:
    """One line on stderr for each site key the environment or a file sets otherwise than
    the value in force, which it does not change.

    A key given the value in force changes nothing and is passed over in silence, so a
    lims.toml kept beside lims with the values `lims init` stored does not cry wolf.
    """
    ignored = ignored_site_keys(at_init=at_init)
    if not ignored:
        return
    in_force_values = flatten(in_force.model_dump(mode="json"))
    for key, source, given in ignored:
        if key in in_force_values and given == in_force_values[key]:
            continue
        if (key, source) in _warned:
            continue
        _warned.add((key, source))
        command = "lims spec set" if key.startswith("release") else "lims site set"
        print(
            f"warning: {key} ({source}) is a site setting and is ignored here; "
            f"change it with {command}",
            file=sys.stderr,
        )


def redacted_url(url: str) -> str:
    """The database URL with any password (user info or query parameter) masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(unreadable URL)"
    netloc = parts.netloc
    if password is not None:
        netloc = netloc.replace(f":{password}@", ":***@", 1)
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else pair
        for pair in parts.query.split("&")
        if pair
        for name in [pair.partition("=")[0]]
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # untouched: urlunsplit would also rewrite sqlite:////abs/path
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def config_files() -> list[tuple[str, Path]]:
    """The configuration files in force, lowest precedence first."""
    files = []
    if LOCAL_CONFIG.is_file():
        files.append((f"./{LOCAL_CONFIG}", LOCAL_CONFIG.resolve()))
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}: no such file: {path}")
        files.append((str(path), path.resolve()))
    return files


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None


def load_settings(*, at_init: bool = False, **overrides: Any) -> Settings:
    """The effective settings; an invalid one is a one-line ConfigError naming the key.

    Site sections are the packaged defaults, or those passed in overrides (a test's
    lab, a copy's settings); the unit of work lays the site's records over them and
    warns of each site key the environment or a file sets otherwise (warn_ignored_site_keys).
    At init (`lims init`) the files' site keys become the site's first records, and the
    environment's are warned of here.
    """
    _warned.clear()  # a new command, or a new station in the same process: warn afresh
    try:
        settings = (InitialSettings if at_init else Settings)(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe_validation_error(error, _origins(overrides, at_init))) from None
    except SettingsError as error:
        # Raised for an environment value that cannot be parsed, e.g. a whole
        # section given as LIMS_SECURITY=strict.
        field = re.search(r'field "(\w+)"', str(error))
        key = field.group(1) if field else "environment"
        raise ConfigError(
            f"{key}: cannot be read from the environment; set its keys one by one, "
            f"e.g. {ENV_PREFIX}{key.upper()}{ENV_NESTED_DELIMITER}KEY"
        ) from None
    if at_init:
        warn_ignored_site_keys(settings, at_init=True)
    return settings


def _describe_validation_error(error: ValidationError, origins: dict[str, str]) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown setting (from {origins.get(key, 'configuration')})"
    message = first["msg"].removeprefix("Value error, ")
    origin = _origin_of(key, origins)
    given = first["input"]
    if key == "database_url" and isinstance(given, str):
        given = redacted_url(given)
    if isinstance(given, dict):  # a whole section: the message names what is wrong in it
        return f"{key}: {message} (from {origin})"
    return f"{key}: {message} (got {shown(given)} from {origin})"


def _origin_of(key: str, origins: dict[str, str]) -> str:
    """Where key, or the first setting beneath it, came from."""
    if key in origins:
        return origins[key]
    return next(
        (source for name, source in origins.items() if name.startswith(key + ".")), "default"
    )


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level of dotted keys, as lims.toml and `site set` name them; an
    empty table (equipment.required with no step listed) is one key, shown empty."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


def _origins(overrides: dict[str, Any], at_init: bool = False) -> dict[str, str]:
    """Which source supplied each key that is not a packaged default."""
    origins: dict[str, str] = {}
    for label, path in config_files():
        for key in flatten(_toml_source(Settings, path)()):
            if at_init or not site_key(key):
                origins[key] = label
    for key in flatten(_station_environment()()):
        origins[key] = "env " + ENV_PREFIX + key.upper().replace(".", ENV_NESTED_DELIMITER)
    for key in flatten(overrides):
        origins[key] = "command line"
    return origins


def describe_settings(
    settings: Settings, site_sources: tuple[str, str], **overrides: Any
) -> list[SettingOrigin]:
    """Each effective setting with the source it came from, in lims.toml order.

    site_sources names where the site's settings and its specification came from,
    e.g. ("site record, version 3", "specification, version 2").
    """
    from lims.views.config import SettingOrigin  # only `lims config show` needs it

    origins = _origins(overrides)
    values = flatten(settings.model_dump(mode="json"))
    values["database_url"] = redacted_url(settings.database_url)
    site_source, spec_source = site_sources
    described = []
    for key, value in values.items():
        source = origins.get(key, "default")
        if site_key(key):
            source = spec_source if key.startswith("release.") else site_source
        elif source == "default" and key in _DERIVED_DEFAULTS:
            source = f"default ({_DERIVED_DEFAULTS[key]})"
        if key == "timezone" and not value:
            source += f"; in force: {settings.tz}"
        described.append(SettingOrigin(key=key, value=value, source=source))
    return described


_DERIVED_DEFAULTS = {
    "home": "the platform's user data directory",
    "database_url": "$LIMS_HOME/lims.db",
    "timezone": "the system's",
}
