"""flowyml's step cache across runs launched through ``dagster dev``.

Dagster itself recomputes every asset of a job; the flowyml step body looks the step up in its
cache and, on a hit, records the stored value with ``flowyml/cache: hit`` in the
materialization's metadata.
"""

from __future__ import annotations

import pytest
from e2e_support import Deployment, run_to_completion

from flowyml_dagster.constants import CACHE_METADATA_KEY

pytestmark = pytest.mark.timeout(600)


def test_second_launch_of_training_reuses_every_cached_output(examples_dev: Deployment) -> None:
    client = examples_dev.client

    _, first_status, first = run_to_completion(client, "training")
    _, second_status, second = run_to_completion(client, "training")

    assert (first_status, second_status) == ("SUCCESS", "SUCCESS"), (
        first.failure_summary() + "\n" + second.failure_summary()
    )
    first_cache = {key: meta[CACHE_METADATA_KEY] for key, meta in first.materializations().items()}
    second_cache = {
        key: meta[CACHE_METADATA_KEY] for key, meta in second.materializations().items()
    }
    assert set(first_cache.values()) == {"miss"}  # a fresh cache: everything computed
    assert second_cache == dict.fromkeys(first_cache, "hit")
