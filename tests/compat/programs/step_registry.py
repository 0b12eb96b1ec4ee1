"""A flowyml 2.x program: the step registry, its helpers, and a Step built by hand.

Every ``@step`` lands in the global registry (``get_registered_steps``); a ``StepRegistry`` of
one's own holds whatever is registered into it. Scoping by pipeline name shows the scoped steps
plus the unscoped ones.
"""

from flowyml import Pipeline, step
from flowyml.core.step import Step, StepRegistry, clear_step_registry, get_registered_steps


def names(steps):
    return sorted(s.name for s in steps)


clear_step_registry()
assert get_registered_steps() == []


@step(outputs=["numbers"], pipeline="training")
def make_numbers(count: int = 4):
    return list(range(1, count + 1))


@step(inputs=["numbers"], outputs=["total"], pipeline="training")
def add_up(numbers):
    return sum(numbers)


@step(outputs=["report"], pipeline="reporting")
def write_report():
    return "weekly report"


@step(outputs=["version"])
def code_version():
    return "1.0.0"


def double(values):
    return [v * 2 for v in values]


def halve(values):
    return [v / 2 for v in values]


def check_global_registry():
    assert names(get_registered_steps()) == [
        "add_up",
        "code_version",
        "make_numbers",
        "write_report",
    ]
    # A pipeline name sees its own steps and every unscoped one, never another pipeline's.
    assert names(get_registered_steps("training")) == ["add_up", "code_version", "make_numbers"]
    assert names(get_registered_steps("reporting")) == ["code_version", "write_report"]
    assert names(get_registered_steps("nobody")) == ["code_version"]

    # Another function under a name already taken is refused at decoration time.
    try:

        @step(name="add_up", outputs=["other_total"])
        def add_up_differently(numbers):
            return sum(numbers) + 1

    except ValueError as exc:
        assert "add_up" in str(exc)
    else:
        raise AssertionError("a second step named 'add_up' was registered")
    assert names(get_registered_steps("training")) == ["add_up", "code_version", "make_numbers"]


def check_own_registry():
    doubler = Step(double, name="double", inputs=["numbers"], outputs=["doubled"])
    assert doubler.name == "double"
    assert doubler.inputs == ["numbers"]
    assert doubler.outputs == ["doubled"]
    assert doubler.func is double
    # Building a Step by hand registers it nowhere.
    assert "double" not in names(get_registered_steps())

    registry = StepRegistry()
    assert len(registry) == 0
    assert "double" not in registry

    registry.register(doubler)
    registry.register(doubler)  # the same object again is a no-op
    assert len(registry) == 1
    assert "double" in registry
    assert registry.get_by_name("double") is doubler
    assert registry.get_by_name("triple") is None

    try:
        registry.register(Step(halve, name="double"))
    except ValueError as exc:
        assert "double" in str(exc)
    else:
        raise AssertionError("a different step was registered under the taken name 'double'")
    assert registry.get_by_name("double") is doubler
    assert len(registry) == 1

    # A decorated step can be registered into another registry as well.
    for s in (make_numbers, write_report, code_version):
        registry.register(s)
    assert len(registry) == 4
    assert names(registry.get_all()) == ["code_version", "double", "make_numbers", "write_report"]
    assert names(registry.get_all(pipeline=None)) == names(registry.get_all())
    assert names(registry.get_all(pipeline="training")) == [
        "code_version",
        "double",
        "make_numbers",
    ]
    assert names(registry.get_all(pipeline="reporting")) == [
        "code_version",
        "double",
        "write_report",
    ]

    registry.clear()
    assert len(registry) == 0
    assert "double" not in registry
    assert registry.get_by_name("double") is None
    # Clearing one's own registry leaves the global one alone.
    assert "make_numbers" in names(get_registered_steps())
    return doubler


def main():
    check_global_registry()
    doubler = check_own_registry()

    # A hand-built Step runs in a pipeline like a decorated one.
    pipeline = Pipeline("registry_numbers")
    pipeline.add_step(make_numbers).add_step(doubler)
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result["numbers"] == [1, 2, 3, 4]
    assert result["doubled"] == [2, 4, 6, 8]
    assert result.step_results["double"].success

    clear_step_registry()
    assert get_registered_steps() == []
    assert get_registered_steps("training") == []
    print("OK")


if __name__ == "__main__":
    main()
