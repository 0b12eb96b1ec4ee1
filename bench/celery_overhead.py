"""Per-step overhead of a flowyml pipeline on Celery against a hand-written Dagster asset job on
the same Celery deployment (issue 10: target <= 1.15x).

Run with ``.venv/bin/python bench/celery_overhead.py`` on a machine with Debian's
``redis-server`` and ``postgresql``. Both jobs (``_fan_out_location.py``) are ``WIDTH``
independent steps sleeping ``STEP_SECONDS``, on the same Celery executor config, the same IO
manager and the same deployment (``celery_fan_out.celery_deployment``: Postgres, Redis, two
workers of two slots preloading the location module). Each job runs once to warm up (a worker's
first task loads the job), then ``REPEAT`` timed runs each, alternating so that load drifts
reach both alike; the median is kept. A step's overhead is ``(wall - ideal) / WIDTH`` with
``ideal`` the sleeping alone spread over the four slots; the target is on the ratio of the two.
"""

from __future__ import annotations

import logging
import statistics
import sys
from pathlib import Path

import dagster as dg
from _harness import Row, print_table, private_dirs, run_scenarios

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from _fan_out_location import STEP_SECONDS, WIDTH, celery_job, hand_celery_job  # noqa: E402
from celery_fan_out import CONCURRENCY, WORKERS, celery_deployment, timed  # noqa: E402

REPEAT = 3
TARGET = 1.15
# Run config of both jobs: the console logger at WARNING, not every event at DEBUG.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def overhead(root: Path) -> list[Row]:
    jobs = {"flowyml": celery_job, "hand-written": hand_celery_job}
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    with celery_deployment(root) as instance:
        for job in jobs.values():
            timed(dg.reconstructable(job), instance, QUIET)
        for _ in range(REPEAT):
            for name, job in jobs.items():
                samples[name].append(timed(dg.reconstructable(job), instance, QUIET))
    ideal = WIDTH * STEP_SECONDS / (len(WORKERS) * CONCURRENCY)
    wall = {name: statistics.median(s) for name, s in samples.items()}
    per_step = {name: (wall[name] - ideal) / WIDTH for name in jobs}
    ratio = per_step["flowyml"] / per_step["hand-written"]
    rows = []
    for name in jobs:
        runs = ", ".join(f"{s:.1f}" for s in samples[name])
        rows.append(Row(f"{name}: wall, median of {REPEAT} ({runs})", f"{wall[name]:.2f} s"))
        rows.append(Row(f"{name}: per-step overhead (wall - {ideal:.1f} s) / {WIDTH}",
                        f"{per_step[name] * 1000:.0f} ms"))  # fmt: skip
    rows.append(Row("per-step overhead, flowyml / hand-written", f"{ratio:.2f}x",
                    f"<= {TARGET}x", ratio <= TARGET))  # fmt: skip
    rows.append(
        Row("wall time, flowyml / hand-written", f"{wall['flowyml'] / wall['hand-written']:.2f}x")
    )
    return rows


def main() -> None:
    # Dagster logs every event of the runs at DEBUG to the console; the table is what matters.
    logging.getLogger("dagster").setLevel(logging.WARNING)
    with private_dirs() as spare:
        spare.mkdir()
        rows = run_scenarios([lambda: overhead(spare)])
    print_table(rows)


if __name__ == "__main__":
    main()
