"""What a fresh process pays to start using flowyml: ``import flowyml``, the first ``@step``, the
first ``Pipeline.run``.

Run with ``.venv/bin/python bench/import_time.py``. A script or a CLI that uses flowyml pays its
import on every start, so ``import flowyml`` must stay cheap; what only some steps need (pydantic
for resources and retry policies, numpy/pandas hashing, code fingerprinting, the ``timeout``
child, ``rich`` for progress) is imported when first needed, and this script shows where that
cost lands instead. Rows:

1. ``python -c "import flowyml"`` minus ``python -c "pass"``: medians over ``STARTS`` fresh
   interpreters each, run alternately so a slow moment of the machine hits both alike, with the
   bytecode of both already cached (a warm-up start writes it). This is the target row;
2. in a fresh process running a small script (a user's file, so the step has source code): the
   first ``@step`` decoration, a second one, and the first and second ``Pipeline.run`` of a
   1-step pipeline (default options: cache on, code-hash keys, progress only on a terminal),
   medians over ``STARTS`` processes; and which of the optional libraries each stage imported;
3. the largest imports left under ``import flowyml``, from ``python -X importtime`` (median of a
   few runs): where to look next.

Children run with ``PYTHONPATH`` set to this checkout and every other ``PYTHON*`` variable
removed (``PYTHONDONTWRITEBYTECODE`` would measure compiling instead of importing); the cache and
run records go to a throw-away directory. The script only reports and always exits 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _harness import Row, print_table, private_dirs, run_scenarios

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTS = 21
IMPORTTIME_RUNS = 5
TOP_IMPORTS = 8
TARGET_IMPORT_S = 0.2
# Libraries only some steps need: which stage of a first run imports them.
WATCHED = (
    "pydantic",
    "numpy",
    "pandas",
    "rich",
    "importlib.metadata",
    "flowyml.core.fingerprint",
    "flowyml.core.code_fingerprint",
    "dagster",
)

# The user's script: times each stage in the process it starts, reports JSON on stdout.
FIRST_USE = '''
import sys, time
started = time.perf_counter()
import flowyml
imported = time.perf_counter()
loaded = {"import": [m for m in WATCHED if m in sys.modules]}


@flowyml.step(inputs=["x"], outputs=["y"])
def add_one(x: int) -> int:
    """The step body: trivial, so the times below are flowyml's."""
    return x + 1


decorated = time.perf_counter()
loaded["step"] = [m for m in WATCHED if m in sys.modules]


@flowyml.step(inputs=["y"], outputs=["z"], register=False)
def add_two(y: int) -> int:
    return y + 2


