"""Errors meant for the person at the keyboard, each with its exit code.

Raised by rules anywhere in lims; turned into one line on stderr and the exit
code in exactly one place (lims.cli.errors, called by lims.cli.app), which
also gives exceptions that are not LimsErrors theirs: a database or operating
system condition is 5, like Unavailable, and anything else is a bug, 70.
"""


class LimsError(Exception):
    """A refusal the user can act on. The message is one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RuleViolation(LimsError):
    """A rule refused the action (a release blocked, a duplicate, a bad state)."""

    exit_code = 1


class BadInput(LimsError):
    """A value is malformed or out of range; the message names the field."""

    exit_code = 2

    def __init__(self, field: str, allowed: str) -> None:
        super().__init__(f"{field}: {allowed}")
        self.field = field


class ConfigError(LimsError):
    """A setting in lims.toml or the environment is invalid."""

    exit_code = 2


class NotFound(LimsError):
    exit_code = 3


class NotPermitted(LimsError):
    """No live session, the wrong role, or a wrong password."""

    exit_code = 4


class Unavailable(LimsError):
    """The database or what it stands on cannot be used now; the request itself was sound.

    Read-only, full, held too long by another process, damaged, unreachable,
    made by a newer lims, a missing tool: fixed outside lims, then tried
    again. Its own exit code lets a script tell this from a refusal (1).
    """

    exit_code = 5


def shown(value: object, limit: int = 60) -> str:
    """A typed value quoted for a one-line message: escaped, and cut if long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-1]


class Audited(Exception):
    """Mixed into a refusal whose audit entry must stand: the transaction commits, then raises."""


class AuditedRefusal(NotPermitted, Audited):
    """Refused, with the refusal itself on record (a failed login or signature)."""


class AuditedRuleViolation(RuleViolation, Audited):
    """Refused by a rule, with the refusal on record (a vial scanned against the wrong patient)."""
