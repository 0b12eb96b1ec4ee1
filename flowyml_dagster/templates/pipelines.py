"""flowyml pipelines for this component: every ``Pipeline`` object here becomes a Dagster job.

Written by ``dg scaffold defs flowyml_dagster.FlowymlPipelinesComponent``; replace the example
with your steps, or point ``modules:`` in ``defs.yaml`` at the modules that define them.
"""

from flowyml import Pipeline, step


@step(outputs=["numbers"])
def make_numbers() -> list[int]:
    """A few numbers to start from."""
    return list(range(10))


@step(inputs=["numbers"], outputs=["total"])
def add_up(numbers: list[int]) -> int:
    """Their sum."""
    return sum(numbers)


# Steps named here, not auto-discovered: discovery would also take every unscoped step that
# another component's modules registered in the same code location.
example = Pipeline.from_steps(make_numbers, add_up, name="example")
