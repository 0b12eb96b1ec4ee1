"""flowyml pipelines as Dagster definitions: assets, jobs, schedules, run from any Dagster.

``defs = build_definitions([training])`` in a module makes a code location; subclass
``FlowymlTranslator`` to change how steps are named, tagged or grouped. With ``dg``,
``FlowymlPipelinesComponent`` does the same from a ``defs.yaml``.
"""

from flowyml_dagster.cache import FlowymlCacheResource
from flowyml_dagster.component import FlowymlPipelinesComponent
from flowyml_dagster.definitions import build_definitions, translate
from flowyml_dagster.kubernetes import k8s_config
from flowyml_dagster.ops import build_op_job
from flowyml_dagster.runner import run
from flowyml_dagster.translator import FlowymlTranslator

__all__ = [
    "FlowymlCacheResource",
    "FlowymlPipelinesComponent",
    "FlowymlTranslator",
    "build_definitions",
    "build_op_job",
    "k8s_config",
    "run",
    "translate",
]