decorated_again = time.perf_counter()
pipeline = flowyml.Pipeline("import_bench", steps=[add_one])
result = pipeline.run(inputs={"x": 1})
ran = time.perf_counter()
loaded["run"] = [m for m in WATCHED if m in sys.modules]
assert result.success and result.outputs["y"] == 2, result
pipeline.run(inputs={"x": 1})
ran_again = time.perf_counter()
print(json.dumps({
    "file": flowyml.__file__,
    "import": imported - started,
    "first_step": decorated - imported,
    "second_step": decorated_again - decorated,
    "first_run": ran - decorated_again,
    "second_run": ran_again - ran,
    "loaded": loaded,
}))
'''


def child_env() -> dict[str, str]:
    """The environment of every child: this checkout first on the path, nothing else PYTHON*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["FLOWYML_RUNS_DIR"] = os.path.join(os.environ["FLOWYML_CACHE_DIR"], "runs")
    return env


def start(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of one fresh interpreter running ``args``, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child exited with {done.returncode}: {last}")
    return took, done.stdout


def bench_import() -> list[Row]:
    """Row 1: ``import flowyml`` against a bare interpreter start, both with bytecode cached."""
    env = child_env()
    _, where = start(["-c", "import flowyml; print(flowyml.__file__)"], env)  # writes .pyc
    start(["-c", "pass"], env)
    bare, full = [], []
    for _ in range(STARTS):
        bare.append(start(["-c", "pass"], env)[0])
        full.append(start(["-c", "import flowyml"], env)[0])
    bare_s, full_s = statistics.median(bare), statistics.median(full)
    cost = full_s - bare_s
    in_checkout = Path(where.strip()).is_relative_to(REPO_ROOT)
    return [
        Row("flowyml imported from this checkout", str(in_checkout), "True", in_checkout),
        Row(f"bare interpreter start, median of {STARTS} (s)", f"{bare_s:.3f}"),
        Row("python -c 'import flowyml' (s)", f"{full_s:.3f}"),
        Row(
            "import flowyml, minus the bare start (s)",
            f"{cost:.3f}",
            f"<= {TARGET_IMPORT_S:g}",
            cost <= TARGET_IMPORT_S,
        ),
        Row("import flowyml start / bare start", f"{full_s / bare_s:.2f}x"),
    ]


def bench_first_use() -> list[Row]:
    """Row 2: a user's script in fresh processes: import, first and second ``@step``, runs."""
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="flowyml-import-bench-") as tmp:
        script = Path(tmp, "first_use.py")
        script.write_text(f"import json\nWATCHED = {WATCHED!r}\n{FIRST_USE}")
        start([str(script)], env)  # warm-up: bytecode of everything a run imports
        reports = [json.loads(start([str(script)], env)[1]) for _ in range(STARTS)]
    median = {
        key: statistics.median(r[key] for r in reports)
        for key in ("import", "first_step", "second_step", "first_run", "second_run")
    }
    first_use = median["import"] + median["first_step"] + median["first_run"]
    loaded = reports[-1]["loaded"]
    seen: set[str] = set()
    imported_by: dict[str, str] = {}
    for stage in ("import", "step", "run"):
        new = [m for m in loaded[stage] if m not in seen]
        imported_by[stage] = ", ".join(m.removeprefix("flowyml.core.") for m in new) or "-"
        seen.update(new)
    return [
        Row("in a script: import flowyml, in-process (ms)", f"{median['import'] * 1e3:.1f}"),
        Row("  first @step decoration (ms)", f"{median['first_step'] * 1e3:.1f}"),
        Row("  second @step decoration (ms)", f"{median['second_step'] * 1e3:.2f}"),
        Row("  first Pipeline.run, 1 step, cache on (ms)", f"{median['first_run'] * 1e3:.1f}"),
        Row("  second Pipeline.run, cache hit (ms)", f"{median['second_run'] * 1e3:.2f}"),
        Row("  import + first @step + first run (ms)", f"{first_use * 1e3:.1f}"),
        Row("  imported by import flowyml", imported_by["import"]),
        Row("  imported by the first @step", imported_by["step"]),
        Row("  imported by the first run", imported_by["run"]),
    ]


def importtime_tree(env: dict[str, str]) -> list[tuple[int, int, str]]:
    """``(depth, cumulative us, module)`` of each module ``import flowyml`` imports, in the
    order ``-X importtime`` prints them (children before their parent)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import flowyml"],
        check=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    entries = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        entries.append((depth, int(cumulative), name.strip()))
    # Keep only flowyml's own subtree: what follows the interpreter's start-up imports.
    last = max(i for i, (depth, _, name) in enumerate(entries) if depth == 0 and name == "flowyml")
    first = max((i for i, e in enumerate(entries[:last]) if e[0] == 0), default=-1) + 1
    return entries[first : last + 1]


def bench_largest_imports() -> list[Row]:
    """Row 3: the libraries flowyml's own modules import, by cumulative import time."""
    env = child_env()
    times: defaultdict[str, list[int]] = defaultdict(list)
    for _ in range(IMPORTTIME_RUNS):
        tree = importtime_tree(env)
        for i, (depth, cumulative, name) in enumerate(tree):
            parent = next((n for d, _, n in tree[i + 1 :] if d == depth - 1), None)
            own = name.split(".")[0] == "flowyml"
            if own or parent is None or parent.split(".")[0] == "flowyml":
                times[name].append(cumulative)
    medians = {name: statistics.median(us) for name, us in times.items()}
    total = medians.pop("flowyml", float("nan"))
    outside = sorted(
        ((us, n) for n, us in medians.items() if n.split(".")[0] != "flowyml"), reverse=True
    )
    rows = [Row("-X importtime: import flowyml, total (ms)", f"{total / 1e3:.1f}")]
    rows += [
        Row(f"  imported by flowyml: {name} (ms)", f"{us / 1e3:.1f}")
        for us, name in outside[:TOP_IMPORTS]
    ]
    return rows


def main() -> int:
    """Run every scenario; an error in one is reported as a row, never as a failing exit."""
    started = time.perf_counter()
    with private_dirs():
        rows = run_scenarios([bench_import, bench_first_use, bench_largest_imports])
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
