"""Pipelines the Dagster tests translate and run, and the functions that rebuild their jobs.

Not a test module. Every step is made with ``register=False`` and added to its ``Pipeline``
explicitly, so the autouse empty-registry fixture does not touch them (auto-discovery has its own
``register_discovered_steps``). Steps run in Dagster's worker processes, so they report through
files in ``workdir``, a context param each test sets in run config; the ``*_job`` functions are
module-level so ``dagster.reconstructable`` can rebuild the jobs in those processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

import dagster as dg

from flowyml import GPUConfig, NodeAffinity, Pipeline, ResourceRequirements, context, step
from flowyml.core.step import Step
from flowyml_dagster import build_definitions


def note(workdir: str, file_name: str, line: object) -> int:
    """Append ``line`` to ``workdir/file_name`` and return how many lines it now has."""
    if not workdir:
        raise RuntimeError("the test did not set 'workdir' in the run config")
    path = Path(workdir) / file_name
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{line}\n")
    return len(path.read_text(encoding="utf-8").splitlines())


# --- lineage: outputs become assets, inputs become deps ---------------------------------------


@step(outputs=["data/train", "data/test"], register=False)
def split_rows() -> tuple[list[int], list[int]]:
    """Split ten rows into a training part and a test part."""
    rows = list(range(10))
    return rows[:8], rows[8:]


@step(inputs=["data/train"], outputs=["model/fitted"], register=False)
def fit(train: list[int]) -> dict[str, float]:
    """Fit the mean of the training rows."""
    return {"mean": sum(train) / len(train)}


@step(inputs=["model/fitted", "data/test"], register=False)
def evaluate(fitted: dict[str, float], test: list[int]) -> float:
    """Mean absolute error of the fitted mean on the test rows (no outputs: stored as a step)."""
    return sum(abs(row - fitted["mean"]) for row in test) / len(test)


LINEAGE = Pipeline("lineage", steps=[split_rows, fit, evaluate])


# --- a pipeline input that no step produces ---------------------------------------------------


@step(inputs=["raw/upload"], outputs=["data/clean"], register=False)
def clean(upload: list[int]) -> list[int]:
    return sorted(value for value in upload if value >= 0)


EXTERNAL_INPUT = Pipeline("external_input", steps=[clean])


# --- a step shared by two pipelines -----------------------------------------------------------


@step(outputs=["shared/base"], register=False)
def shared_base() -> list[int]:
    return [1, 2, 3]


@step(inputs=["shared/base"], outputs=["first/total"], register=False)
def first_total(base: list[int]) -> int:
    return sum(base)


@step(inputs=["shared/base"], outputs=["second/largest"], register=False)
def second_largest(base: list[int]) -> int:
    return max(base)


FIRST = Pipeline("first", steps=[shared_base, first_total])
SECOND = Pipeline("second", steps=[shared_base, second_largest])


@step(outputs=["scaled/value"], register=False)
def scaled(factor: int = 1, blob: bytes = b"") -> int:
    """``factor`` travels in run config; ``blob`` is not JSON, so only the context carries it."""
    return factor * 100 + len(blob)


SCALED_BY_TWO = Pipeline("scaled_by_two", context=context(factor=2, blob=b"x"), steps=[scaled])
SCALED_BY_THREE = Pipeline(
    "scaled_by_three", context=context(factor=3, blob=b"yyy"), steps=[scaled]
)


# --- an input another pipeline produces -----------------------------------------------------


@step(outputs=["model/trained"], register=False)
def train() -> int:
    return 3


@step(inputs=["model/trained"], outputs=["predictions/scored"], retry=2, register=False)
def score(model: int) -> int:
    """Retried by policy, yet a missing input fails it once: retrying will not make it appear."""
    return model * 2


TRAINING = Pipeline("training", steps=[train])
SCORING = Pipeline("scoring", steps=[score])


# --- retry ------------------------------------------------------------------------------------


@step(outputs=["flaky/attempt"], retry=2, register=False)
def flaky(workdir: str = "", failures: int = 2) -> int:
    """Fail the first ``failures`` attempts, then return the number of the attempt that worked."""
    attempt = note(workdir, "flaky.attempts", os.getpid())
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


RETRYING = Pipeline("retrying", steps=[flaky])


# --- timeout ----------------------------------------------------------------------------------

STUBBORN_TIMEOUT = 2


@step(outputs=["stubborn/value"], timeout=STUBBORN_TIMEOUT, retry=1, register=False)
def stubborn(workdir: str = "") -> str:
    """Start a helper process, ignore SIGTERM and sleep far past the timeout."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    helper = subprocess.Popen(["sleep", "300"])
    note(workdir, "stubborn.pids", f"{os.getpid()} {helper.pid}")
    time.sleep(300)
    return "never"


