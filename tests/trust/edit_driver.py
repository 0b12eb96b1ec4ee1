"""Run a user's pipeline module the way ``test_edit_matrix`` needs, in a fresh interpreter.

Not a test module: ``test_edit_matrix`` starts it with ``python edit_driver.py ARGS`` and reads
one JSON document from its stdout. It imports the user's module (``--module``, found on
``PYTHONPATH``), takes its ``PIPELINE`` and the pipeline inputs from ``data.make_inputs()``, and
runs the pipeline three times, each time with inputs made afresh:

- ``reference``: the plain runner with caching off (what the code computes now);
- ``cached/plain``: the plain runner with ``$FLOWYML_CACHE_DIR`` = ``--plain-cache``;
- ``cached/dagster``: ``flowyml_dagster.run`` with ``$FLOWYML_CACHE_DIR`` = ``--dagster-cache``.

With ``--rerun`` each cached run is made a second time (``rerun/plain``, ``rerun/dagster``).

For each run and step it prints the status, whether the step was a cache hit, and a JSON-able
description of its outputs (frames and arrays described in full: dtypes, index, values, masks).
If the module cannot be imported or the pipeline cannot be built, it prints ``{"error": ...}``.

``--site DIR`` is added with ``site.addsitedir`` before the user's code is imported: the tests'
fake installed distribution (``fakedep``) lives there, with its ``.dist-info``.

``python edit_driver.py --serve`` answers many runs from one warm interpreter: it imports what
every run needs (flowyml, Dagster, numpy, pandas; never the user's code), then for each request
(one JSON line on stdin) forks a child that runs ``main`` with the request's arguments, working
dir, environment and path, its stdout and stderr going to the request's files, and kills it
(SIGKILL) at the request's deadline. A child starts in milliseconds instead of the ~3 s those
imports take, and imports the user's code and ``fakedep`` afresh; what it shares with its server
and its siblings is what a fork keeps: the string hash seed and the heap's layout. So a cache key
that depends on either (set order, ``id()``) is the same in every child: the test runs the base
run, and the edits that must hit, in new interpreters.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import select
import signal
import site
import sys
import traceback
from typing import Any


def describe(value: Any) -> Any:
    """A JSON-able description of ``value`` that differs whenever its content does."""
    import numpy as np
    import pandas as pd
    from pydantic import BaseModel, SecretStr

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": repr(value)} if not math.isfinite(value) else {"float": value}
    if isinstance(value, pd.DataFrame):
        return {
            "frame": {
                "columns": [describe(c) for c in value.columns],
                "dtypes": [str(value[c].dtype) for c in value.columns],
                "categories": {
                    str(c): [str(x) for x in value[c].cat.categories]
                    for c in value.columns
                    if isinstance(value[c].dtype, pd.CategoricalDtype)
                },
                "index": [describe(i) for i in value.index.tolist()],
                "rows": [[describe(v) for v in row] for row in value.itertuples(index=False)],
            }
        }
    if isinstance(value, pd.Series):
        return {"series": describe(value.to_frame())}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if isinstance(value, np.ma.MaskedArray):
        return {
            "masked": {
                "dtype": str(value.dtype),
                "data": describe(value.data.tolist()),
                "mask": np.ma.getmaskarray(value).tolist(),
            }
        }
    if isinstance(value, np.ndarray):
        return {
            "array": {
                "dtype": str(value.dtype),
                "names": list(value.dtype.names or ()),
                "data": describe(value.tolist()),
            }
        }
    if isinstance(value, np.generic):
        return describe(value.item())
    if isinstance(value, SecretStr):
        return {"secret_length": len(value.get_secret_value())}
    if isinstance(value, BaseModel):
        return {"model": type(value).__name__, "dump": describe(value.model_dump())}
    if isinstance(value, dict):
        return {"dict": [[describe(k), describe(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [describe(v) for v in value]}
    return {"repr": repr(value)}


def summarize(result: Any) -> dict[str, Any]:
    """Each step's status, cache hit and described outputs; the run's outputs by name."""
    steps = {}
    for name, step_result in result.step_results.items():
        steps[name] = {
            "status": step_result.status.value,
            "cached": bool(step_result.cached),
            "outputs": {k: describe(v) for k, v in sorted(step_result.outputs.items())},
            "error": str(step_result.error) if step_result.error else None,
        }
    outputs = {k: describe(v) for k, v in sorted(result.outputs.items())}
    return {"success": result.success, "steps": steps, "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--plain-cache", required=True)
    parser.add_argument("--dagster-cache", required=True)
    parser.add_argument("--rerun", action="store_true", help="run each cached run twice")
    args = parser.parse_args(argv)
    site.addsitedir(args.site)

    def fail(stage: str, exc: BaseException) -> int:
        print(
            json.dumps(
                {
                    "error": {
                        "stage": stage,
                        "type": type(exc).__name__,
                        "message": str(exc),
                        "traceback": "".join(traceback.format_exception(exc)),
                    }
                }
            )
        )
        return 0

    try:
        from flowyml import Pipeline
        from flowyml_dagster import run as dagster_run

        user = importlib.import_module(args.module)
        data = importlib.import_module("data")
        pipeline = user.PIPELINE
        pipeline.build()
    except Exception as exc:
        return fail("import", exc)

    def copy(enable_cache: bool) -> Any:
        return Pipeline(
            pipeline.name,
            context=pipeline.context,
            steps=pipeline.steps,
            enable_cache=enable_cache,
        )

    report: dict[str, Any] = {}
    try:
        report["reference"] = summarize(copy(False).run(inputs=data.make_inputs()))
        os.environ["FLOWYML_CACHE_DIR"] = args.plain_cache
        report["cached/plain"] = summarize(copy(True).run(inputs=data.make_inputs()))
        if args.rerun:
            report["rerun/plain"] = summarize(copy(True).run(inputs=data.make_inputs()))
        os.environ["FLOWYML_CACHE_DIR"] = args.dagster_cache
        report["cached/dagster"] = summarize(
            dagster_run(copy(True), inputs=data.make_inputs(), log_level="ERROR")
        )
        if args.rerun:
            report["rerun/dagster"] = summarize(
                dagster_run(copy(True), inputs=data.make_inputs(), log_level="ERROR")
            )
    except Exception as exc:
        return fail("run", exc)
    print(json.dumps(report))
    return 0


# What every run imports, loaded once by the server before it forks (never the user's code).
PRELOADED = (
    "flowyml",
    "flowyml_dagster",
    "numpy",
    "pandas",
    "pydantic",
    "dagster._core.storage.event_log",
    "dagster._core.storage.runs",
    "dagster._core.storage.schedules",
)


def run_request(request: dict[str, Any]) -> int:
    """In a forked child: become the process the request describes, then run ``main``."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[1:1] = request["path"]  # after the driver's own dir, as PYTHONPATH would put them
    sys.dont_write_bytecode = True  # an edit within the same second must be seen
    with (
        open(os.devnull) as stdin,
        open(request["stdout"], "w") as stdout,
        open(request["stderr"], "w") as stderr,
    ):
        os.dup2(stdin.fileno(), 0)
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
    try:
        return main(request["argv"])
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def serve() -> int:
    """Fork a child per request line on stdin; answer each with the child's exit code (minus
    the signal that ended it) and whether it was killed at its deadline."""
    for name in PRELOADED:
        importlib.import_module(name)
    print(json.dumps({"ready": True}), flush=True)
    while line := sys.stdin.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(run_request(request))
        exited = os.pidfd_open(pid)
        try:
            ended, _, _ = select.select([exited], [], [], request["timeout"])
        finally:
            os.close(exited)
        if not ended:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        answer = {"exit": os.waitstatus_to_exitcode(status), "timed_out": not ended}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
