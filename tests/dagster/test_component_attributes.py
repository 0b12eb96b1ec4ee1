"""``FlowymlPipelinesComponent``'s attributes, loaded in-process from a ``defs.yaml`` the way a
``dg`` project loads them (Dagster's defs-folder sandbox): what each attribute changes in the
definitions, and that every bad attribute is refused naming ``defs.yaml:LINE``, the step and the
field, in the very words of the ``@step`` decorator. ``tests/dg`` drives the same through ``dg``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster.components.testing import create_defs_folder_sandbox

from flowyml import StepDefinitionError, step
from flowyml_dagster import FlowymlPipelinesComponent
from flowyml_dagster.component import ComponentAttributeError

MODULE = "component_pipelines"


@contextmanager
def loaded(**attributes: Any) -> Iterator[tuple[dg.Definitions, Path]]:
    """The definitions of one component with ``attributes`` (``modules`` defaults to ours), and
    its ``defs.yaml``."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            FlowymlPipelinesComponent,
            scaffold_params={"module": MODULE},
            defs_yaml_contents={
                "type": "flowyml_dagster.FlowymlPipelinesComponent",
                "attributes": {"modules": [MODULE], **attributes},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            yield defs, path / "defs.yaml"


def refusal(**attributes: Any) -> tuple[str, Path]:
    """The message a component with ``attributes`` is refused with, and its ``defs.yaml``."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            FlowymlPipelinesComponent,
            scaffold_params={"module": MODULE},
            defs_yaml_contents={
                "type": "flowyml_dagster.FlowymlPipelinesComponent",
                "attributes": {"modules": [MODULE], **attributes},
            },
        )
        with pytest.raises(Exception) as raised, sandbox.load_component_and_build_defs(path):
            pass
    error: BaseException | None = raised.value
    while error is not None and not isinstance(error, ComponentAttributeError):
        error = error.__cause__
    assert error is not None, f"not a ComponentAttributeError: {raised.value!r}"
    return str(error), path / "defs.yaml"


def op_of(defs: dg.Definitions, asset: str) -> dg.OpDefinition:
    return defs.resolve_assets_def(dg.AssetKey(asset)).op


def decorator_says(**options: Any) -> str:
    """What ``@step`` says about ``options`` on a step named like the overridden one."""
    with pytest.raises(StepDefinitionError) as raised:
        step(name="fit", register=False, **options)(lambda rows: rows)
    return str(raised.value)


def test_every_pipeline_of_the_module_is_a_job_unless_some_are_named() -> None:
    with loaded() as (defs, _):
        assert {job.name for job in defs.jobs or []} == {"modelling", "auditing"}
    with loaded(pipelines=["auditing"]) as (defs, _):
        assert {job.name for job in defs.jobs or []} == {"auditing"}
        assert {key.to_user_string() for key in defs.resolve_all_asset_keys()} == {"audit"}


def test_retry_timeout_tags_and_pool_overrides_reach_the_op() -> None:
    overrides = {
        "report": {
            "retry": {"max_retries": 3, "delay": 2},
            "timeout": 60,
            "tags": {"team": "ml"},
            "pool": "reports",
        }
    }
    with loaded(steps=overrides) as (defs, _):
        op = op_of(defs, "summary")
        spec = defs.resolve_assets_def(dg.AssetKey("summary")).specs_by_key[dg.AssetKey("summary")]

    assert op.retry_policy == dg.RetryPolicy(max_retries=3, delay=2)
    assert op.pool == "reports"
    assert op.tags["team"] == "ml" and op.tags["layer"] == "report"
    assert spec.metadata["flowyml/timeout_seconds"] == 60.0


def test_a_pool_for_a_step_of_an_execution_group_is_the_groups_op_pool() -> None:
    with loaded(steps={"fit": {"pool": "gpu_queue"}}) as (defs, _):
        assert op_of(defs, "rows").pool == op_of(defs, "fitted").pool == "gpu_queue"


def test_cache_enabled_false_turns_the_cache_off_for_the_components_steps() -> None:
    with loaded(cache={"enabled": False}) as (defs, _):
        spec = defs.resolve_assets_def(dg.AssetKey("audit")).specs_by_key[dg.AssetKey("audit")]

    assert spec.metadata["flowyml/cache_strategy"] == "off"


def test_a_relative_cache_dir_is_taken_from_the_projects_root() -> None:
    with loaded(cache={"dir": "flowyml-cache"}) as (defs, defs_yaml):
        resource = (defs.resources or {})["flowyml_cache"]
        with dg.build_resources({"flowyml_cache": resource}) as built:
            cache_dir = built.flowyml_cache.cache_dir

    project_root = defs_yaml.parents[4]  # <root>/src/<project>/defs/<component>/defs.yaml
    assert cache_dir == str(project_root / "flowyml-cache")


def test_a_translator_is_named_by_its_import_path() -> None:
    with loaded(translator="component_pipelines.KindTranslator") as (defs, _):
        spec = defs.resolve_assets_def(dg.AssetKey("audit")).specs_by_key[dg.AssetKey("audit")]

    assert spec.kinds == {"python", "flowyml"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry": -1}, "retry"),
        ({"retry": {"max_retries": 1, "backoff": "sideways"}}, "retry.backoff"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"resources": {"memory": 16}}, "resources.memory"),
        ({"tags": {"": "ml"}}, "tags"),
    ],
)
def test_a_bad_override_is_refused_in_the_decorators_words_at_its_line(
    options: dict[str, Any], field: str
) -> None:
    message, defs_yaml = refusal(steps={"fit": options})

    assert message.startswith(f"{defs_yaml}:")
    assert f"step 'fit': {field}:" in message
    assert message.endswith(decorator_says(**options))


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"steps": {"fitt": {"retry": 1}}}, "steps: no step 'fitt'"),
        ({"pipelines": ["modeling"]}, "pipelines: no pipeline 'modeling'"),
        ({"steps": {"fit": {"pool": ""}}}, "step 'fit': pool: must be a non-empty pool name"),
        (
            {"steps": {"fit": {"pool": "a"}, "prepare": {"pool": "b"}}},
            "execution group 'gpu_work'",
        ),
        ({"translator": "component_pipelines.audit"}, "translator: 'component_pipelines.audit'"),
        ({"modules": ["no_such_module"]}, "modules: cannot import 'no_such_module'"),
        ({"cache": {"dir": "s3://user:pw@bucket/x"}}, "cache.dir: cache location s3://<hidden>"),
    ],
)
def test_an_unknown_step_pipeline_or_module_and_a_bad_pool_or_translator_are_refused(
    attributes: dict[str, Any], expected: str
) -> None:
    message, defs_yaml = refusal(**attributes)

    assert message.startswith(f"{defs_yaml}:")
    assert expected in message


PROJECT_IO_MANAGER = """
import dagster as dg


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"io_manager": dg.FilesystemIOManager(base_dir="project")})
"""


def test_io_manager_project_leaves_the_io_manager_to_the_projects_definitions() -> None:
    with create_defs_folder_sandbox() as sandbox:
        (sandbox.defs_folder_path / "project_resources.py").write_text(PROJECT_IO_MANAGER)
        sandbox.scaffold_component(
            FlowymlPipelinesComponent,
            scaffold_params={"module": MODULE},
            defs_yaml_contents={
                "type": "flowyml_dagster.FlowymlPipelinesComponent",
                "attributes": {"modules": [MODULE], "io_manager": "project"},
            },
        )
        with sandbox.build_all_defs() as defs:
            io_manager = defs.resources["io_manager"]  # type: ignore[index]
            assert isinstance(io_manager, dg.FilesystemIOManager)
            assert io_manager.base_dir == "project"
            assert {job.name for job in defs.jobs or []} == {"modelling", "auditing"}
