"""Electronic signatures (21 CFR Part 11): who signs, the password again, and what is signed.

A signature keeps the signer's name, the time, its meaning and the SHA-256 of
the record signed; its manifest hash binds all of that to the record's
identity (11.70), so a signature moved to another record no longer verifies.
Lots, deviations and specification versions are signed through here.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from lims import auth
from lims.config import Settings
from lims.domain.signatures import manifest_hash
from lims.errors import NotPermitted
from lims.models import Signature, User
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


def linked(signature: Signature, subject: str) -> bool:
    """Whether the signature belongs to this record (11.70): its manifest hash still matches."""
    expected = manifest_hash(
        subject,
        signature.record_hash,
        (signature.username, signature.full_name),
        signature.signed_at,
        signature.meaning,
    )
    return expected == signature.manifest_hash


def sign(
    session: Session,
    *,
    signer: Any,
    subject: str,
    record_hash: str,
    meaning: str,
    lot_id: int | None = None,
    deviation_id: int | None = None,
    specification_version: int | None = None,
) -> Signature:
    signed_at = utcnow()
    signature = Signature(
        lot_id=lot_id,
        deviation_id=deviation_id,
        specification_version=specification_version,
        user_id=signer.id,
        username=signer.username,
        full_name=signer.full_name,
        meaning=meaning,
        signed_at=signed_at,
        record_hash=record_hash,
        manifest_hash=manifest_hash(
            subject, record_hash, (signer.username, signer.full_name), signed_at, meaning
        ),
    )
    session.add(signature)
    return signature
