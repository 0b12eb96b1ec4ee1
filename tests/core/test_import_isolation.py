"""``import flowyml`` must stay free of Dagster, so the plain runner starts fast and alone."""

from __future__ import annotations

import subprocess
import sys


def test_import_flowyml_does_not_import_dagster() -> None:
    probe = "import sys, flowyml, flowyml.core.pipeline; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
