"""What protecting inputs from in-place changes costs: a 100 MB frame handed to the next step.

Run with ``.venv/bin/python bench/handoff.py``. The plain runner gives each step its own copy of
an input it shares with others (``flowyml.core.handoff``), so a step that adds a column to its
input cannot change what later steps see: the answer Dagster gives, where every value goes
through an IO manager. The reference, measured in this same process, is the same two functions
called by hand, passing the frame itself. Information only (the issue asks for the figure, not a
target); the script always exits 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _harness import Row, median_seconds, print_table, private_dirs, run_scenarios

from flowyml import Pipeline, step
from flowyml.core.handoff import private_copy
from flowyml.core.step import clear_step_registry

FRAME_BYTES = 100_000_000  # 100 MB (decimal)
MB = 1_000_000
REPEAT = 7


def make_frame() -> pd.DataFrame:
    """100 MB over float, int, datetime and categorical columns."""
    rows = FRAME_BYTES // 25  # 8 + 8 + 8 bytes and a 1-byte category code
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.random(rows),
            "n": np.arange(rows, dtype=np.int64),
            "at": pd.date_range("2026-01-01", periods=rows, freq="s"),
            "label": pd.Categorical.from_codes(rng.integers(0, 4, rows), ["a", "b", "c", "d"]),
        }
    )


def handoff_cost() -> list[Row]:
    frame = make_frame()
    size_mb = frame.memory_usage(deep=True).sum() / MB

    def produce() -> pd.DataFrame:
        return frame

    def consume(raw: pd.DataFrame) -> float:
        raw["x2"] = raw["x"] * 2  # the in-place change the copy makes harmless
        return float(raw["x2"].iloc[-1])

    clear_step_registry()
    load = step(outputs=["raw"], register=False)(produce)
    use = step(inputs=["raw"], outputs=["last"], register=False)(consume)
    pipeline = Pipeline("handoff", steps=[load, use], enable_cache=False)
    by_hand = median_seconds(lambda: consume(frame.copy(deep=False)), repeat=REPEAT)
    plain = median_seconds(pipeline.run, repeat=REPEAT)
    copy_only = median_seconds(lambda: private_copy("raw", frame), repeat=REPEAT)
    return [
        Row(f"frame size (MB, {len(frame.columns)} columns)", f"{size_mb:.0f}"),
        Row("two steps by hand (ms)", f"{by_hand * 1000:.1f}"),
        Row("two steps, plain runner, input protected (ms)", f"{plain * 1000:.1f}"),
        Row("  extra for the protection (ms)", f"{(plain - by_hand) * 1000:.1f}"),
        Row("  of which the deep copy (ms)", f"{copy_only * 1000:.1f}"),
        Row("  copy throughput (MB/s)", f"{size_mb / copy_only:.0f}"),
    ]


def main() -> None:
    with private_dirs():
        print_table(run_scenarios([handoff_cost]))


if __name__ == "__main__":
    main()
