"""Accounts under 21 CFR 11.100 and 11.300: one's own password, changed when an admin set it
or it grew old and never back to a recent one; full names that name one person; and a
lockout the site's only admin can come back from."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from lims import audit, db
from lims.config import Settings
from lims.errors import BadInput, NotPermitted, RuleViolation
from lims.models import User
from lims.services import deviations, lots, sessions, users
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views.trail import AuditView
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality

KNOWN_TO_ADMIN = "typed by the admin 1"
NEW_PASSWORD = "only quinn knows this"
WRONG_PASSWORD = "not the password at all"
CHANGE = "change your password with lims passwd"


def _login(settings: Settings, username: str, password: str = PASSWORD) -> None:
    from lims import auth

    with unit_of_work(settings, authenticated=False) as uow:
        token, _ = sessions.login(uow, username=username, password=password)
    auth.write_token(settings, token)


def _passwd(settings: Settings, current: str, new: str) -> None:
    with unit_of_work(settings, while_password_change_due=True) as uow:
        users.change_password(uow, current=current, new=new)


def _whoami(settings: Settings) -> str:
    with unit_of_work(settings) as uow:
        assert uow.actor is not None
        return uow.actor.username


def _add_by_admin(lab: Lab, username: str, role: str, full_name: str | None = None) -> None:
    with lab.acting_as("admin") as uow:
        users.create_user(
            uow,
            username=username,
            full_name=full_name or username.title() + " Person",
            role=role,
            password=KNOWN_TO_ADMIN,
        )


def _user(settings: Settings, username: str) -> User:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return users.get_user(uow.session, username)


def _set_user(settings: Settings, username: str, **values: Any) -> None:
    """Change a user's row behind lims's back: time passing, or an account from before."""
    with db.engine_for(settings).begin() as connection:
        connection.execute(update(User).where(col(User.username) == username).values(**values))


def _trail(settings: Settings, username: str) -> list[AuditView]:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.entries(uow.session, entity_type="user", entity_id=username)


# --- a password an admin typed is changed before anything else ----------------------------


def test_the_admin_who_typed_a_qa_password_cannot_sign_with_it(quality: Quality) -> None:
    """Why: an admin typed every initial password, so could log in as QA and sign."""
    lab = quality.lab
    quality.record_passing()
    _add_by_admin(lab, "sam", "qa")
    _login(lab.settings, "sam", KNOWN_TO_ADMIN)  # logging in is how the change begins
    with pytest.raises(NotPermitted, match=CHANGE):
        quality.run(lots.release, lot=quality.lot_id, password=KNOWN_TO_ADMIN)
    # Signing checks it too, whoever the command runs as.
    with lab.acting_as("sam") as uow, pytest.raises(NotPermitted, match="may not sign"):
        lots.release(uow, lot=quality.lot_id, password=KNOWN_TO_ADMIN)
    _passwd(lab.settings, KNOWN_TO_ADMIN, NEW_PASSWORD)
    with pytest.raises(NotPermitted):
        _login(lab.settings, "sam", KNOWN_TO_ADMIN)
    _login(lab.settings, "sam", NEW_PASSWORD)
    released = quality.run(lots.release, lot=quality.lot_id, password=NEW_PASSWORD)
    assert released.summary.status == "released"


def test_a_pending_change_refuses_every_command_but_passwd_and_whoami(lab: Lab) -> None:
    _add_by_admin(lab, "tom", "technician")
    _login(lab.settings, "tom", KNOWN_TO_ADMIN)
    with pytest.raises(NotPermitted, match=f"set by an admin: {CHANGE}"):
        _whoami(lab.settings)
    with unit_of_work(lab.settings, write=False, while_password_change_due=True) as uow:
        shown = sessions.current_session(uow)
    assert shown.password_change_due == "your password was set by an admin"
    _passwd(lab.settings, KNOWN_TO_ADMIN, NEW_PASSWORD)
    assert _whoami(lab.settings) == "tom"
    assert _trail(lab.settings, "tom")[-1].action == "user.password_change"
    assert not _user(lab.settings, "tom").password_set_by_admin


def test_a_session_opened_elsewhere_with_the_old_password_ends_at_the_change(
    lab: Lab, tmp_path: Path
) -> None:
    """The admin who typed quinn's password logs in with it at another station and waits:
    quinn's change ends that session, which must not become a usable one."""
    _add_by_admin(lab, "quinn2", "qa")
    elsewhere = lab.settings.model_copy(update={"home": tmp_path / "elsewhere"})
    elsewhere.home.mkdir(mode=0o700)
    _login(elsewhere, "quinn2", KNOWN_TO_ADMIN)
    _login(lab.settings, "quinn2", KNOWN_TO_ADMIN)
    _passwd(lab.settings, KNOWN_TO_ADMIN, NEW_PASSWORD)
    assert _whoami(lab.settings) == "quinn2"
    with pytest.raises(NotPermitted, match="password changed"):
        _whoami(elsewhere)


def test_the_first_admin_chose_their_own_password(lab: Lab) -> None:
    lab.login("admin")
    assert _whoami(lab.settings) == "admin"


