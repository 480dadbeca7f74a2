"""Electronic signatures (21 CFR Part 11): who signs, the password again, and what is signed.

A signature keeps the signer's name, the time, its meaning and the SHA-256 of
the record signed; its manifest hash binds all of that to the record's
identity (11.70), so a signature moved to another record no longer verifies.
Lots, deviations and specification versions are signed through here.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from lims import auth
from lims.config import Settings
from lims.domain import ids
from lims.domain.signatures import manifest_hash
from lims.errors import NotPermitted
from lims.models import Deviation, Lot, Signature, SpecificationVersion, User
from lims.timeutil import utcnow


def confirm_signer(
    session: Session, settings: Settings, actor: auth.Actor, password: str, *, signing: str
) -> User:
    """Two-component signing (21 CFR 11.200): the signer types their password again, now.

    A wrong password is audited and counts towards the lockout, as at login.
    """
    user = session.get(User, actor.user_id)
    if user is None or not user.active or user.locked_at is not None:
        raise NotPermitted(f"{actor.username} may not sign: the account is not active")
    # A password an admin set, or one past its age, is not the signer's own secret (11.300).
    due = auth.password_change_due(settings, user, utcnow())
    if due is not None:
        raise NotPermitted(f"{actor.username} may not sign: {due}; {auth.CHANGE_PASSWORD}")
    if not auth.password_matches(settings, user.password_hash, password):
        auth.count_wrong_password(
            session,
            settings,
            user,
            failure="signature.failed",
            refusal=f"signature refused: wrong password for {user.username} ({signing})",
        )
    user.failed_logins = 0
    session.add(user)
    return user


def _manifest_hash(signature: Signature, subject: str) -> str:
    """What binds the signature's signer, time and meaning to the record and its identity."""
    signer = (signature.username, signature.full_name)
    return manifest_hash(
        subject, signature.record_hash, signer, signature.signed_at, signature.meaning
    )


def linked(signature: Signature, subject: str) -> bool:
    """Whether the signature belongs to this record (11.70): its manifest hash still matches."""
    return _manifest_hash(signature, subject) == signature.manifest_hash


def sign(
    session: Session,
    signed: Lot | Deviation | SpecificationVersion,
    *,
    signer: User,
    record_hash: str,
    meaning: str,
    record_shape: int | None = None,
    at: datetime | None = None,
) -> Signature:
    """Sign a lot, a deviation or a specification version whose record hashes to
    `record_hash`; `meaning` says why, `record_shape` which shape of record was hashed."""
    assert signer.id is not None
    signature = Signature(
        user_id=signer.id,
        username=signer.username,
        full_name=signer.full_name,
        meaning=meaning,
        signed_at=at or utcnow(),
        record_hash=record_hash,
        manifest_hash="",  # computed below, from the signature as made
        record_shape=record_shape,
    )
    if isinstance(signed, Lot):
        signature.lot_id, subject = signed.id, ids.lot_subject(signed.code)
    elif isinstance(signed, SpecificationVersion):
        version = signed.version
        signature.specification_version, subject = version, ids.specification_subject(version)
    else:
        assert signed.id is not None
        signature.deviation_id, subject = signed.id, ids.deviation_subject(signed.id)
    signature.manifest_hash = _manifest_hash(signature, subject)
    session.add(signature)
    return signature
