"""The README's quick start runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_quick_start_runs(tmp_path: Path) -> None:
    block = re.search(r"## Quick start\n+```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "the README has no python quick start"
    script = tmp_path / "quick_start.py"
    script.write_text(block.group(1) + "\nassert result.success\n")

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # as on a fresh machine
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