def test_a_password_older_than_the_site_allows_must_be_changed(lab: Lab) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    _set_user(lab.settings, "tom", password_set_at=utcnow() - timedelta(days=180, minutes=1))
    with pytest.raises(NotPermitted, match=f"more than 180 days old: {CHANGE}"):
        _whoami(lab.settings)
    lab.set_site(security={"password_max_age_days": 365})
    assert _whoami(lab.settings) == "tom"


def test_an_account_from_before_password_changes_ages_from_its_creation(lab: Lab) -> None:
    lab.add_user("old", "technician")
    lab.add_user("recent", "technician")
    for name, days in (("old", 200), ("recent", 20)):
        _set_user(
            lab.settings,
            name,
            password_set_at=None,
            password_set_by_admin=False,
            created_at=utcnow() - timedelta(days=days),
        )
    lab.login("recent")
    assert _whoami(lab.settings) == "recent"
    lab.login("old")
    with pytest.raises(NotPermitted, match="more than 180 days old"):
        _whoami(lab.settings)


# --- lims passwd ---------------------------------------------------------------------------


def test_passwd_refuses_a_wrong_current_password_and_counts_it(lab: Lab) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    with pytest.raises(NotPermitted, match="wrong current password"):
        _passwd(lab.settings, WRONG_PASSWORD, NEW_PASSWORD)
    assert _user(lab.settings, "tom").failed_logins == 1
    assert _trail(lab.settings, "tom")[-1].action == "user.password_change_failed"


def test_passwd_checks_the_new_password_like_any_other(lab: Lab) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    for bad in ("short", "tom", " padded password "):
        with pytest.raises(BadInput):
            _passwd(lab.settings, PASSWORD, bad)


def test_the_last_passwords_cannot_be_chosen_again(lab: Lab) -> None:
    lab.set_site(security={"password_history": 3})
    lab.add_user("tom", "technician")
    lab.login("tom")
    chosen = [PASSWORD, "second password 2", "third password 3"]
    for current, new in itertools.pairwise(chosen):
        _passwd(lab.settings, current, new)
    for recent in chosen:  # the current one and the two before it
        with pytest.raises(RuleViolation, match="one of your last 3 passwords"):
            _passwd(lab.settings, chosen[-1], recent)
    _passwd(lab.settings, chosen[-1], "fourth password 4")
    _passwd(lab.settings, "fourth password 4", PASSWORD)  # four back: allowed again


# --- an admin's reset -------------------------------------------------------------------


def test_an_admin_resets_a_forgotten_password_to_one_its_owner_must_change(lab: Lab) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    with lab.acting_as("admin") as uow:
        users.reset_password(uow, username="tom", password=KNOWN_TO_ADMIN, reason="forgot it")
    with pytest.raises(NotPermitted):  # the session tom had is over
        _whoami(lab.settings)
    entry = _trail(lab.settings, "tom")[-1]
    assert (entry.action, entry.username, entry.reason) == (
        "user.password_reset",
        "admin",
        "forgot it",
    )
    assert entry.new == {"password_set_by_admin": True, "sessions_ended": 1}
    _login(lab.settings, "tom", KNOWN_TO_ADMIN)
    with pytest.raises(NotPermitted, match=CHANGE):
        _whoami(lab.settings)
    _passwd(lab.settings, KNOWN_TO_ADMIN, NEW_PASSWORD)
    assert _whoami(lab.settings) == "tom"


def test_an_admin_cannot_reset_their_own_password(lab: Lab) -> None:
    with lab.acting_as("admin") as uow, pytest.raises(RuleViolation, match="lims passwd"):
        users.reset_password(uow, username="admin", password=KNOWN_TO_ADMIN, reason=None)


def test_only_an_admin_resets_passwords(lab: Lab) -> None:
    lab.add_user("quinn", "qa")
    lab.add_user("tom", "technician")
    with lab.acting_as("quinn") as uow, pytest.raises(NotPermitted):
        users.reset_password(uow, username="tom", password=KNOWN_TO_ADMIN, reason=None)


# --- full names -------------------------------------------------------------------------


def test_two_active_users_cannot_share_a_full_name(lab: Lab) -> None:
    """Why: two users could both be "Quinn QA", and a signature could name either."""
    _add_by_admin(lab, "quinn", "qa", "Quinn QA")
    for same in ("Quinn QA", "quinn  qa", " QUINN QA", "Ｑｕｉｎｎ QA"):
        with pytest.raises(RuleViolation, match="already quinn's"):
            _add_by_admin(lab, "quinn2", "qa", same)
    for look_alike in ("Quinn QА", "Quin­n QA", "Quinn‮ AQ"):  # Cyrillic А
        with pytest.raises(BadInput, match="full-name"):
            _add_by_admin(lab, "quinn2", "qa", look_alike)
    with lab.acting_as("admin") as uow:
        users.deactivate_user(uow, username="quinn", reason="left")
    _add_by_admin(lab, "quinn2", "qa", "Quinn QA")  # the name is free once she has gone


