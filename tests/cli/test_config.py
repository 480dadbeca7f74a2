"""Settings: packaged defaults < ./lims.toml < $LIMS_CONFIG < environment, validated in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import platformdirs
import pytest
from pydantic import BaseModel

from lims.config import (
    Settings,
    describe_settings,
    load_settings,
    normalise_database_url,
    redacted_url,
    site_key,
)
from lims.errors import ConfigError
from tests.support.cli import invoke
from tests.support.lab import Lab
from tests.support.shipments import SITES, set_sites

REPOSITORY_CONFIG = Path(__file__).resolve().parents[2] / "lims.toml"
SECRET = "s3cret-pw"
THRESHOLD = "security.lockout_threshold"
AT_LEAST = "greater than or equal to"
AT_MOST = "less than or equal to"
FIN_RULE = "a letter (not O) and 4 digits"
ZONE_RULE = "IANA time zone name"
URL_RULE = "sqlite:///PATH or postgresql+psycopg://"


@pytest.fixture
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only LIMS_HOME is left from the test environment."""
    monkeypatch.delenv("LIMS_DATABASE_URL")
    monkeypatch.delenv("LIMS_TIMEZONE")


def local_config(text: str) -> Path:
    path = Path("lims.toml")
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def named_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site" / "station.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("LIMS_CONFIG", str(path))
    return path


SITE_SOURCES = ("site record, version 1", "specification, version 1")


def sources(settings: Settings) -> dict[str, str]:
    return {item.key: item.source for item in describe_settings(settings, SITE_SOURCES)}


def config_error(*, at_init: bool = False) -> str:
    with pytest.raises(ConfigError) as refused:
        load_settings(at_init=at_init)
    message = refused.value.message
    assert "\n" not in message
    return message


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys |= model_keys(field.annotation, f"{prefix}{name}.")
        elif isinstance(field.default, dict):  # a table of its own (equipment.required)
            keys |= {f"{prefix}{name}.{key}" for key in field.default}
        else:
            keys.add(prefix + name)
    return keys


def documented_keys(text: str) -> set[str]:
    """Dotted keys assigned in a TOML text, counting commented-out assignments."""
    keys = set()
    section = ""
    for line in text.splitlines():
        listed = re.match(r"\s*#?\s*\[\[(\w+)\]\]\s*$", line)  # [[sites]]: a list of tables
        if listed:
            section = listed.group(1) + "."
            keys.add(listed.group(1))
            continue
        header = re.match(r"\s*\[([\w.]+)\]\s*$", line)
        if header:
            section = header.group(1) + "."
            keys.add(header.group(1).split(".")[0])  # [release.viability] documents release
            continue
        assignment = re.match(r"\s*#?\s*(\w+)\s*=", line)
        if assignment:
            keys.add(section + assignment.group(1))
    return keys


# Packaged defaults


def test_packaged_defaults_apply_without_files_or_environment(
    no_overrides: None, tmp_path: Path
) -> None:
    settings = Settings()
    assert settings.facility.name == "Example Cell Therapy Facility"
    assert settings.facility.fin == "A9999"
    assert settings.security.session_idle_minutes == 30
    assert settings.security.password_min_length == 12
    assert settings.security.lockout_threshold == 5
    assert settings.timezone == ""
    assert settings.database_url == f"sqlite:///{tmp_path / 'home' / 'lims.db'}"


def test_home_defaults_to_the_platform_user_data_directory(
    no_overrides: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIMS_HOME")
    settings = load_settings()
    home = platformdirs.user_data_path("lims", appauthor=False)
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'lims.db'}"


