"""User accounts that need more than one row: the first administrator and the database with it."""

from __future__ import annotations

from lims import auth
from lims.config import Settings
from lims.models import FULL_NAME_MAX
from lims.uow import Schema, unit_of_work
from lims.validation import free_text


def initialise(
    settings: Settings, *, username: str, full_name: str, password: str
) -> auth.UserView:
    """Create the database at the newest schema with its first administrator, or neither."""
    auth.valid_username(username, field="admin")
    free_text("full-name", full_name, max_length=FULL_NAME_MAX)
    auth.valid_password(settings, username, password)
    with unit_of_work(settings, authenticated=False, schema=Schema.UPGRADE) as uow:
        return auth.create_user(
            uow.session,
            settings,
            actor=None,
            username=username,
            full_name=full_name,
            role="admin",
            password=password,
        )
