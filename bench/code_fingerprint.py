"""Cost of ``code_fingerprint`` on a step that reaches 20 user helpers and reads 5 constants.

Run with ``.venv/bin/python bench/code_fingerprint.py``. The fingerprint is taken every time a
step's cache key is computed, so its steady state (structure cached, names re-resolved, constant
values re-fingerprinted) is what a cached run pays per step; the target is judged on that.

The module is written to a temporary directory and imported like a user's own: a step calling
``HELPERS`` helpers, a chain of helpers calling each other, a pair of mutually recursive ones,
one using numpy (so a distribution version is looked up) and one ``json``, reading
``CONSTANTS`` module constants. Rows:

1. first call in this process: parses every helper's source and looks up the version of each
   distribution the code uses (in the directory it is installed in);
2. first call on a fresh copy of the module (a new module name, so new code objects to parse),
   the distribution table already known: what a newly defined step costs;
3. repeated call on the same step: the steady state, median of many calls.

Each timing is the median of several repetitions with ``time.perf_counter``; the script only
reports and always exits 0.
"""

from __future__ import annotations

import importlib
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from _harness import Row, median_seconds, print_table, run_scenarios

from flowyml.core.code_fingerprint import code_fingerprint

HELPERS = 20
CONSTANTS = 5
FRESH_MODULES = 15
TARGET_REPEATED_MS = 1.0

_names = itertools.count()


def module_source() -> str:
    """The step module: constants, helpers (chained, mutually recursive, numpy, json), a step."""
    lines = [
        "import json",
        "",
        "import numpy as np",
        "",
        "THRESHOLD = 0.5",
        "LABELS = ('cat', 'dog', 'bird')",
        "WEIGHTS = {'cat': 1.0, 'dog': 2.0, 'bird': 0.5}",
        "NAME = 'baseline-model'",
        "SEED = 1234",
        "",
    ]
    for i in range(HELPERS):
        if i == 0:
            body = "return float(np.mean(x)) * THRESHOLD"
        elif i == 1:
            body = "return json.dumps({'name': NAME, 'x': x})"
        elif i == 2:
            body = "return x if x <= 0 else helper_3(x - 1)"
        elif i == 3:
            body = "return x if x <= 0 else helper_2(x - 1)"
        elif i % 3 == 0 and i + 1 < HELPERS:
            body = f"return helper_{i + 1}(x) + WEIGHTS.get(LABELS[x % 3], 0.0)"
        else:
            body = f"return [v * {i} + SEED for v in range(x)]"
        lines += [f"def helper_{i}(x):", f'    """Helper number {i}."""', f"    {body}", "", ""]
    calls = " + ".join(f"len(str(helper_{i}(x)))" for i in range(HELPERS))
    lines += ["def train(x):", f"    return {calls}", ""]
    return "\n".join(lines)


def load_fresh(directory: Path, source: str) -> ModuleType:
    """The same source under a module name never used before: new code objects to parse."""
    name = f"bench_cfp_{next(_names)}"
    (directory / f"{name}.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return importlib.import_module(name)


def bench(directory: Path) -> list[Row]:
    source = module_source()
    module = load_fresh(directory, source)
    started = time.perf_counter()
    code_fingerprint(module.train)
    first_in_process = time.perf_counter() - started

    fresh = []
    for _ in range(FRESH_MODULES):
        copy = load_fresh(directory, source)
        started = time.perf_counter()
        code_fingerprint(copy.train)
        fresh.append(time.perf_counter() - started)

    repeated = median_seconds(lambda: code_fingerprint(module.train), repeat=31, number=50)
    repeated_ms = repeated * 1e3
    return [
        Row("first call in process (ms)", f"{first_in_process * 1e3:.1f}"),
        Row("first call on a new module (ms)", f"{statistics.median(fresh) * 1e3:.2f}"),
        Row(
            "repeated call (ms)",
            f"{repeated_ms:.3f}",
            f"<= {TARGET_REPEATED_MS:g}",
            repeated_ms <= TARGET_REPEATED_MS,
        ),
        Row("repeated call per helper (us)", f"{repeated / HELPERS * 1e6:.1f}"),
    ]


def main() -> int:
    """Run the scenario in a throw-away module directory; errors are rows, never an exit code."""
    with tempfile.TemporaryDirectory(prefix="flowyml-bench-cfp-") as tmp:
        sys.path.insert(0, tmp)
        sys.dont_write_bytecode = True
        try:
            rows = run_scenarios([lambda: bench(Path(tmp))])
        finally:
            sys.path.remove(tmp)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
