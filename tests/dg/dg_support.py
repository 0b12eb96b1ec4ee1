"""Shared by the ``dg`` tests: a fresh project made by ``create-dagster``, driven by ``dg``.

The project is made as Dagster's docs make one, without ``uv sync``: the tools run from the
virtualenv running the tests (which has ``flowyml-dagster`` installed, so its entry point
registers the component) and the project's ``src`` is on ``PYTHONPATH``, as an editable install
of the project would put it. Not a test module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg
from e2e.e2e_support import executable, make_dagster_home
from run_support import Run

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
COMPONENT = "flowyml_dagster.FlowymlPipelinesComponent"
REGISTRY_GROUP = "dagster_dg_cli.registry_modules"
# One dg command loads Dagster and the project in a fresh interpreter: seconds on two busy cores.
DG_TIMEOUT = 300.0


@dataclass(frozen=True)
class Project:
    """A ``dg`` project in a temporary directory, with its own ``DAGSTER_HOME`` and cache."""

    root: Path
    name: str
    env: dict[str, str]

    @property
    def package(self) -> Path:
        return self.root / "src" / self.name

    @property
    def defs(self) -> Path:
        return self.package / "defs"

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def dg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``dg ARGS`` in the project; with ``check``, a failure shows dg's own output."""
        done = subprocess.run(
            [executable("dg"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DG_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"dg {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def write_defs(self, folder: str, yaml_text: str) -> Path:
        """A component folder with ``yaml_text`` as its ``defs.yaml``."""
        path = self.defs / folder / "defs.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml_text, encoding="utf-8")
        return path

    def last_run(self, job: str) -> Run:
        """The latest run of ``job`` in the project's instance, read back as it was recorded."""
        instance = dg.DagsterInstance.from_config(str(self.dagster_home))
        (record,) = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
        return Run(record.run_id, record.status, instance)


def create_project(parent: Path, name: str) -> Project:
    """``create-dagster project --no-uv-sync``, then telemetry off for the project and instance."""
    registered = entry_points(group=REGISTRY_GROUP).names
    assert "flowyml_dagster" in registered, (
        f"no {REGISTRY_GROUP} entry point for flowyml_dagster in {sys.prefix}: re-install the "
        "package (pip install -e .) so dg can find the component"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("VIRTUAL_ENV", None)  # dg must not look for another environment to run in
    env.update(
        DAGSTER_DG_UPDATE_CHECK_ENABLED="0",  # no PyPI look-up for a newer dg
        DAGSTER_HOME=str(make_dagster_home(parent / "dagster-home", queued_runs=False)),
        FLOWYML_CACHE_DIR=str(parent / "flowyml-cache"),
        PYTHONPATH=os.pathsep.join(
            [str(parent / name / "src"), str(EXAMPLES), *filter(None, [env.get("PYTHONPATH")])]
        ),
    )
    subprocess.run(
        [executable("create-dagster"), "project", "--no-uv-sync", name],
        cwd=parent,
        env=env,
        check=True,
        capture_output=True,
        timeout=DG_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    root = parent / name
    with open(root / "pyproject.toml", "a", encoding="utf-8") as pyproject:
        pyproject.write("\n[tool.dg.cli.telemetry]\nenabled = false\n")
    return Project(root, name, env)
