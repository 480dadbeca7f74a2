"""Site settings and the release specification are versioned records (issue 11, items 1 and 2).

The first group replays the paths of issue 11's "Why" that these items close: each released
a contaminated lot, or weakened the security policy, on the code before them.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.bench import day
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, Quality

WRONG_PASSWORD = "not the password at all"


@pytest.fixture
def quality(lab: Lab) -> Quality:
    """Lot L1 of PT-0001 in quarantine, formulated by tom under specification version 1."""
    return lab.built("quality", lambda: Quality(lab))


def as_user(quality: Quality, user: str, *args: str, password: str = PASSWORD) -> Invocation:
    quality.lab.login(user)
    return invoke(*args, input=password + "\n")


def record_all_but(quality: Quality, *skipped: str) -> None:
    for test, value in PASSING.items():
        if test not in skipped:
            quality.record(test, value)


def release(quality: Quality) -> Invocation:
    return as_user(quality, "rita", "lot", "release", quality.lot_id, "--password-stdin")


def warned(result: Invocation, key: str, source: str) -> None:
    command = "lims spec set" if key.startswith("release.") else "lims site set"
    assert (
        f"warning: {key} ({source}) is a site setting and is ignored here; change it with {command}"
    ) in result.stderr.splitlines()


def spec_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def set_spec(quality: Quality, user: str, text: str, tmp_path: Path, **options: str) -> Invocation:
    password = options.get("password", PASSWORD)
    return as_user(
        quality,
        user,
        "spec",
        "set",
        spec_file(tmp_path, text),
        "--reason",
        "SOP-QC-012 rev 3",
        "--password-stdin",
        "--json",
        password=password,
    )


# --- the paths of issue 11 that these items close ---------------------------------------------


def test_a_lims_toml_saying_sterility_is_not_required_does_not_release_a_lot(
    quality: Quality,
) -> None:
    record_all_but(quality, "sterility")
    Path("lims.toml").write_text("[release.sterility]\nrequired = false\n", encoding="utf-8")
    released = release(quality)
    assert released.exit_code == 1
    assert "sterility missing" in released.stderr
    warned(released, "release.sterility.required", "./lims.toml")


@pytest.mark.parametrize(
    ("variable", "value", "test", "result"),
    [
        ("LIMS_RELEASE__ENDOTOXIN__MAX", "1e9", "endotoxin", "900"),
        ("LIMS_RELEASE__STERILITY__PASSING", '["negative","positive"]', "sterility", "positive"),
    ],
)
def test_the_environment_cannot_relax_the_specification(
    quality: Quality,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    test: str,
    result: str,
) -> None:
    record_all_but(quality, test)
    quality.record(test, result)
    monkeypatch.setenv(variable, value)
    released = release(quality)
    assert released.exit_code == 1
    assert f"{test} failed" in released.stderr
    key = variable.removeprefix("LIMS_").lower().replace("__", ".")
    warned(released, key, f"env {variable}")


def test_the_environment_cannot_raise_the_lockout_threshold(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMS_SECURITY__LOCKOUT_THRESHOLD", "100")
    for _ in range(5):
        attempt = invoke("login", "admin", "--password-stdin", input=WRONG_PASSWORD + "\n")
        assert attempt.exit_code == 4
    locked = invoke("login", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert locked.exit_code == 4
    assert "locked" in locked.stderr
    warned(locked, "security.lockout_threshold", "env LIMS_SECURITY__LOCKOUT_THRESHOLD")


def test_the_environment_cannot_revive_an_idle_session(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from lims.uow import unit_of_work

    lab.login("admin")
    with unit_of_work(lab.settings, authenticated=False) as uow:
        uow.session.execute(
            text("UPDATE login_sessions SET last_seen_at = :at"),
            {"at": day(-1).replace(tzinfo=None) if lab.settings.sqlite_path else day(-1)},
        )
    monkeypatch.setenv("LIMS_SECURITY__SESSION_IDLE_MINUTES", "1440")
    expired = invoke("whoami")
    assert expired.exit_code == 4
    assert "expired" in expired.stderr


def test_the_environment_cannot_weaken_the_password_rule(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.login("admin")
    monkeypatch.setenv("LIMS_SECURITY__PASSWORD_MIN_LENGTH", "8")
    weak = invoke(
        "user",
        "add",
        "ursula",
        "--full-name",
        "Ursula User",
        "--role",
        "technician",
        "--password-stdin",
        input="short123\nshort123\n",
    )
    assert weak.exit_code == 2
    assert "password: must be 12-" in weak.stderr


# --- each lot is judged by the specification version it was formulated under ------------------


def second_lot(quality: Quality) -> str:
    """A lot of PT-0002 formulated now, by tom."""
    quality.lab.login("tom")
    quality.patient("PT-0002")
    din = quality.aspirate("PT-0002").din.code
    culture = quality.culture(din).summary.culture_id
    quality.passage(culture, day(14))
    return str(quality.formulate(culture=culture, at=day(20)).summary.lot_id)


def test_a_lot_formulated_under_version_1_is_judged_by_it_after_version_2(
    quality: Quality, tmp_path: Path
) -> None:
    approved = set_spec(quality, "quinn", "[release.endotoxin]\nmax = 5.0\n", tmp_path)
    assert approved.exit_code == 0, approved.stderr
    record_all_but(quality, "endotoxin")
    quality.record("endotoxin", "6")  # within version 1's 7 EU/mL, above version 2's 5
    quality.lab.login("tom")
    shown = ok("lot", "show", quality.lot_id)
    assert shown["spec_version"] == 1
    assert shown["qc"]["spec_version"] == 1
    assert ok("qc", "show", quality.lot_id)["spec_version"] == 1
    assert "release specification version 1" in invoke("qc", "show", quality.lot_id).stdout
    later = second_lot(quality)
    assert ok("lot", "show", later)["spec_version"] == 2
    assert "release specification version 2" in invoke("lot", "show", later).stdout
    assert ok("qc", "record", later, "endotoxin", "6")["verdict"] == "fail"
    assert release(quality).exit_code == 0
    entries = ok("audit", "log", "--entity", f"lot:{quality.lot_id}")
    [released] = [entry for entry in entries if entry["action"] == "lot.release"]
    assert released["new"]["spec_version"] == 1


def test_a_test_added_by_a_later_version_is_not_recordable_on_an_earlier_lot(
    quality: Quality, tmp_path: Path
) -> None:
    potency = (
        '[release.potency]\nkind = "numeric"\ndescription = "IDO activity"\n'
        'unit = "pg/mL"\nmin = 100.0\n'
    )
    assert set_spec(quality, "quinn", potency, tmp_path).exit_code == 0
    quality.lab.login("tom")
    refused(invoke("qc", "record", quality.lot_id, "potency", "150"), 2, "test", "viability")
    assert "potency" in ok("spec", "show")["criteria"]
    assert "potency" not in ok("spec", "show", "--version", "1")["criteria"]


# --- lims spec -----------------------------------------------------------------------------


def test_a_specification_version_is_a_qa_signature_on_record(
    quality: Quality, tmp_path: Path
) -> None:
    approved = set_spec(quality, "quinn", "[release.endotoxin]\nmax = 5.0\n", tmp_path)
    assert approved.exit_code == 0, approved.stderr
    shown = json.loads(approved.stdout)
    assert (shown["version"], shown["approved_by"], shown["in_force"]) == (2, "quinn", True)
    assert shown["signature"].endswith("specification version 2 approved")
    assert shown["criteria"]["endotoxin"]["max"] == 5.0
    quality.lab.login("tom")
    history = ok("spec", "history")
    assert [(v["version"], v["approved_by"]) for v in history] == [(1, "admin"), (2, "quinn")]
    assert history[0]["signature"] is None
    [entry] = [e for e in ok("audit", "log") if (e["action"], e["entity_id"]) == ("spec.set", "2")]
    assert entry == {
        **entry,
        "entity_id": "2",
        "old": {"release.endotoxin.max": 7.0},
        "new": {"release.endotoxin.max": 5.0},
        "reason": "SOP-QC-012 rev 3",
    }


@pytest.mark.parametrize("user", ["tom", "admin"])
def test_only_qa_approves_a_specification(quality: Quality, tmp_path: Path, user: str) -> None:
    refused(set_spec(quality, user, "[release.cd73]\nmin = 90.0\n", tmp_path), 4, "qa")


def test_a_wrong_password_refuses_the_approval_and_counts_toward_the_lockout(
    quality: Quality, tmp_path: Path
) -> None:
    refused(
        set_spec(quality, "quinn", "[release.cd73]\nmin = 90.0\n", tmp_path, password="x" * 12),
        4,
        "wrong password",
    )
    quality.lab.login("admin")
    [quinn] = [user for user in ok("user", "list") if user["username"] == "quinn"]
    assert quinn["failed_logins"] == 1
    assert [v["version"] for v in ok("spec", "history")] == [1]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[release.sterility]\nrequired = false\n", "release.sterility.required"),
        ('[release.sterility]\npassing = ["negative", "positive"]\n', "release.sterility.passing"),
        ('[release.mycoplasma]\npassing = ["negative", "positive"]\n', "release.mycoplasma"),
        ("[release.mycoplasma]\nwaivable = true\n", "release.mycoplasma.waivable"),
        (
            '[release.sterility]\nvalues = ["negative", "positive", "growth"]\n'
            'passing = ["negative", "growth"]\n',
            "release.sterility.passing",
        ),
        ("[release.endotoxin]\nmax = inf\n", "release.endotoxin"),
        ('[release.potency]\nkind = "numeric"\nunit = "pg/mL"\n', "release.potency"),
        ("[release.potency]\nmin = 1.0\n", "release.potency.kind"),
        ("[release.cd73]\nmin = 120.0\n", "release.cd73"),
        ("[release.cd73]\ncolour = 1\n", "release.cd73.colour"),
        ('[release]\ncd73 = "high"\n', "release.cd73"),
        ("[security]\nlockout_threshold = 100\n", "security"),
        ("[release.cd73\nmin = 1\n", "file"),
        ("", "release"),
    ],
)
def test_a_specification_that_breaks_a_rule_is_refused_naming_the_key(
    quality: Quality, tmp_path: Path, text: str, key: str
) -> None:
    refused(set_spec(quality, "quinn", text, tmp_path), 2, key)
    quality.lab.login("quinn")
    assert [v["version"] for v in ok("spec", "history")] == [1]


def test_a_specification_that_changes_nothing_is_refused(quality: Quality, tmp_path: Path) -> None:
    refused(set_spec(quality, "quinn", "[release.endotoxin]\nmax = 7.0\n", tmp_path), 2, "file")


def test_an_unknown_specification_version_is_not_found(quality: Quality) -> None:
    quality.lab.login("tom")
    refused(invoke("spec", "show", "--version", "9"), 3, "no specification version 9")


# --- lims site -------------------------------------------------------------------------------


def site_set(lab: Lab, user: str, key: str, value: str) -> Invocation:
    lab.login(user)
    return invoke("site", "set", key, value, "--reason", "SOP-IT-004 rev 2", "--json")


def test_an_admin_sets_a_site_setting_and_it_is_in_force_at_once(lab: Lab) -> None:
    changed = site_set(lab, "admin", "security.lockout_threshold", "3")
    assert changed.exit_code == 0, changed.stderr
    shown = json.loads(changed.stdout)
    assert (shown["version"], shown["settings"]["security.lockout_threshold"]) == (2, 3)
    for _ in range(3):
        invoke("login", "admin", "--password-stdin", input=WRONG_PASSWORD + "\n")
    assert "locked" in invoke("login", "admin", "--password-stdin", input=PASSWORD + "\n").stderr


def test_a_site_setting_change_is_audited_with_its_old_and_new_value(lab: Lab) -> None:
    assert site_set(lab, "admin", "facility.name", "Turin Cell Factory").exit_code == 0
    assert ok("site", "show")["settings"]["facility.name"] == "Turin Cell Factory"
    [entry] = [e for e in ok("audit", "log") if e["action"] == "site.set" and e["old"]]
    assert (entry["entity_id"], entry["old"], entry["new"], entry["reason"]) == (
        "2",
        {"facility.name": "Example Cell Therapy Facility"},
        {"facility.name": "Turin Cell Factory"},
        "SOP-IT-004 rev 2",
    )
    shown = ok("config", "show")["settings"]["facility.name"]
    assert shown == {"value": "Turin Cell Factory", "source": "site record, version 2"}


@pytest.mark.parametrize("user", ["tech", "qa"])
def test_only_an_admin_sets_a_site_setting(lab: Lab, user: str) -> None:
    lab.add_user(user, "technician" if user == "tech" else "qa")
    refused(site_set(lab, user, "security.lockout_threshold", "3"), 4, "admin")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("release.endotoxin.max", "1e9", ("release.endotoxin.max", "lims spec set")),
        ("timezone", "UTC", ("timezone", "lims.toml")),
        ("database_url", "sqlite:////tmp/x.db", ("database_url", "lims.toml")),
        ("security.lockout_threshold", "0", ("security.lockout_threshold", "greater than")),
        ("security.lockout_threshold", "many", ("security.lockout_threshold", "integer")),
        ("security.lockout_threshold", "true", ("security.lockout_threshold", "whole number")),
        ("security.password_min_length", "8.5", ("security.password_min_length",)),
        ("security.colour", "blue", ("security.colour", "unknown")),
        ("facility.fin", "O1234", ("facility.fin", "ISBT 128")),
        ("lot.formulation_blocked_by", '["sunspots"]', ("lot.formulation_blocked_by",)),
        ("security", "{}", ("key", "SECTION.NAME")),
        ("weather.today", "1", ("key", "SECTION.NAME")),
        ("security.lockout_threshold", "5", ("security.lockout_threshold", "already")),
    ],
)
def test_a_bad_site_setting_is_refused_naming_the_key(
    lab: Lab, key: str, value: str, words: tuple[str, ...]
) -> None:
    refused(site_set(lab, "admin", key, value), 2, *words)
    assert ok("site", "show")["version"] == 1


@hypothesis_settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(
        st.integers(min_value=101),
        st.integers(max_value=0),
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=8),
        st.floats(allow_nan=False).filter(lambda x: not float(x).is_integer()),
    )
)
def test_any_lockout_threshold_outside_1_to_100_is_refused(lab: Lab, value: Any) -> None:
    refused(site_set(lab, "admin", "security.lockout_threshold", json.dumps(value)), 2)
    assert ok("site", "show")["version"] == 1


def test_a_bare_word_is_text(lab: Lab) -> None:
    changed = site_set(lab, "admin", "lot.vehicle", "saline")
    assert json.loads(changed.stdout)["settings"]["lot.vehicle"] == "saline"


def test_any_logged_in_user_reads_the_site_records(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    lab.login("tech")
    assert ok("site", "show")["settings"]["security.lockout_threshold"] == 5
    assert ok("spec", "show")["criteria"]["endotoxin"]["max"] == 7.0
    assert [v["version"] for v in ok("spec", "history")] == [1]


def test_init_stores_the_files_site_settings_not_the_environments(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("lims.toml").write_text(
        "[security]\nlockout_threshold = 3\n[release.endotoxin]\nmax = 5.0\n", encoding="utf-8"
    )
    monkeypatch.setenv("LIMS_SECURITY__PASSWORD_MIN_LENGTH", "16")
    started = invoke(
        "init",
        "--admin",
        "ada",
        "--full-name",
        "Ada Admin",
        "--password-stdin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert started.exit_code == 0, started.stderr
    warned(started, "security.password_min_length", "env LIMS_SECURITY__PASSWORD_MIN_LENGTH")
    assert "./lims.toml" not in started.stderr
    Path("lims.toml").unlink()
    invoke("login", "ada", "--password-stdin", input=PASSWORD + "\n")
    settings = ok("site", "show")["settings"]
    assert settings["security.lockout_threshold"] == 3
    assert settings["security.password_min_length"] == 12
    assert ok("spec", "show")["criteria"]["endotoxin"]["max"] == 5.0
