"""Step tags: every one on the op, the ones Dagster's strict rules accept on the asset, the rest
in the asset's metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config

from flowyml_dagster.constants import LOOSE_TAGS_METADATA_KEY

TAGGED = dg.AssetKey(["tagged", "value"])


def test_op_tags_carry_every_user_tag() -> None:
    op = pipelines.tagged_job().graph.node_named("tagged").definition

    assert {**pipelines.STRICT_TAGS, **pipelines.LOOSE_TAGS}.items() <= op.tags.items()


def test_asset_tags_are_only_the_user_tags_dagster_accepts_on_assets() -> None:
    node = pipelines.definitions(pipelines.TAGGED).resolve_asset_graph().get(TAGGED)

    user_tags = {k: v for k, v in node.tags.items() if not k.startswith("dagster/")}

    assert user_tags == pipelines.STRICT_TAGS


def test_tags_dagster_refuses_on_assets_land_in_the_assets_metadata() -> None:
    node = pipelines.definitions(pipelines.TAGGED).resolve_asset_graph().get(TAGGED)

    loose = node.metadata[LOOSE_TAGS_METADATA_KEY]

    assert isinstance(loose, dg.JsonMetadataValue)
    assert loose.value == pipelines.LOOSE_TAGS


def test_a_step_with_tags_dagster_refuses_on_assets_builds_and_runs(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = execute(
        pipelines.tagged_job, instance, run_config(pipelines.tagged_job(), cache_dir=cache_dir)
    )

    assert run.succeeded
    assert list(run.materializations()) == [TAGGED]