def test_default_database_follows_a_home_set_in_a_file(
    no_overrides: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIMS_HOME")
    local_config('home = "/srv/lims-station"\n')
    assert load_settings().database_url == "sqlite:////srv/lims-station/lims.db"


# Precedence


def test_local_lims_toml_overrides_packaged_defaults(no_overrides: None) -> None:
    local_config('timezone = "Asia/Tokyo"\n[security]\nlockout_threshold = 3\n')
    assert load_settings().timezone == "Asia/Tokyo"
    assert load_settings(at_init=True).security.lockout_threshold == 3


def test_file_named_by_lims_config_overrides_local_lims_toml(
    no_overrides: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_config('timezone = "Asia/Tokyo"\n[security]\nlockout_threshold = 3\n')
    named_config(monkeypatch, tmp_path, 'timezone = "UTC"\n[security]\nlockout_threshold = 4\n')
    assert load_settings().timezone == "UTC"
    assert load_settings(at_init=True).security.lockout_threshold == 4


def test_environment_overrides_both_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local_config('timezone = "Asia/Tokyo"\n[security]\nlockout_threshold = 3\n')
    named_config(monkeypatch, tmp_path, 'timezone = "UTC"\n[security]\nlockout_threshold = 4\n')
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "7")
    assert load_settings().timezone == "Europe/Rome"
    # The environment never sets a site setting, not even at `lims init`.
    assert load_settings(at_init=True).security.lockout_threshold == 4


def test_database_url_from_the_environment_overrides_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_config('database_url = "sqlite:////srv/local.db"\n')
    named_config(monkeypatch, tmp_path, 'database_url = "sqlite:////srv/named.db"\n')
    monkeypatch.setenv("LIMS_DATABASE_URL", "sqlite:////srv/env.db")
    assert load_settings().database_url == "sqlite:////srv/env.db"


def test_files_merge_key_by_key_within_a_section(
    no_overrides: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_config("[security]\nlockout_threshold = 3\nsession_idle_minutes = 15\n")
    named_config(monkeypatch, tmp_path, "[security]\npassword_min_length = 14\n")
    security = load_settings(at_init=True).security
    assert security.lockout_threshold == 3
    assert security.password_min_length == 14
    assert security.session_idle_minutes == 15


def test_describe_settings_names_the_source_of_each_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LIMS_DATABASE_URL")
    local_config('timezone = "Asia/Tokyo"\n[facility]\nname = "Rome Cell Lab"\n')
    named = named_config(monkeypatch, tmp_path, 'home = "/srv/lims"\n')
    monkeypatch.delenv("LIMS_HOME")
    described = sources(load_settings())
    assert {key: source for key, source in described.items() if not site_key(key)} == {
        "home": str(named),
        "database_url": "default ($LIMS_HOME/lims.db)",
        "timezone": "env LIMS_TIMEZONE",
    }
    assert described["facility.name"] == "site record, version 1"
    assert described["security.password_min_length"] == "site record, version 1"
    assert described["release.endotoxin.max"] == "specification, version 1"


def test_describe_settings_shows_the_effective_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_config('[facility]\nname = "Rome Cell Lab"\n')
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "3")
    values = {item.key: item.value for item in describe_settings(load_settings(), SITE_SOURCES)}
    assert values["facility.name"] == "Example Cell Therapy Facility"  # ignored outside init
    assert values["security.lockout_threshold"] == 5
    assert values["timezone"] == "Europe/Rome"


# Validation: one line naming the key and what is allowed


@pytest.mark.parametrize(
    ("toml", "key", "allowed"),
    [
        pytest.param(
            "[security]\nlockout_threshold = 0\n", THRESHOLD, AT_LEAST + " 1", id="threshold-0"
        ),
        pytest.param(
            "[security]\nlockout_threshold = 101\n", THRESHOLD, AT_MOST + " 100", id="threshold-101"
        ),
        pytest.param(
            "[security]\nlockout_threshold = 3.5\n", THRESHOLD, "integer", id="threshold-3.5"
        ),
        pytest.param(
            "[security]\nsession_idle_minutes = 1441\n",
            "security.session_idle_minutes",
            AT_MOST + " 1440",
            id="idle-1441",
        ),
        pytest.param(
            "[security]\npassword_min_length = 7\n",
            "security.password_min_length",
            AT_LEAST + " 8",
            id="password-7",
        ),
        pytest.param('[facility]\nfin = "O1234"\n', "facility.fin", FIN_RULE, id="fin-O1234"),
        pytest.param('[facility]\nfin = "A12"\n', "facility.fin", FIN_RULE, id="fin-A12"),
        pytest.param('[facility]\nfin = "a1234"\n', "facility.fin", FIN_RULE, id="fin-lowercase"),
        pytest.param(
            '[facility]\nfin = "A１２３４"\n', "facility.fin", FIN_RULE, id="fin-fullwidth-digits"
        ),
        pytest.param(
            '[facility]\nfin = "A²345"\n', "facility.fin", FIN_RULE, id="fin-superscript-digit"
        ),
        pytest.param(
            '[facility]\nname = ""\n', "facility.name", "at least 1 character", id="empty-name"
        ),
        pytest.param('timezone = "Mars/Olympus"\n', "timezone", ZONE_RULE, id="timezone-mars"),
        pytest.param('timezone = "Europe"\n', "timezone", ZONE_RULE, id="timezone-directory"),
        pytest.param(
            'database_url = "mysql://lims@db/lims"\n', "database_url", URL_RULE, id="mysql-url"
        ),
        pytest.param(
            'database_url = "sqlite:///:memory:"\n', "database_url", URL_RULE, id="sqlite-memory"
        ),
        pytest.param('colour = "blue"\n', "colour", "unknown setting", id="unknown-key"),
        pytest.param(
            '[security]\ncolour = "blue"\n',
            "security.colour",
            "unknown setting",
            id="unknown-nested-key",
        ),
        pytest.param(
            'security = "strict"\n', "security", "valid dictionary", id="section-is-a-string"
        ),
    ],
)
def test_an_invalid_setting_in_a_file_is_one_line_naming_the_key_and_what_is_allowed(
    no_overrides: None, toml: str, key: str, allowed: str
) -> None:
    local_config(toml)
    message = config_error(at_init=True)  # site keys count only then
    assert message.startswith(f"{key}: ")
    assert allowed in message


@pytest.mark.parametrize(
    ("variable", "value", "key", "allowed"),
    [
        pytest.param("LIMS_TIMEZONE", "Rome", "timezone", ZONE_RULE, id="timezone-rome"),
        pytest.param(
            "LIMS_DATABASE_URL", "mysql://lims@db/lims", "database_url", URL_RULE, id="mysql-url"
        ),
    ],
)
def test_an_invalid_setting_in_the_environment_is_one_line_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)
    message = config_error()
    assert message.startswith(f"{key}: ")
    assert allowed in message


