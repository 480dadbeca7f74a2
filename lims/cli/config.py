"""The effective configuration and where each setting came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lims.cli.common import JsonOption, new_area, print_table, print_view, settings

if TYPE_CHECKING:
    from lims.views.config import ConfigView

app = new_area(
    "Configuration: this station's (lims.toml, $LIMS_CONFIG, LIMS_*) and the site's records."
)


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Print every effective setting and its source: a default, a file, the environment, or
    the site's record in the database (site settings and the release specification).

    \b
    Example:
      lims config show
      LIMS_CONFIG=/etc/lims/site.toml lims config show --json
    """
    from lims import resources
    from lims.config import config_files, describe_settings
    from lims.services.site import settings_in_force
    from lims.views.config import ConfigPaths, ConfigView

    described = describe_settings(*settings_in_force(settings()))
    view = ConfigView(
        settings={item.key: item for item in described},
        paths=ConfigPaths(
            config_files=[path for _, path in config_files()],
            migrations=resources.migrations_dir(),
            labels=resources.labels_dir(),
        ),
    )
    print_view(view, as_json, _print_config)


def _shown(value: object) -> object:
    """A list of tables (the site setting sites) as JSON, as `lims site set` takes it."""
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        import json

        return json.dumps(value, ensure_ascii=False)
    return value


def _print_config(view: ConfigView) -> None:
    print_table(
        "Settings",
        ["setting", "value", "source"],
        [(item.key, _shown(item.value), item.source) for item in view.settings.values()],
    )
    paths = view.paths
    print_table(
        "Files",
        ["what", "path"],
        [
            (
                "config files",
                ", ".join(str(path) for path in paths.config_files) or "none: packaged defaults",
            ),
            ("migrations", str(paths.migrations)),
            ("label templates", str(paths.labels)),
        ],
    )
