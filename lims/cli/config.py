"""The effective configuration and where each setting came from."""

from __future__ import annotations

from lims.cli.common import JsonOption, new_area, print_json, print_table, settings

app = new_area("Configuration: lims.toml, $LIMS_CONFIG and LIMS_* environment variables.")


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Print every effective setting and its source (default, a file, or the environment).

    \b
    Example:
      lims config show
      LIMS_CONFIG=/etc/lims/site.toml lims config show --json
    """
    from lims import resources
    from lims.config import config_files, describe_settings

    described = describe_settings(settings())
    paths = {
        "config_files": [str(path) for _, path in config_files()],
        "migrations": str(resources.migrations_dir()),
        "labels": str(resources.labels_dir()),
    }
    if as_json:
        print_json(
            {
                "settings": {
                    item.key: {"value": item.value, "source": item.source} for item in described
                },
                "paths": paths,
            }
        )
        return
    print_table(
        "Settings",
        ["setting", "value", "source"],
        [(item.key, item.value, item.source) for item in described],
    )
    print_table(
        "Files",
        ["what", "path"],
        [
            ("config files", ", ".join(paths["config_files"]) or "none: packaged defaults"),
            ("migrations", paths["migrations"]),
            ("label templates", paths["labels"]),
        ],
    )