def test_an_invalid_setting_names_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_config("[security]\nlockout_threshold = 0\n")
    assert "from ./lims.toml" in config_error(at_init=True)
    named = named_config(monkeypatch, tmp_path, "[security]\nlockout_threshold = 0\n")
    assert f"from {named}" in config_error(at_init=True)
    monkeypatch.setenv("LIMS_TIMEZONE", "Rome")
    assert "from env LIMS_TIMEZONE" in config_error()


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("LIMS_SECURITY__LOCKOUT_THRESHOLD", "0", THRESHOLD),
        ("LIMS_SECURITY__LOCKOUT_THRESHOLD", "100", THRESHOLD),
        ("LIMS_FACILITY__FIN", "O1234", "facility.fin"),
        ("LIMS_SECURITY", "strict", "security"),
        ("LIMS_RELEASE__ENDOTOXIN__MAX", "1e9", "release.endotoxin.max"),
    ],
)
def test_a_site_key_in_the_environment_is_ignored_with_one_warning_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    key: str,
) -> None:
    monkeypatch.setenv(variable, value)
    command = "lims spec set" if key.startswith("release") else "lims site set"
    warning = (
        f"warning: {key} (env {variable}) is a site setting and is ignored here; "
        f"change it with {command}\n"
    )
    settings = load_settings()
    assert capsys.readouterr().err == ""  # warned of against the site's record, by a command
    settings = load_settings(at_init=True)
    assert settings.security.lockout_threshold == 5
    assert settings.release["endotoxin"].max == 7
    assert capsys.readouterr().err == warning


def test_a_command_warns_once_of_a_site_key_set_otherwise_than_the_record(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(security={"lockout_threshold": 3})
    lab.login("admin")
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "3")  # what the record says
    monkeypatch.setenv("LIMS_EXPANSION__MAX_PASSAGE", "5")  # the default, and the record's
    quiet = invoke("whoami")
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "5")  # the default, not the record's
    warned = invoke("whoami")
    assert warned.exit_code == 0
    assert warned.stderr.splitlines() == [
        "warning: security.lockout_threshold (env LIMS_SECURITY__LOCKOUT_THRESHOLD) is a site "
        "setting and is ignored here; change it with lims site set"
    ]


