"""`lims config show`: each effective setting with where it came from, and the files lims reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lims.views import hidden, shown_as


@dataclass(frozen=True, kw_only=True)
class SettingOrigin:
    """One effective setting and its source: a default, a configuration file or the environment."""

    key: str = hidden()  # the JSON names each setting by its key
    value: Any
    source: str


@dataclass(frozen=True, kw_only=True)
class ConfigPaths:
    config_files: list[Path] = shown_as(lambda paths: [str(path) for path in paths])
    migrations: Path = shown_as(str)
    labels: Path = shown_as(str)


@dataclass(frozen=True, kw_only=True)
class ConfigView:
    settings: dict[str, SettingOrigin]  # by key, in lims.toml order
    paths: ConfigPaths
