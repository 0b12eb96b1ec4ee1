"""The environment a test's server starts with: the test's own, less pytest's variables."""

from __future__ import annotations

import os

from e2e.e2e_support import TOKEN_ENV


def server_environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != TOKEN_ENV}
    env.update(overrides)
    return env