def test_invalid_toml_in_the_local_file_names_the_file() -> None:
    path = local_config("[security\nlockout_threshold = 3\n")
    message = config_error()
    assert str(path) in message
    assert "not valid TOML" in message


def test_invalid_toml_in_the_named_file_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = named_config(monkeypatch, tmp_path, 'timezone = "UTC\n')
    message = config_error()
    assert str(path) in message
    assert "not valid TOML" in message


def test_a_config_file_not_in_utf8_is_a_config_error_naming_the_file() -> None:
    path = Path("lims.toml")
    path.write_bytes('[facility]\nname = "Città"\n'.encode("latin-1"))
    assert str(path.resolve()) in config_error()


def test_lims_config_naming_a_missing_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "site.toml"
    monkeypatch.setenv("LIMS_CONFIG", str(missing))
    message = config_error()
    assert message.startswith("LIMS_CONFIG: ")
    assert str(missing) in message


# Database URLs


@pytest.mark.parametrize(
    "url",
    ["postgresql://lims@db.example:5432/lims", "postgres://lims@db.example:5432/lims"],
)
def test_postgresql_urls_are_normalised_to_the_psycopg_driver(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    expected = "postgresql+psycopg://lims@db.example:5432/lims"
    assert normalise_database_url(url) == expected
    monkeypatch.setenv("LIMS_DATABASE_URL", url)
    assert load_settings().database_url == expected


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (
            f"postgresql+psycopg://lims:{SECRET}@db.example:5432/lims",
            "postgresql+psycopg://lims:***@db.example:5432/lims",
        ),
        (
            f"postgresql+psycopg://{SECRET}:{SECRET}@db/lims",
            f"postgresql+psycopg://{SECRET}:***@db/lims",
        ),
        ("postgresql+psycopg://lims:p%40ss@db/lims", "postgresql+psycopg://lims:***@db/lims"),
    ],
)
def test_redacted_url_masks_the_password(url: str, redacted: str) -> None:
    assert redacted_url(url) == redacted


@pytest.mark.parametrize(
    "url", ["sqlite:////var/lib/lims/lims.db", "postgresql+psycopg://lims@db.example/lims"]
)
def test_redacted_url_leaves_a_url_without_password_as_it_is(url: str) -> None:
    assert redacted_url(url) == url


def test_redacted_url_masks_a_password_given_as_a_query_parameter() -> None:
    assert SECRET not in redacted_url(f"postgresql+psycopg://lims@db/lims?password={SECRET}")


# The repository's lims.toml documents the defaults


