"""Output metadata is best effort: an entry the event log cannot store is left out with a
warning, and the step's computed value is kept (the plain runner has no metadata to fail on)."""

from __future__ import annotations

from typing import Any

import dagster as dg

import flowyml_dagster
from flowyml import Pipeline, Step, StepStatus, step
from flowyml_dagster.constants import CACHE_METADATA_KEY


@step(outputs=["metrics/huge"], register=False)
def huge_metrics() -> dict[str, int]:
    return {"n": 10**400, "rows": 3}


class OddMetadata(flowyml_dagster.FlowymlTranslator):
    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        return {"fine": 1, "odd": object()}


class BrokenMetadata(flowyml_dagster.FlowymlTranslator):
    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        raise RuntimeError("metadata hook broke")


def materialized_metadata(instance: dg.DagsterInstance) -> dict[str, Any]:
    (record,) = instance.fetch_materializations(dg.AssetKey(["metrics", "huge"]), limit=1).records
    materialization = record.asset_materialization
    assert materialization is not None
    return {key: value.value for key, value in materialization.metadata.items()}


def test_a_metric_too_big_for_a_float_does_not_fail_the_step() -> None:
    instance = dg.DagsterInstance.ephemeral()

    result = flowyml_dagster.run(Pipeline("p", steps=[huge_metrics]), instance=instance)

    assert result.step_results["huge_metrics"].status is StepStatus.SUCCESS
    assert result["metrics/huge"]["n"] == 10**400
    assert materialized_metadata(instance)["rows"] == 3.0


def test_an_entry_the_event_log_cannot_store_is_left_out() -> None:
    instance = dg.DagsterInstance.ephemeral()

    result = flowyml_dagster.run(
        Pipeline("p", steps=[huge_metrics]), instance=instance, translator=OddMetadata()
    )

    assert result.success
    metadata = materialized_metadata(instance)
    assert metadata["fine"] == 1
    assert "odd" not in metadata


def test_a_metadata_hook_that_raises_does_not_fail_the_step() -> None:
    instance = dg.DagsterInstance.ephemeral()

    result = flowyml_dagster.run(
        Pipeline("p", steps=[huge_metrics]), instance=instance, translator=BrokenMetadata()
    )

    assert result.success
    assert materialized_metadata(instance)[CACHE_METADATA_KEY] == "miss"
