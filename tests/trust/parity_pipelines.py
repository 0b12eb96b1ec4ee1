"""Pipelines ``test_runner_parity`` runs every way there is, and the jobs Dagster rebuilds.

Not a test module. Every step is made with ``register=False`` and added to its ``Pipeline``
explicitly, so the autouse empty-registry fixture leaves them alone. Steps that count their calls
append to a file in ``workdir`` (a context param), since they may run in a forked child or in a
Dagster worker process. The ``*_job`` functions are module-level so ``dagster.reconstructable``
can rebuild the jobs in Dagster's worker processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import BaseModel

from flowyml import Pipeline, context, step
from flowyml_dagster import build_definitions


def note(workdir: str, file_name: str) -> None:
    """Append one line to ``workdir/file_name`` (one short O_APPEND write: atomic)."""
    if not workdir:
        raise RuntimeError("the test did not give 'workdir'")
    with (Path(workdir) / file_name).open("a", encoding="utf-8") as log:
        log.write("called\n")


# --- a step mutates its input in place; a later step reads the same input --------------------


@step(outputs=["mut/raw"], register=False)
def mut_load() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]})


@step(inputs=["mut/raw"], outputs=["mut/total"], register=False)
def mut_square(raw: pd.DataFrame) -> int:
    raw["a_sq"] = raw["a"] ** 2
    return int(raw["a_sq"].sum())


@step(inputs=["mut/raw", "mut/total"], outputs=["mut/seen"], register=False)
def mut_seen(raw: pd.DataFrame, total: int) -> dict[str, Any]:
    return {"columns": list(raw.columns), "total": total}


MUTATING = Pipeline("mutating", steps=[mut_load, mut_square, mut_seen])


# --- an execution group -----------------------------------------------------------------------


@step(outputs=["grp/seed"], register=False)
def grp_seed() -> list[int]:
    return [1, 2, 3]


@step(inputs=["grp/seed"], outputs=["grp/doubled"], execution_group="prep", register=False)
def grp_double(seed: list[int]) -> list[int]:
    return [v * 2 for v in seed]


@step(
    inputs=["grp/doubled"],
    outputs=["grp/total", "grp/largest"],
    execution_group="prep",
    register=False,
)
def grp_stats(doubled: list[int]) -> tuple[int, int]:
    return sum(doubled), max(doubled)


@step(inputs=["grp/total"], outputs=["grp/next"], execution_group="prep", register=False)
def grp_next(total: int) -> int:
    return total + 1


@step(inputs=["grp/next", "grp/largest"], outputs=["grp/report"], register=False)
def grp_report(after: int, largest: int) -> dict[str, int]:
    return {"next": after, "largest": largest}


GROUPED = Pipeline("grouped", steps=[grp_seed, grp_double, grp_stats, grp_next, grp_report])


# --- a condition skips a step and what needs it -----------------------------------------------


def wants_extra(with_extra: bool) -> bool:
    return with_extra


@step(outputs=["cond/base"], register=False)
def cond_base() -> int:
    return 5


@step(inputs=["cond/base"], outputs=["cond/extra"], condition=wants_extra, register=False)
def cond_extra(base: int) -> int:
    return base * 100


@step(inputs=["cond/extra"], outputs=["cond/after_extra"], register=False)
def cond_after_extra(extra: int) -> int:
    return extra + 1


@step(inputs=["cond/base"], outputs=["cond/independent"], register=False)
def cond_independent(base: int) -> int:
    return base + 1


CONDITIONAL = Pipeline(
    "conditional",
    context=context(with_extra=False),
    steps=[cond_base, cond_extra, cond_after_extra, cond_independent],
)


# --- typed params: an int for a float, a dict for a pydantic model -----------------------------


class Settings(BaseModel):
    depth: int
    name: str = "default"


@step(outputs=["typed/report"], register=False)
def typed_report(rate: float = 0.5, settings: Settings = Settings(depth=1)) -> dict[str, Any]:  # noqa: B008
    return {
        "rate_type": type(rate).__name__,
        "rate": rate,
        "settings_type": type(settings).__name__,
        "settings": settings.model_dump() if isinstance(settings, BaseModel) else settings,
    }


TYPED = Pipeline(
    "typed",
    context=context(rate=2, settings={"depth": 3, "name": "deep"}),
    steps=[typed_report],
)


# --- several outputs --------------------------------------------------------------------------


@step(outputs=["multi/pair", "multi/mapping"], register=False)
def multi_tuple() -> tuple[list[int], dict[str, int]]:
    return [1, 2], {"k": 3}


@step(outputs=["multi/low", "multi/high", "multi/array"], register=False)
def multi_dict() -> dict[str, Any]:
    return {
        "multi/high": 9,
        "multi/array": np.arange(3, dtype=np.float32),
        "multi/low": 1,
    }


@step(
    inputs=["multi/pair", "multi/mapping", "multi/low", "multi/high", "multi/array"],
    outputs=["multi/summary"],
    register=False,
)
def multi_summary(
    pair: list[int], mapping: dict[str, int], low: int, high: int, array: np.ndarray
) -> dict[str, Any]:
    return {
        "pair": pair,
        "k": mapping["k"],
        "span": high - low,
        "array_sum": float(array.sum()),
    }


MULTI = Pipeline("multi", steps=[multi_tuple, multi_dict, multi_summary])


# --- steps that raise with retry=0, alone and inside an execution group -----------------------


@step(outputs=["fail/ok"], execution_group="failing", retry=2, cache=False, register=False)
def fail_ok(workdir: str = "") -> int:
    note(workdir, "fail_ok.calls")
    return 1


@step(
    inputs=["fail/ok"],
    outputs=["fail/broken"],
    execution_group="failing",
    retry=0,
    cache=False,
    register=False,
)
def fail_broken(ok: int, workdir: str = "") -> int:
    note(workdir, "fail_broken.calls")
    raise ValueError("broken on purpose")


@step(outputs=["solo/broken"], retry=0, cache=False, register=False)
def solo_broken(workdir: str = "") -> int:
    note(workdir, "solo_broken.calls")
    raise ValueError("solo step broken on purpose")


FAILING = Pipeline("failing", steps=[fail_ok, fail_broken, solo_broken])


PIPELINES = {p.name: p for p in (MUTATING, GROUPED, CONDITIONAL, TYPED, MULTI, FAILING)}


# --- what every way must give -----------------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "mutating": {
        "mut/raw": pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]}),
        "mut/total": 14,
        "mut/seen": {"columns": ["a", "b"], "total": 14},
    },
    "grouped": {
        "grp/seed": [1, 2, 3],
        "grp/doubled": [2, 4, 6],
        "grp/total": 12,
        "grp/largest": 6,
        "grp/next": 13,
        "grp/report": {"next": 13, "largest": 6},
    },
    "conditional": {"cond/base": 5, "cond/independent": 6},
    "typed": {
        "typed/report": {
            "rate_type": "float",
            "rate": 2.0,
            "settings_type": "Settings",
            "settings": {"depth": 3, "name": "deep"},
        }
    },
    "multi": {
        "multi/pair": [1, 2],
        "multi/mapping": {"k": 3},
        "multi/low": 1,
        "multi/high": 9,
        "multi/array": np.arange(3, dtype=np.float32),
        "multi/summary": {"pair": [1, 2], "k": 3, "span": 8, "array_sum": 3.0},
    },
}


# --- Dagster definitions and the jobs Dagster rebuilds in its worker processes ----------------


def definitions(pipeline: Pipeline) -> dg.Definitions:
    """A code location of ``pipeline`` with build_definitions' default (forkserver) executor."""
    return build_definitions([pipeline])


def mutating_job() -> dg.JobDefinition:
    return definitions(MUTATING).resolve_job_def("mutating")


def grouped_job() -> dg.JobDefinition:
    return definitions(GROUPED).resolve_job_def("grouped")


def conditional_job() -> dg.JobDefinition:
    return definitions(CONDITIONAL).resolve_job_def("conditional")


def typed_job() -> dg.JobDefinition:
    return definitions(TYPED).resolve_job_def("typed")


def multi_job() -> dg.JobDefinition:
    return definitions(MULTI).resolve_job_def("multi")


def failing_job() -> dg.JobDefinition:
    return definitions(FAILING).resolve_job_def("failing")


JOBS = {
    "mutating": mutating_job,
    "grouped": grouped_job,
    "conditional": conditional_job,
    "typed": typed_job,
    "multi": multi_job,
    "failing": failing_job,
}
