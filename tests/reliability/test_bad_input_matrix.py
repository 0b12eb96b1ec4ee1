"""Bad input fails early and clearly: at decoration, at build, or at ``build_definitions``.

Each case declares how to produce the bad input, the exception, the substrings its message must
contain (the step and the field, or what stands for them), and *when* it must be raised:

- ``decoration``: the ``@step(...)`` call itself;
- ``build``: ``Pipeline.build()`` or ``Pipeline.run()``, before any step function runs;
- ``build_definitions``: ``flowyml_dagster.build_definitions``, after the plain build passed.

Every stage before the declared one must pass, and no step function may have been called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import fault_pipelines as fp
import pytest
from run_support import execute, run_config

from flowyml import (
    MissingPipelineInputError,
    Pipeline,
    PipelineDefinitionError,
    StepDefinitionError,
    context,
    step,
)
from flowyml.core.step import Step
from flowyml_dagster import FlowymlTranslator, build_definitions
from flowyml_dagster.constants import LOOSE_TAGS_METADATA_KEY

Stage = Literal["decoration", "build", "build_definitions"]


class Calls:
    """Step calls, recorded in a file so that a call in any process would be seen."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, name: str) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"{name}\n")

    def names(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []


Declare = Callable[[Calls], list[Pipeline]]


@dataclass(frozen=True)
class BadInput:
    """One invalid input: how to make it, what must be raised, and when."""

    declare: Declare
    error: type[Exception]
    contains: tuple[str, ...]
    when: Stage
    trigger: Callable[[Pipeline], Any] = Pipeline.build


def decorated(**options: Any) -> Declare:
    """A pipeline of one step ``fit_weights`` declared with ``options``."""

    def declare(calls: Calls) -> list[Pipeline]:
        @step(register=False, **options)
        def fit_weights(learning_rate: float = 0.1) -> float:
            calls.record("fit_weights")
            return learning_rate

        return [Pipeline("bad", steps=[fit_weights])]

    return declare


def with_resources(resources: Any) -> Declare:
    return decorated(resources=resources)


# --- declarations that are only wrong once steps meet in a pipeline ------------------------------


def two_steps_one_output(calls: Calls) -> list[Pipeline]:
    @step(outputs=["data/raw"], register=False)
    def load_csv() -> int:
        calls.record("load_csv")
        return 1

    @step(outputs=["data/raw"], register=False)
    def load_parquet() -> int:
        calls.record("load_parquet")
        return 2

    return [Pipeline("bad", steps=[load_csv, load_parquet])]


def cycle(calls: Calls) -> list[Pipeline]:
    @step(inputs=["b"], outputs=["a"], register=False)
    def make_a(b: int) -> int:
        calls.record("make_a")
        return b

    @step(inputs=["a"], outputs=["b"], register=False)
    def make_b(a: int) -> int:
        calls.record("make_b")
        return a

    return [Pipeline("bad", steps=[make_a, make_b])]


def needs_pipeline_input(calls: Calls) -> list[Pipeline]:
    @step(outputs=["rows/seed"], register=False)
    def seed_rows() -> list[int]:
        calls.record("seed_rows")
        return [1]

    @step(inputs=["raw/upload"], outputs=["rows/clean"], register=False)
    def clean_rows(upload: list[int]) -> list[int]:
        calls.record("clean_rows")
        return upload

    return [Pipeline("bad", steps=[seed_rows, clean_rows])]


def input_named_like_context_param(calls: Calls) -> list[Pipeline]:
    @step(outputs=["factor"], register=False)
    def pick_factor() -> int:
        calls.record("pick_factor")
        return 3

    @step(inputs=["factor"], outputs=["scaled"], register=False)
    def scale_rows(factor: int) -> int:
        calls.record("scale_rows")
        return factor * 2

    return [Pipeline("bad", context=context(factor=2), steps=[pick_factor, scale_rows])]


def input_and_run_context_param(calls: Calls) -> list[Pipeline]:
    (pipeline,) = input_named_like_context_param(calls)
    return [Pipeline("bad", steps=pipeline.steps)]


def param_without_value(calls: Calls) -> list[Pipeline]:
    @step(register=False)
    def fit_weights(learning_rate: float) -> float:
        calls.record("fit_weights")
        return learning_rate

    return [Pipeline("bad", steps=[fit_weights])]


def condition_on_unknown_name(calls: Calls) -> list[Pipeline]:
    def above(threshold: float) -> bool:
        return threshold > 0

    @step(condition=above, register=False)
    def fit_weights(learning_rate: float = 0.1) -> float:
        calls.record("fit_weights")
        return learning_rate

    return [Pipeline("bad", steps=[fit_weights])]


def two_functions_one_name(calls: Calls) -> list[Pipeline]:
    @step(name="dedupe", outputs=["rows/a"], register=False)
    def dedupe_v1() -> int:
        calls.record("dedupe_v1")
        return 1

    @step(name="dedupe", outputs=["rows/b"], register=False)
    def dedupe_v2() -> int:
        calls.record("dedupe_v2")
        return 2

    return [Pipeline("bad", steps=[dedupe_v1, dedupe_v2])]


def group_with_two_gpu_types(calls: Calls) -> list[Pipeline]:
    @step(outputs=["g/a"], execution_group="gpu_unit", resources={"gpu": {"type": "a100"}},
          register=False)  # fmt: skip
    def prep_on_a100() -> int:
        calls.record("prep_on_a100")
        return 1

    @step(inputs=["g/a"], execution_group="gpu_unit", resources={"gpu": {"type": "v100"}},
          register=False)  # fmt: skip
    def fit_on_v100(a: int) -> int:
        calls.record("fit_on_v100")
        return a

    return [Pipeline("bad", steps=[prep_on_a100, fit_on_v100])]


def group_split_by_outside_step(calls: Calls) -> list[Pipeline]:
    @step(outputs=["s/a"], execution_group="prep", register=False)
    def prep_first() -> int:
        calls.record("prep_first")
        return 1

    @step(inputs=["s/a"], outputs=["s/b"], register=False)
    def outside_middle(a: int) -> int:
        calls.record("outside_middle")
        return a

    @step(inputs=["s/b"], outputs=["s/c"], execution_group="prep", register=False)
    def prep_last(b: int) -> int:
        calls.record("prep_last")
        return b

    return [Pipeline("bad", steps=[prep_first, outside_middle, prep_last])]


# --- declarations only Dagster cannot take ------------------------------------------------------


def names_equal_once_sanitised(calls: Calls) -> list[Pipeline]:
    @step(name="train-model", register=False)
    def train_dash() -> int:
        calls.record("train-model")
        return 1

    @step(name="train_model", register=False)
    def train_underscore() -> int:
        calls.record("train_model")
        return 2

    return [Pipeline("bad", steps=[train_dash, train_underscore])]


def output_with_an_empty_segment(calls: Calls) -> list[Pipeline]:
    @step(outputs=["metrics/daily"], register=False)
    def daily_counts() -> int:
        calls.record("daily_counts")
        return 1

    @step(outputs=["metrics//daily"], register=False)
    def daily_sums() -> int:
        calls.record("daily_sums")
        return 2

    return [Pipeline("bad", steps=[daily_counts, daily_sums])]


def output_without_key_segments(calls: Calls) -> list[Pipeline]:
    @step(outputs=["/"], register=False)
    def slash_only() -> int:
        calls.record("slash_only")
        return 1

    return [Pipeline("bad", steps=[slash_only])]


def input_with_an_empty_segment(calls: Calls) -> list[Pipeline]:
    @step(outputs=["raw/data"], register=False)
    def produce_raw() -> int:
        calls.record("produce_raw")
        return 1

    @step(inputs=["raw//data"], outputs=["clean/data"], register=False)
    def consume_raw(raw: int) -> int:
        calls.record("consume_raw")
        return raw

    return [Pipeline("bad", steps=[produce_raw, consume_raw])]


def outputs_with_one_dagster_name(calls: Calls) -> list[Pipeline]:
    @step(outputs=["a-b", "a_b"], register=False)
    def two_outputs() -> tuple[int, int]:
        calls.record("two_outputs")
        return 1, 2

    return [Pipeline("bad", steps=[two_outputs])]


def pipelines_with_one_job_name(calls: Calls) -> list[Pipeline]:
    @step(register=False)
    def report() -> int:
        calls.record("report")
        return 1

    return [Pipeline("daily-report", steps=[report]), Pipeline("daily_report", steps=[report])]


def group_split_between_pipelines(calls: Calls) -> list[Pipeline]:
    @step(outputs=["grp/a"], execution_group="prep", register=False)
    def group_first() -> int:
        calls.record("group_first")
        return 1

    @step(outputs=["grp/b"], execution_group="prep", register=False)
    def group_second() -> int:
        calls.record("group_second")
        return 2

    return [
        Pipeline("alpha", steps=[group_first, group_second]),
        Pipeline("beta", steps=[group_first]),
    ]


def context_value_of_the_wrong_type(calls: Calls) -> list[Pipeline]:
    @step(register=False)
    def fit_weights(learning_rate: float = 0.1) -> float:
        calls.record("fit_weights")
        return learning_rate

    return [Pipeline("bad", context=context(learning_rate="fast"), steps=[fit_weights])]


def priority_tag_not_a_number(calls: Calls) -> list[Pipeline]:
    return decorated(tags={"dagster/priority": "high"})(calls)


def run_without_inputs(pipeline: Pipeline) -> Any:
    return pipeline.run()


def run_with_context_factor(pipeline: Pipeline) -> Any:
    return pipeline.run(context={"factor": 2})


def case(
    case_id: str,
    declare: Declare,
    error: type[Exception],
    contains: tuple[str, ...],
    when: Stage,
    trigger: Callable[[Pipeline], Any] = Pipeline.build,
) -> Any:
    """One row of the matrix as a pytest param."""
    return pytest.param(BadInput(declare, error, contains, when, trigger), id=case_id)


STEP = "fit_weights"
DEC, BUILD, DEFS = "decoration", "build", "build_definitions"
SDE, PDE = StepDefinitionError, PipelineDefinitionError

CASES = [
    # retry
    case("retry-negative", decorated(retry=-1), SDE, (STEP, "retry"), DEC),
    case("retry-string", decorated(retry="3"), SDE, (STEP, "retry"), DEC),
    case("retry-fractional", decorated(retry=1.5), SDE, (STEP, "retry"), DEC),
    case("retry-bool", decorated(retry=True), SDE, (STEP, "retry"), DEC),
    case("retry-policy-unknown-field", decorated(retry={"max_retries": 1, "dealy": 2}), SDE,
         (STEP, "retry.dealy"), DEC),
    case("retry-negative-delay", decorated(retry={"max_retries": 1, "delay": -1}), SDE,
         (STEP, "retry.delay"), DEC),
    # timeout
    case("timeout-zero", decorated(timeout=0), SDE, (STEP, "timeout"), DEC),
    case("timeout-negative", decorated(timeout=-5), SDE, (STEP, "timeout"), DEC),
    case("timeout-string", decorated(timeout="60"), SDE, (STEP, "timeout"), DEC),
    case("timeout-nan", decorated(timeout=float("nan")), SDE, (STEP, "timeout"), DEC),
    # resources
    case("cpu-abc", with_resources({"cpu": "abc"}), SDE, (STEP, "resources.cpu", "abc"), DEC),
    case("cpu-negative-string", with_resources({"cpu": "-1"}), SDE,
         (STEP, "resources.cpu", "-1"), DEC),
    case("cpu-zero", with_resources({"cpu": 0}), SDE, (STEP, "resources.cpu"), DEC),
    case("memory-lowercase-unit", with_resources({"memory": "16gb"}), SDE,
         (STEP, "resources.memory", "16gb"), DEC),
    case("memory-with-space", with_resources({"memory": "16 Gi"}), SDE,
         (STEP, "resources.memory", "16 Gi"), DEC),
    case("storage-not-a-quantity", with_resources({"storage": "lots"}), SDE,
         (STEP, "resources.storage", "lots"), DEC),
    case("gpu-count-zero", with_resources({"gpu": {"count": 0}}), SDE,
         (STEP, "resources.gpu.count"), DEC),
    case("gpu-number-negative", with_resources({"gpu": -1}), SDE,
         (STEP, "resources.gpu.count"), DEC),
    case("memory-bare-number", with_resources({"memory": 16}), SDE,
         (STEP, "resources.memory", "'16Gi'"), DEC),
    case("gpu-fractional", with_resources({"gpu": 1.5}), SDE, (STEP, "resources.gpu.count"), DEC),
    case("resources-unknown-key", with_resources({"cpus": 4}), SDE, (STEP, "resources.cpus"), DEC),
    case("gpu-unknown-key", with_resources({"gpu": {"kind": "a100"}}), SDE,
         (STEP, "resources.gpu.kind"), DEC),
    case("tolerations-not-a-list", with_resources({"node_affinity": {"tolerations": "all"}}), SDE,
         (STEP, "resources.node_affinity.tolerations"), DEC),
    case("resources-a-string", with_resources("4 cpus"), SDE, (STEP, "resources"), DEC),
    # cache, condition, tags, grouping, scoping
    case("cache-unknown-strategy", decorated(cache="content_hash"), SDE,
         (STEP, "cache", "content_hash"), DEC),
    case("condition-not-callable", decorated(condition="learning_rate > 0"), SDE,
         (STEP, "condition"), DEC),
    case("tag-value-a-list", decorated(tags={"owner": ["ml", "ops"]}), SDE,
         (STEP, "tags['owner']"), DEC),
    case("execution-group-empty", decorated(execution_group=""), SDE,
         (STEP, "execution_group"), DEC),
    case("pipeline-scope-empty", decorated(pipeline=""), SDE, (STEP, "pipeline"), DEC),
    # inputs and outputs
    case("inputs-a-string", decorated(inputs="data/raw"), SDE,
         (STEP, "inputs", "list of strings"), DEC),
    case("inputs-not-strings", decorated(inputs=["data/raw", 3]), SDE, (STEP, "inputs", "3"), DEC),
    case("outputs-a-dict", decorated(outputs={"model": 1}), SDE,
         (STEP, "outputs", "list of strings"), DEC),
    case("outputs-empty-name", decorated(outputs=["model", ""]), SDE, (STEP, "outputs"), DEC),
    case("output-declared-twice", decorated(outputs=["model", "model"]), SDE,
         (STEP, "outputs", "model"), DEC),
    case("output-is-also-input", decorated(inputs=["learning_rate"], outputs=["learning_rate"]),
         SDE, (STEP, "outputs", "learning_rate"), DEC),
    case("input-without-parameter", decorated(inputs=["data/a", "data/b"]), SDE,
         (STEP, "inputs", "data/b"), BUILD),
    # Pipeline.build() / Pipeline.run(), before any step runs
    case("two-steps-one-output", two_steps_one_output, PDE,
         ("load_csv", "load_parquet", "data/raw"), BUILD),
    case("cycle", cycle, PDE, ("make_a", "make_b", "cycle"), BUILD),
    case("missing-pipeline-input-at-run", needs_pipeline_input, MissingPipelineInputError,
         ("clean_rows", "raw/upload"), BUILD, trigger=run_without_inputs),
    case("input-clashes-with-context-param", input_named_like_context_param, PDE,
         ("scale_rows", "factor", "context"), BUILD),
    case("input-clashes-with-run-context-param", input_and_run_context_param, PDE,
         ("scale_rows", "factor", "context"), BUILD, trigger=run_with_context_factor),
    case("param-without-value", param_without_value, PDE, (STEP, "learning_rate"), BUILD),
    case("condition-asks-unknown-name", condition_on_unknown_name, PDE,
         (STEP, "condition", "threshold"), BUILD),
    case("two-functions-one-step-name", two_functions_one_name, PDE,
         ("dedupe", "dedupe_v1", "dedupe_v2"), BUILD),
    case("group-needs-two-gpu-types", group_with_two_gpu_types, PDE,
         ("gpu_unit", "prep_on_a100", "fit_on_v100", "GPU types"), BUILD),
    case("group-split-by-outside-step", group_split_by_outside_step, PDE,
         ("prep", "outside_middle"), BUILD),
    # flowyml_dagster.build_definitions, after the plain build passed
    case("step-names-equal-once-sanitised", names_equal_once_sanitised, PDE,
         ("train-model", "train_model", "op name"), DEFS),
    case("output-with-an-empty-segment", output_with_an_empty_segment, SDE,
         ("daily_sums", "outputs", "metrics//daily"), DEC),
    case("output-without-key-segments", output_without_key_segments, SDE,
         ("slash_only", "outputs", "'/'"), DEC),
    case("input-with-an-empty-segment", input_with_an_empty_segment, SDE,
         ("consume_raw", "inputs", "raw//data"), DEC),
    case("outputs-with-one-dagster-name", outputs_with_one_dagster_name, PDE,
         ("two_outputs", "a-b", "a_b"), DEFS),
    case("pipelines-with-one-job-name", pipelines_with_one_job_name, PDE,
         ("daily-report", "daily_report", "job name"), DEFS),
    case("group-split-between-pipelines", group_split_between_pipelines, PDE,
         ("prep", "beta", "group_second"), DEFS),
    case("context-value-of-the-wrong-type", context_value_of_the_wrong_type, PDE,
         (STEP, "learning_rate"), BUILD),
    case("priority-tag-not-a-number", priority_tag_not_a_number, PDE,
         (STEP, "dagster/priority"), DEFS),
]  # fmt: skip


def build_everything(pipelines: list[Pipeline]) -> dg.Definitions:
    """What a code location does: build the definitions and resolve every job."""
    defs = build_definitions(pipelines)
    for pipeline in pipelines:
        defs.resolve_job_def(FlowymlTranslator().get_job_name(pipeline))
    return defs


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_early_naming_the_step_and_the_field(
    case: BadInput, tmp_path: Path
) -> None:
    calls = Calls(tmp_path / "calls.log")
    if case.when == "decoration":
        with pytest.raises(case.error) as raised:
            case.declare(calls)
    else:
        pipelines = case.declare(calls)
        if case.when == "build":
            with pytest.raises(case.error) as raised:
                for pipeline in pipelines:
                    case.trigger(pipeline)
        else:
            for pipeline in pipelines:
                pipeline.build()
            with pytest.raises(case.error) as raised:
                build_definitions(pipelines)

    message = str(raised.value)
    missing = [text for text in case.contains if text not in message]
    assert not missing, f"{missing} not in the message: {message}"
    assert calls.names() == [], "a step ran before the bad input was refused"


# --- inputs that must NOT fail ------------------------------------------------------------------

LOOSE_TAGS = {"owner": "ML team / vision", "note": "x" * 100}


def loose_tags_land_in_asset_metadata(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """Tags Dagster's strict asset-tag rules refuse build fine and land in asset metadata."""

    @step(outputs=["tagged/value"], tags={**LOOSE_TAGS, "team": "ml"}, register=False)
    def tagged_step() -> int:
        return 1

    pipeline = Pipeline("tagged", steps=[tagged_step])
    pipeline.build()
    defs = build_everything([pipeline])

    spec = defs.resolve_assets_def(dg.AssetKey(["tagged", "value"])).specs_by_key[
        dg.AssetKey(["tagged", "value"])
    ]
    assert spec.metadata[LOOSE_TAGS_METADATA_KEY].value == LOOSE_TAGS
    assert spec.tags.get("team") == "ml"
    assert not set(LOOSE_TAGS) & set(spec.tags)
    assert pipeline.run().success


def exotic_params_reach_the_step(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    """Params Dagster config cannot express build fine, and the step gets their values."""
    fp.EXOTIC.build()
    build_everything([fp.EXOTIC])
    job = fp.exotic_job()

    run = execute(fp.exotic_job, instance, run_config(job, cache_dir=tmp_path / "cache"))

    assert run.succeeded
    seen = fp.definitions(fp.EXOTIC).load_asset_value(
        dg.AssetKey(["exotic", "seen"]), instance=instance
    )
    assert seen == {
        "blob": fp.EXOTIC_CONTEXT["blob"],
        "ids": fp.EXOTIC_CONTEXT["ids"],
        "either": fp.EXOTIC_CONTEXT["either"],
        "weights": fp.WEIGHTS_DEFAULT.tolist(),
        "weights_dtype": "float32",
    }
    assert isinstance(seen["ids"], set)
    assert isinstance(seen["blob"], bytes)


GOOD_CASES = [
    pytest.param(loose_tags_land_in_asset_metadata, id="tags-dagster-asset-tags-refuse"),
    pytest.param(exotic_params_reach_the_step, id="params-dagster-config-cannot-express"),
]


@pytest.mark.parametrize("case", GOOD_CASES)
def test_input_dagster_cannot_express_directly_still_works(
    case: Callable[[Path, dg.DagsterInstance], None],
    tmp_path: Path,
    instance: dg.DagsterInstance,
) -> None:
    case(tmp_path, instance)


def test_the_matrix_covers_at_least_thirty_bad_inputs() -> None:
    stages = [param.values[0].when for param in CASES]  # type: ignore[attr-defined]

    assert len(CASES) >= 30
    assert {"decoration", "build", "build_definitions"} <= set(stages)


def test_a_step_made_for_the_matrix_is_a_real_step(tmp_path: Path) -> None:
    """The matrix's ``decorated`` helper makes a valid step when the options are valid."""
    (pipeline,) = decorated(retry=1, timeout=5, resources={"cpu": "500m", "gpu": 1})(
        Calls(tmp_path / "calls.log")
    )

    (made,) = pipeline.steps
    assert isinstance(made, Step)
    assert pipeline.run().step_results["fit_weights"].success