def test_signatures_and_the_audit_trail_name_the_person_and_the_account(
    quality: Quality,
) -> None:
    lab = quality.lab
    opened = quality.run(deviations.open_deviation, lot=quality.lot_id, description="label smudged")
    lab.login("rita")
    closed = quality.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="confirmed, lot to be rejected",
        password=PASSWORD,
    )
    assert closed.signed_by == "Rita Tester (rita)"
    (listed,) = quality.show().deviations
    assert listed.signed_by == "Rita Tester (rita)"
    rejected = quality.run(lots.reject, lot=quality.lot_id, reason="sterile? no", password=PASSWORD)
    (signature,) = rejected.signatures
    assert "Rita Tester (rita)" in signature.manifestation
    entry = _trail(lab.settings, "rita")[-1]
    assert entry.full_name == "Rita Tester"
    assert entry.who == "Rita Tester (rita)"


# --- the only admin's lockout -------------------------------------------------------------


def _lock(settings: Settings, username: str) -> None:
    with pytest.raises(NotPermitted, match="now locked"):
        _login(settings, username, WRONG_PASSWORD)


def test_the_only_admins_lockout_ends_by_itself_after_the_lockout_time(lab: Lab) -> None:
    """Why: five wrong passwords locked the only admin with no way back but the database."""
    for _ in range(4):
        with pytest.raises(NotPermitted, match="wrong password"):
            _login(lab.settings, "admin", WRONG_PASSWORD)
    _lock(lab.settings, "admin")  # the fifth, the default threshold
    with pytest.raises(NotPermitted, match=r"unlocks by itself at .* \(30 min after locking\)"):
        _login(lab.settings, "admin")
    _set_user(lab.settings, "admin", locked_at=utcnow() - timedelta(minutes=30))
    _login(lab.settings, "admin")
    assert _whoami(lab.settings) == "admin"
    unlock, login = _trail(lab.settings, "admin")[-2:]
    assert (unlock.action, unlock.username, login.action) == (
        "auth.automatic_unlock",
        None,
        "auth.login",
    )
    assert unlock.old == {"locked": True, "failed_logins": 5}


def test_the_lockout_time_is_the_sites(lab: Lab) -> None:
    lab.set_site(security={"lockout_threshold": 1, "lockout_minutes": 90})
    _lock(lab.settings, "admin")
    _set_user(lab.settings, "admin", locked_at=utcnow() - timedelta(minutes=60))
    with pytest.raises(NotPermitted, match="90 min after locking"):
        _login(lab.settings, "admin")


def test_a_wrong_password_after_the_lockout_time_counts_afresh(lab: Lab) -> None:
    lab.set_site(security={"lockout_threshold": 2})
    with pytest.raises(NotPermitted):
        _login(lab.settings, "admin", WRONG_PASSWORD)
    _lock(lab.settings, "admin")
    _set_user(lab.settings, "admin", locked_at=utcnow() - timedelta(minutes=31))
    with pytest.raises(NotPermitted, match="wrong password"):
        _login(lab.settings, "admin", WRONG_PASSWORD)
    user = _user(lab.settings, "admin")
    assert (user.locked_at, user.failed_logins) == (None, 1)


def test_with_another_admin_a_lockout_waits_for_their_unlock(lab: Lab) -> None:
    lab.add_user("ada2", "admin")
    lab.add_user("tom", "technician")
    lab.set_site(security={"lockout_threshold": 1})
    for name in ("admin", "tom"):
        _lock(lab.settings, name)
        _set_user(lab.settings, name, locked_at=utcnow() - timedelta(days=1))
        with pytest.raises(NotPermitted, match=f"an admin must run `lims user unlock {name}`"):
            _login(lab.settings, name)
    lab.login("ada2")
    with unit_of_work(lab.settings) as uow:
        users.unlock_user(uow, username="admin", reason="identity checked")
    entry = _trail(lab.settings, "admin")[-1]
    assert (entry.action, entry.username) == ("user.unlock", "ada2")
    _login(lab.settings, "admin")


def test_with_every_admin_locked_only_the_first_locked_unlocks_by_itself(lab: Lab) -> None:
    """Locking every admin must not give each of them fresh guesses every lockout period."""
    lab.add_user("ada2", "admin")
    lab.set_site(security={"lockout_threshold": 1})
    for name, hours_ago in (("ada2", 3), ("admin", 2)):
        _lock(lab.settings, name)
        _set_user(lab.settings, name, locked_at=utcnow() - timedelta(hours=hours_ago))
    with pytest.raises(NotPermitted, match="an admin must run `lims user unlock admin`"):
        _login(lab.settings, "admin")
    _login(lab.settings, "ada2")
    assert "auth.automatic_unlock" in [entry.action for entry in _trail(lab.settings, "ada2")]


def test_a_locked_admin_cannot_unlock_themselves(lab: Lab) -> None:
    lab.add_user("ada2", "admin")
    lab.set_site(security={"lockout_threshold": 1})
    lab.login("admin")
    _lock(lab.settings, "admin")
    with pytest.raises(NotPermitted), unit_of_work(lab.settings) as uow:
        users.unlock_user(uow, username="admin", reason="myself")
    assert _user(lab.settings, "admin").locked_at is not None
