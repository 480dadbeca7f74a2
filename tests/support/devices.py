"""A device node of a test's own, so a refusal to replace one is tested without risking the
machine's /dev/null (run as root, a regression would replace it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def null_device(directory: Path) -> Path:
    """A character device like /dev/null in directory; only root can make one, so others skip
    (a FIFO and a link to /dev/null stand in for it in tests/services/test_staging.py)."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    device = directory / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return device
