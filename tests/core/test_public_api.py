"""The import paths user code written for flowyml relies on."""

from __future__ import annotations

import importlib

import pytest

import flowyml
import flowyml.core


def test_the_top_level_package_exports_step_pipeline_and_context() -> None:
    from flowyml.core.context import Context, context
    from flowyml.core.pipeline import Pipeline
    from flowyml.core.step import step

    assert flowyml.step is step
    assert flowyml.Pipeline is Pipeline
    assert flowyml.context is context
    assert flowyml.Context is Context


def test_flowyml_core_re_exports_step_pipeline_and_context() -> None:
    step_module = importlib.import_module("flowyml.core.step")
    assert flowyml.core.step is step_module.step
    assert flowyml.core.Pipeline is importlib.import_module("flowyml.core.pipeline").Pipeline
    assert flowyml.core.Context is importlib.import_module("flowyml.core.context").Context


def test_the_step_module_offers_the_step_class_and_the_registry_functions() -> None:
    step_module = importlib.import_module("flowyml.core.step")
    for name in ("step", "Step", "StepRegistry", "get_registered_steps", "clear_step_registry"):
        assert getattr(step_module, name) is getattr(flowyml, name)


def test_the_resources_module_offers_the_resource_models() -> None:
    resources = importlib.import_module("flowyml.core.resources")
    for name in ("ResourceRequirements", "GPUConfig", "NodeAffinity"):
        assert getattr(resources, name) is getattr(flowyml, name)


def test_the_retry_module_offers_the_retry_policy() -> None:
    retry = importlib.import_module("flowyml.core.retry")
    for name in ("RetryPolicy", "Backoff", "Jitter"):
        assert getattr(retry, name) is getattr(flowyml, name)


def test_an_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Pipline'"):
        flowyml.Pipline  # noqa: B018
    assert not hasattr(flowyml, "Pipline")
