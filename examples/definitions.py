"""The example code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from digits_pipelines import batch_scoring, training

from flowyml_dagster import build_definitions

defs = build_definitions([training, batch_scoring])