TIMING_OUT = Pipeline("timing_out", steps=[stubborn])


# --- condition --------------------------------------------------------------------------------


def is_enabled(enabled: bool) -> bool:
    return enabled


@step(outputs=["gate/value"], condition=is_enabled, register=False)
def gated(workdir: str = "") -> int:
    note(workdir, "gated.calls", "called")
    return 1


@step(inputs=["gate/value"], outputs=["gate/after"], register=False)
def after_gate(value: int) -> int:
    return value + 1


@step(inputs=["gate/after"], outputs=["gate/last"], register=False)
def last_after_gate(after: int) -> int:
    return after + 1


@step(outputs=["gate/independent"], register=False)
def independent() -> str:
    return "ran"


CONDITIONAL = Pipeline(
    "conditional",
    context=context(enabled=False),
    steps=[gated, after_gate, last_after_gate, independent],
)


# --- execution group --------------------------------------------------------------------------


@step(outputs=["prep/a"], execution_group="prep", register=False)
def prep_a(workdir: str = "") -> int:
    note(workdir, "prep.pids", os.getpid())
    return 1


@step(inputs=["prep/a"], outputs=["prep/b"], execution_group="prep", register=False)
def prep_b(a: int, workdir: str = "") -> int:
    note(workdir, "prep.pids", os.getpid())
    return a + 1


@step(inputs=["prep/b"], outputs=["prep/c"], execution_group="prep", register=False)
def prep_c(b: int, workdir: str = "") -> int:
    note(workdir, "prep.pids", os.getpid())
    return b + 1


GROUPED = Pipeline("grouped", steps=[prep_a, prep_b, prep_c])


@step(outputs=["retry_group/first"], execution_group="fragile", retry=2, register=False)
def fragile_first(workdir: str = "") -> int:
    note(workdir, "fragile_first.calls", os.getpid())
    return 1


@step(
    inputs=["retry_group/first"],
    outputs=["retry_group/flaky"],
    execution_group="fragile",
    retry=2,
    register=False,
)
def fragile_flaky(first: int, workdir: str = "") -> int:
    if note(workdir, "fragile_flaky.calls", os.getpid()) < 2:
        raise RuntimeError("first attempt fails")
    return first + 1


@step(inputs=["retry_group/flaky"], outputs=["retry_group/broken"], execution_group="fragile",
      register=False)  # fmt: skip
def fragile_broken(flaky: int, workdir: str = "") -> int:
    note(workdir, "fragile_broken.calls", os.getpid())
    raise RuntimeError("always fails")


FRAGILE_GROUP = Pipeline("fragile_group", steps=[fragile_first, fragile_flaky, fragile_broken])


# --- cache ------------------------------------------------------------------------------------


@step(outputs=["cached/base"], register=False)
def cached_base(workdir: str = "") -> list[int]:
    note(workdir, "cached_base.calls", "called")
    return [1, 2, 3]


