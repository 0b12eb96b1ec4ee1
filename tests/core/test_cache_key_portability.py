"""Cache keys are the same in every process and on every host that runs the same code: workers
share a cache only if they compute the same key for the same work.

Each key here is computed in a fresh interpreter (its own per-process random keys, its own
string hash seed), with the step's module imported by name from a directory given to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

STORE_KEY = "ab" * 16  # the store's secret key, as hex

STEPS = """\
from pydantic import SecretStr

from flowyml import step


@step(outputs=["o"], register=False)
def without_default(token: SecretStr) -> int:
    return 1


@step(outputs=["o"], register=False)
def with_secret_default(token: SecretStr = SecretStr("d")) -> int:
    return 1


@step(outputs=["o"], register=False, cache="input_hash")
def by_inputs(token: SecretStr) -> int:
    return 1
"""

KEYS = """\
import json, sys
from pydantic import SecretStr
import portable_steps

key = bytes.fromhex(sys.argv[1])
params = {"token": SecretStr("tok")}
print(json.dumps({
    name: getattr(portable_steps, name).get_cache_key({}, params, secret_key=key)
    for name in ("without_default", "with_secret_default", "by_inputs")
}))
"""


def keys_in_a_new_process(module_dir: Path) -> dict[str, str]:
    """The cache keys of the steps of ``portable_steps``, imported from ``module_dir``."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(module_dir), str(root)])}
    env.pop("PYTHONHASHSEED", None)
    done = subprocess.run(
        [sys.executable, "-c", KEYS, STORE_KEY],
        env=env,
        cwd=module_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture
def two_checkouts(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The keys of the same module at two different paths, each in its own process."""
    found = []
    for checkout in ("host-a/app", "elsewhere/host-b/srv/app"):
        folder = tmp_path / checkout
        folder.mkdir(parents=True)
        (folder / "portable_steps.py").write_text(textwrap.dedent(STEPS), encoding="utf-8")
        found.append(keys_in_a_new_process(folder))
    return found[0], found[1]


def test_a_step_with_a_secret_default_has_the_same_key_in_every_process(
    two_checkouts: tuple[dict[str, str], dict[str, str]],
) -> None:
    first, second = two_checkouts

    assert first["with_secret_default"] == second["with_secret_default"]


def test_a_code_hash_key_does_not_depend_on_where_the_checkout_lives(
    two_checkouts: tuple[dict[str, str], dict[str, str]],
) -> None:
    first, second = two_checkouts

    assert first["without_default"] == second["without_default"]