def test_repository_lims_toml_gives_exactly_the_packaged_defaults(
    no_overrides: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = load_settings(at_init=True)
    monkeypatch.setenv("LIMS_CONFIG", str(REPOSITORY_CONFIG))
    documented = load_settings(at_init=True)
    assert sources(documented)["timezone"].startswith(str(REPOSITORY_CONFIG))
    assert documented.model_dump() == defaults.model_dump()


def test_repository_lims_toml_documents_every_setting() -> None:
    keys = model_keys(Settings)
    assert {"home", "database_url", "facility.fin", "security.lockout_threshold"} <= keys
    assert keys <= documented_keys(REPOSITORY_CONFIG.read_text(encoding="utf-8"))


# The CLI


def test_config_show_prints_each_setting_with_its_source(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(facility={"name": "Rome Cell Lab"})
    local_config('timezone = "Asia/Tokyo"\n[facility]\nname = "Milan Cell Lab"\n')
    monkeypatch.delenv("LIMS_TIMEZONE")
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "3")
    result = invoke("config", "show")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│")}
    assert "Rome Cell Lab" in rows["facility.name"]
    assert "site record, version 2" in rows["facility.name"]
    assert "site record, version 2" in rows["security.lockout_threshold"]
    assert "./lims.toml" in rows["timezone"]
    assert result.stderr.splitlines() == [
        "warning: security.lockout_threshold (env LIMS_SECURITY__LOCKOUT_THRESHOLD) is a site "
        "setting and is ignored here; change it with lims site set",
        "warning: facility.name (./lims.toml) is a site setting and is ignored here; "
        "change it with lims site set",
    ]


def test_config_show_json_gives_each_value_its_source_and_the_paths(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab.set_spec({"endotoxin": {"max": 5.0}})
    local = local_config('timezone = "Asia/Tokyo"\n')
    named = named_config(monkeypatch, tmp_path, 'timezone = "UTC"\n')
    monkeypatch.delenv("LIMS_TIMEZONE")
    result = invoke("config", "show", "--json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    settings = shown["settings"]
    # The release specification is a table of tests: its keys are release.<test>.<field>.
    assert {key.split(".")[0] if key.startswith("release.") else key for key in settings} == (
        model_keys(Settings)
    )
    assert settings["release.endotoxin.max"] == {"value": 5.0, "source": "specification, version 2"}
    assert settings["timezone"] == {"value": "UTC", "source": str(named)}
    assert settings["security.lockout_threshold"] == {
        "value": 5,
        "source": "site record, version 1",
    }
    assert shown["paths"]["config_files"] == [str(local), str(named.resolve())]
    assert Path(shown["paths"]["migrations"]).is_dir()
    assert Path(shown["paths"]["labels"]).is_dir()


def test_config_show_without_a_database_shows_the_defaults_and_says_so() -> None:
    result = invoke("config", "show", "--json")
    assert result.exit_code == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["security.lockout_threshold"] == {
        "value": 5,
        "source": "default (no site record: the database cannot be read)",
    }


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["table", "json"])
def test_config_show_never_prints_the_database_password(
    monkeypatch: pytest.MonkeyPatch, as_json: list[str]
) -> None:
    monkeypatch.setenv("LIMS_DATABASE_URL", f"postgresql://lims:{SECRET}@db.example/lims")
    result = invoke("config", "show", *as_json)
    assert result.exit_code == 0, result.stderr
    assert "postgresql+psycopg://lims:***@db.example/lims" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["config", "show"],
        ["config", "show", "--json"],
        ["whoami"],
        ["db", "current"],
        ["audit", "verify"],
        ["user", "list"],
        ["login", "admin", "--password-stdin"],
    ],
    ids=" ".join,
)
def test_an_invalid_setting_stops_any_command_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("LIMS_TIMEZONE", "Mars/Olympus")
    result = invoke(*command, input="correct horse battery\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: timezone: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"LIMS_TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"LIMS_DATABASE_URL": "mysql://lims@db/lims"}, "database_url"),
        ({"LIMS_CONFIG": "/nonexistent/lims-site.toml"}, "LIMS_CONFIG"),
    ],
    ids=["timezone", "database-url", "missing-config-file"],
)
def test_each_kind_of_invalid_setting_exits_2_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, setting: dict[str, str], key: str
) -> None:
    for variable, value in setting.items():
        monkeypatch.setenv(variable, value)
    result = invoke("whoami")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {key}: ")


@pytest.mark.parametrize(
    "toml", ["[security\n", '[facility]\nname = "Città"\n'], ids=["bad-toml", "latin-1"]
)
def test_an_unreadable_lims_toml_exits_2_naming_the_file(toml: str) -> None:
    path = Path("lims.toml")
    path.write_bytes(toml.encode("latin-1"))
    result = invoke("whoami")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert str(path.resolve()) in result.stderr


def test_an_invalid_database_url_is_refused_without_echoing_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIMS_DATABASE_URL", f"postgresq://lims:{SECRET}@db.example/lims")
    result = invoke("whoami")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: database_url: ")
    assert SECRET not in result.stdout + result.stderr


def test_the_sites_a_site_ships_to_are_shown_as_site_set_takes_them(lab: Lab) -> None:
    set_sites(lab, SITES[:1])
    shown = invoke("config", "show")
    assert shown.exit_code == 0, shown.stderr
    assert '[{"code": "OR-1", "name": "Operating theatre 1",' in " ".join(shown.stdout.split())