@step(inputs=["cached/base"], outputs=["cached/doubled"], register=False)
def cached_double(base: list[int], workdir: str = "") -> list[int]:
    note(workdir, "cached_double.calls", "called")
    return [2 * value for value in base]


CACHED = Pipeline("cached", steps=[cached_base, cached_double])


# --- resources --------------------------------------------------------------------------------

GPU_NODE_LABEL = {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
ML_TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
BIG_GPU = ResourceRequirements(
    cpu="4",
    memory="16Gi",
    gpu=GPUConfig(gpu_type="nvidia-a100", count=2),
    node_affinity=NodeAffinity(required=GPU_NODE_LABEL, tolerations=[ML_TOLERATION]),
)


def hold_gpu(workdir: str, name: str) -> None:
    """Record when a GPU step starts and ends, holding its 'GPU' for a while in between."""
    started = time.time()
    time.sleep(1.0)
    note(workdir, "gpu.intervals", f"{name} {started} {time.time()}")


@step(outputs=["gpu/big"], resources=BIG_GPU, register=False)
def gpu_big(workdir: str = "") -> str:
    hold_gpu(workdir, "gpu_big")
    return "big"


@step(outputs=["gpu/small"], resources=ResourceRequirements(gpu=1), register=False)
def gpu_small(workdir: str = "") -> str:
    hold_gpu(workdir, "gpu_small")
    return "small"


@step(outputs=["cpu/only"], resources={"cpu": "500m", "memory": "1Gi"}, register=False)
def cpu_only() -> str:
    return "cpu"


RESOURCED = Pipeline("resourced", steps=[gpu_big, gpu_small, cpu_only])


# --- tags -------------------------------------------------------------------------------------

STRICT_TAGS = {"team": "ml", "layer": "prepare"}
LOOSE_TAGS = {"note": "has spaces and / slashes", "owner email": "ml@example.com"}


@step(outputs=["tagged/value"], tags={**STRICT_TAGS, **LOOSE_TAGS}, register=False)
def tagged() -> str:
    return "tagged"


TAGGED = Pipeline("tagged", steps=[tagged])


# --- context params ---------------------------------------------------------------------------


@step(outputs=["settings/used"], register=False)
def configured(learning_rate: float = 0.01, epochs: int = 1, optimizer: str = "sgd") -> dict:
    """Report the params the step received."""
    return {"learning_rate": learning_rate, "epochs": epochs, "optimizer": optimizer}


CONFIGURED = Pipeline(
    "configured", context=context(learning_rate=0.1, epochs=3), steps=[configured]
)


# --- names Dagster refuses --------------------------------------------------------------------


@step(name="train-model v2", register=False)
def train_model_v2() -> int:
    return 41


@step(name="context", inputs=["train-model v2"], register=False)
def context_step(trained: int) -> int:
    return trained + 1


ODD_NAMES = Pipeline("odd names-pipeline 1", steps=[train_model_v2, context_step])


# --- the Dagster runner and the plain runner --------------------------------------------------


def wants_bonus(bonus: bool) -> bool:
    return bonus


@step(inputs=["parity/numbers"], outputs=["parity/total"], register=False)
def parity_total(numbers: list[int], scale: int = 1) -> int:
    return sum(numbers) * scale


@step(inputs=["parity/total"], outputs=["parity/summary", "parity/is_even"], register=False)
def parity_summary(total: int) -> dict[str, Any]:
    return {"parity/summary": f"total={total}", "parity/is_even": total % 2 == 0}


@step(inputs=["parity/total"], outputs=["parity/bonus"], condition=wants_bonus, register=False)
def parity_bonus(total: int) -> int:
    return total + 100


@step(inputs=["parity/bonus"], outputs=["parity/bonus_report"], register=False)
def parity_bonus_report(with_bonus: int) -> str:
    return f"bonus={with_bonus}"


@step(outputs=["parity/retried"], retry=1, cache=False, register=False)
def parity_flaky(workdir: str = "") -> int:
    attempt = note(workdir, "parity_flaky.attempts", "attempt")
    if attempt == 1:
        raise RuntimeError("the first attempt fails on purpose")
    return attempt


@step(
    inputs=["parity/total"], outputs=["parity/g1"], execution_group="parity_group", register=False
)
def parity_g1(total: int) -> int:
    return total + 1


@step(
    inputs=["parity/g1"],
    outputs=["parity/g2"],
    execution_group="parity_group",
    condition=wants_bonus,
    register=False,
)
def parity_g2(g1: int) -> int:
    return g1 + 1


@step(inputs=["parity/g2"], outputs=["parity/g3"], execution_group="parity_group", register=False)
def parity_g3(g2: int) -> int:
    return g2 + 1


@step(outputs=["parity/broken"], register=False)
def parity_broken() -> int:
    raise ValueError("broken on purpose")


@step(inputs=["parity/broken"], outputs=["parity/after_broken"], register=False)
def parity_after_broken(broken: int) -> int:
    return broken


PARITY = Pipeline(
    "parity",
    context=context(scale=2, bonus=False),
    steps=[
        parity_total,
        parity_summary,
        parity_bonus,
        parity_bonus_report,
        parity_flaky,
        parity_g1,
        parity_g2,
        parity_g3,
        parity_broken,
        parity_after_broken,
    ],
)


# --- Definitions.merge with a deployment's own assets ------------------------------------------


@dg.asset
def unrelated_asset() -> int:
    """An asset of an existing code location, not made by flowyml."""
    return 42


@step(outputs=["merged/value"], register=False)
def merged_value() -> int:
    return 7


MERGED = Pipeline("merged", steps=[merged_value])


def merged_definitions() -> dg.Definitions:
    existing = dg.Definitions(
        assets=[unrelated_asset],
        jobs=[dg.define_asset_job("existing_job", selection=[unrelated_asset])],
    )
    return dg.Definitions.merge(existing, build_definitions([MERGED], executor=None))


def merged_job() -> dg.JobDefinition:
    return merged_definitions().resolve_job_def("merged")


def existing_job() -> dg.JobDefinition:
    """The existing code location's own job, from the merged definitions."""
    return merged_definitions().resolve_job_def("existing_job")


# --- auto-discovery ---------------------------------------------------------------------------


def register_discovered_steps() -> list[Step]:
    """Register (in the global registry) two scoped steps and one unscoped step."""

    @step(outputs=["found/common"])
    def found_common() -> int:
        return 10

    @step(inputs=["found/common"], outputs=["found/alpha"], pipeline="alpha")
    def found_alpha(common: int) -> int:
        return common + 1

    @step(inputs=["found/common"], outputs=["found/beta"], pipeline="beta")
    def found_beta(common: int) -> int:
        return common + 2

    return [found_common, found_alpha, found_beta]


def discovered_definitions() -> dg.Definitions:
    register_discovered_steps()
    return build_definitions(None)


def discovered_alpha_job() -> dg.JobDefinition:
    return discovered_definitions().resolve_job_def("alpha")


# Every pipeline above that builds on its own.
PIPELINES = [
    LINEAGE,
    EXTERNAL_INPUT,
    FIRST,
    SECOND,
    SCALED_BY_TWO,
    RETRYING,
    TIMING_OUT,
    CONDITIONAL,
    GROUPED,
    FRAGILE_GROUP,
    CACHED,
    RESOURCED,
    TAGGED,
    CONFIGURED,
    ODD_NAMES,
    PARITY,
    MERGED,
]


# --- the definitions and jobs the tests run -----------------------------------------------------


# --- serialisation: how many times a value is pickled on its way out of a step --------------


class PickleCounter:
    """A value that notes in ``workdir`` each time it is pickled. A cache key's fingerprint reads
    a value's state through the same protocol without serialising it: that is not counted."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir

    def __reduce__(self) -> tuple[Any, ...]:
        stack = traceback.extract_stack()
        if not any(frame.filename.endswith("fingerprint.py") for frame in stack):
            note(self.workdir, "pickles.log", os.getpid())
        return (PickleCounter, (self.workdir,))


@step(outputs=["counted/value"], register=False)
def make_counted(workdir: str = "") -> PickleCounter:
    return PickleCounter(workdir)


@step(inputs=["counted/value"], outputs=["counted/seen"], register=False)
def read_counted(value: PickleCounter) -> str:
    return type(value).__name__


COUNTED = Pipeline("counted", steps=[make_counted, read_counted])


def definitions(*pipelines: Pipeline) -> dg.Definitions:
    """A code location of ``pipelines`` with build_definitions' default (forkserver) executor."""
    return build_definitions(list(pipelines))


def counted_job() -> dg.JobDefinition:
    return build_definitions([COUNTED], enable_cache=False).resolve_job_def("counted")


def counted_cached_job() -> dg.JobDefinition:
    return build_definitions([COUNTED]).resolve_job_def("counted")


def lineage_job() -> dg.JobDefinition:
    return definitions(LINEAGE).resolve_job_def("lineage")


def external_input_job() -> dg.JobDefinition:
    return definitions(EXTERNAL_INPUT).resolve_job_def("external_input")


def training_job() -> dg.JobDefinition:
    return definitions(TRAINING, SCORING).resolve_job_def("training")


def scoring_job() -> dg.JobDefinition:
    return definitions(TRAINING, SCORING).resolve_job_def("scoring")


def first_job() -> dg.JobDefinition:
    return definitions(FIRST, SECOND).resolve_job_def("first")


def second_job() -> dg.JobDefinition:
    return definitions(FIRST, SECOND).resolve_job_def("second")


def scaled_by_two_job() -> dg.JobDefinition:
    return definitions(SCALED_BY_TWO, SCALED_BY_THREE).resolve_job_def("scaled_by_two")


def scaled_by_three_job() -> dg.JobDefinition:
    return definitions(SCALED_BY_TWO, SCALED_BY_THREE).resolve_job_def("scaled_by_three")


def retrying_job() -> dg.JobDefinition:
    return definitions(RETRYING).resolve_job_def("retrying")


def timing_out_job() -> dg.JobDefinition:
    return definitions(TIMING_OUT).resolve_job_def("timing_out")


def conditional_job() -> dg.JobDefinition:
    return definitions(CONDITIONAL).resolve_job_def("conditional")


def grouped_job() -> dg.JobDefinition:
    return definitions(GROUPED).resolve_job_def("grouped")


def fragile_group_job() -> dg.JobDefinition:
    return definitions(FRAGILE_GROUP).resolve_job_def("fragile_group")


def cached_job() -> dg.JobDefinition:
    return definitions(CACHED).resolve_job_def("cached")


def resourced_job() -> dg.JobDefinition:
    return definitions(RESOURCED).resolve_job_def("resourced")


def tagged_job() -> dg.JobDefinition:
    return definitions(TAGGED).resolve_job_def("tagged")


def configured_job() -> dg.JobDefinition:
    return definitions(CONFIGURED).resolve_job_def("configured")


def configured_adhoc_job() -> dg.JobDefinition:
    """A job selecting the ``configured`` step's asset outside its pipeline's job, without the
    pipeline's default run config: what the asset graph's "Materialize" launches."""
    adhoc = dg.define_asset_job("adhoc", selection=[dg.AssetKey(["settings", "used"])])
    defs = dg.Definitions.merge(definitions(CONFIGURED), dg.Definitions(jobs=[adhoc]))
    return defs.resolve_job_def("adhoc")


def odd_names_job() -> dg.JobDefinition:
    return definitions(ODD_NAMES).resolve_job_def("odd_names_pipeline_1")
