"""``import flowyml`` must stay free of Dagster, so the plain runner starts fast and alone, and
free of what only some steps need (pydantic models, numpy/pandas hashing, ``rich`` progress,
distribution versions, storage libraries), which is imported when first used."""

from __future__ import annotations

import subprocess
import sys

# Imported by the first step, the first run or the first value of their kind (fsspec and s3fs: by
# the first cache location that is a URL), never by the import.
LATER = ("pydantic", "numpy", "pandas", "rich", "importlib.metadata", "dagster", "fsspec", "s3fs")


def fresh_interpreter(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_flowyml_does_not_import_dagster() -> None:
    probe = "import sys, flowyml, flowyml.core.pipeline; print('dagster' in sys.modules)"
    assert fresh_interpreter(probe) == "False"


def test_import_flowyml_leaves_pydantic_numpy_pandas_and_rich_for_later() -> None:
    probe = (
        "import sys; before = set(sys.modules)\n"
        "import flowyml, flowyml.core, flowyml.core.pipeline\n"
        "from flowyml import Context, Pipeline, Step, context, step\n"
        f"print(sorted(m for m in {LATER!r} if m in sys.modules and m not in before))"
    )
    assert fresh_interpreter(probe) == "[]"


def test_the_pydantic_models_load_when_first_named() -> None:
    probe = (
        "import sys, flowyml\n"
        "assert 'pydantic' not in sys.modules\n"
        "from flowyml import Backoff, GPUConfig, Jitter, NodeAffinity, ResourceRequirements\n"
        "from flowyml import RetryPolicy\n"
        "import flowyml.core.resources as resources, flowyml.core.retry as retry\n"
        "assert ResourceRequirements is resources.ResourceRequirements\n"
        "assert GPUConfig is resources.GPUConfig and NodeAffinity is resources.NodeAffinity\n"
        "assert RetryPolicy is retry.RetryPolicy and Backoff is retry.Backoff\n"
        "assert Jitter is flowyml.Jitter is retry.Jitter\n"
        "print('pydantic' in sys.modules)"
    )
    assert fresh_interpreter(probe) == "True"


def test_every_public_name_is_listed_and_importable_in_a_fresh_interpreter() -> None:
    probe = (
        "import flowyml\n"
        "unlisted = set(flowyml.__all__) - set(dir(flowyml))\n"
        "namespace = {}\n"
        "exec('from flowyml import *', namespace)\n"
        "print(sorted(unlisted), sorted(set(flowyml.__all__) - set(namespace)))"
    )
    assert fresh_interpreter(probe) == "[] []"
