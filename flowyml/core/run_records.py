"""A plain run leaves history: one small JSON record per run, in the pipeline's runs directory.

Dagster keeps every run in its run storage; the plain runner writes this record so a run without
any server can still be looked at afterwards (``ls``, ``jq``, a notebook). A record says how each
step ended, never the values it produced.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

from flowyml.core.results import PipelineResult

logger = logging.getLogger(__name__)

RUNS_DIR_ENV = "FLOWYML_RUNS_DIR"
# A run id names its record's file: no path separators, no leading dot, no surprises.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def default_runs_dir() -> Path:
    """``$FLOWYML_RUNS_DIR``, else the user's state directory (``$XDG_STATE_HOME/flowyml/runs``)."""
    if override := os.environ.get(RUNS_DIR_ENV):
        return Path(override).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "flowyml" / "runs"


def check_run_id(run_id: str) -> None:
    """Refuse a run id that cannot name a file in the runs directory, before anything runs."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(
            f"run_id must be 1-128 letters, digits, '.', '_' or '-' and start with a letter or "
            f"digit, got {run_id!r}"
        )


def write_run_record(runs_dir: Path, result: PipelineResult) -> Path | None:
    """Write ``<runs_dir>/<run id>.json`` (private to the user, replaced in one rename); a
    directory that cannot take it costs a warning, never the run's result."""
    try:
        runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=runs_dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(result.to_dict(), file, indent=2)
            target = runs_dir / f"{result.run_id}.json"
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.warning("flowyml: run %s not recorded in %s (%s)", result.run_id, runs_dir, exc)
        return None
    return target
