"""``make run``'s instance: telemetry and the "join the community" dialog off, for new instances
and for those an older Makefile made, without touching a setting the user wrote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]
# What the Makefile wrote before the dialog was turned off, and what a user may have added.
OLD_MAKEFILES_SETTINGS = "telemetry:\n  enabled: false\n"
USERS_OWN_SETTINGS = (
    "# my instance\n"
    "nux:\n"
    "  enabled: true\n"
    "run_coordinator:\n"
    "  module: dagster.core.run_coordinator\n"
    "  class: DefaultRunCoordinator"  # no newline at the end, as an editor may leave it
)


def make_dagster_home(home: Path) -> None:
    """Run the Makefile's own recipe for ``home``, as ``make run`` does before the server."""
    subprocess.run(
        ["make", "--silent", "dagster-home", f"DAGSTER_HOME={home}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )


def settings(home: Path) -> dict[str, bool]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {"nux": instance.nux_enabled, "telemetry": instance.telemetry_enabled}


def test_a_new_instance_has_the_welcome_dialog_and_telemetry_off(tmp_path: Path) -> None:
    home = tmp_path / "home"

    make_dagster_home(home)

    assert settings(home) == {"nux": False, "telemetry": False}


def test_an_instance_an_older_makefile_made_gets_the_welcome_dialog_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(OLD_MAKEFILES_SETTINGS)

    make_dagster_home(home)

    assert settings(home) == {"nux": False, "telemetry": False}


def test_the_users_own_settings_are_kept_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(USERS_OWN_SETTINGS)

    make_dagster_home(home)

    assert (home / "dagster.yaml").read_text().startswith(USERS_OWN_SETTINGS + "\n")
    assert settings(home) == {"nux": True, "telemetry": False}


def test_making_it_again_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_dagster_home(home)
    first = (home / "dagster.yaml").read_text()

    make_dagster_home(home)

    assert (home / "dagster.yaml").read_text() == first
