"""The default executor: each unit in a process forked from a server that imported, once per run,
what every step process would otherwise import for itself."""

from __future__ import annotations

import json

import dagster_pipelines as pipelines

from flowyml import Pipeline, step
from flowyml_dagster.definitions import preloaded_modules

INSTANCE_STORAGE = {
    "dagster._core.storage.event_log",
    "dagster._core.storage.runs",
    "dagster._core.storage.schedules",
}
K8S_CONFIG_READER = "dagster_k8s.job"


def test_the_fork_server_imports_the_instance_storage_flowyml_and_the_steps_modules() -> None:
    modules = preloaded_modules([pipelines.LINEAGE])

    assert set(modules) >= INSTANCE_STORAGE
    assert {"dagster", "flowyml", "flowyml_dagster", "dagster_pipelines"} <= set(modules)
    assert len(modules) == len(set(modules))


def test_the_k8s_config_reader_is_imported_only_for_a_step_with_its_own_k8s_config() -> None:
    @step(outputs=["data/rows"], register=False)
    def plain() -> list[int]:
        return [1]

    own_config = json.dumps({"container_config": {"security_context": {"run_as_non_root": True}}})

    @step(outputs=["data/secure"], tags={"dagster-k8s/config": own_config}, register=False)
    def secured() -> list[int]:
        return [2]

    assert K8S_CONFIG_READER not in preloaded_modules([Pipeline("plain", steps=[plain])])
    with_config = preloaded_modules([Pipeline("secure", steps=[plain, secured])])
    assert with_config.count(K8S_CONFIG_READER) == 1
