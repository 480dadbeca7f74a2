"""Where the migrations and label templates are, installed or in a checkout.

A wheel carries the top-level migrations/ and labels/ folders inside the
package (lims/_migrations, lims/_labels); a source checkout or an editable
install finds them beside the package.
"""

from pathlib import Path

from lims.errors import Unavailable

_PACKAGE = Path(__file__).resolve().parent


def _locate(packaged: str, checkout: str, marker: str) -> Path:
    for candidate in (_PACKAGE / packaged, _PACKAGE.parent / checkout):
        if (candidate / marker).exists():
            return candidate
    raise Unavailable(f"this lims installation has no {checkout}/ folder; reinstall lims")


def migrations_dir() -> Path:
    return _locate("_migrations", "migrations", "env.py")


def labels_dir() -> Path:
    return _locate("_labels", "labels", "README.md")
