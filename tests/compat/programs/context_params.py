"""A flowyml 2.x program: contexts, and params injected into steps by name.

``context(...)`` and ``Context(...)`` hold a run's parameters; ``update`` changes them in place;
``inject_params`` and ``validate_for_step`` show what a function would get and what it lacks. A
step's parameters that are not inputs are filled from the pipeline's context, or their defaults.
"""

from flowyml import Context, Pipeline, context, step


@step(outputs=["data"])
def make_data(n_samples: int):
    return [float(i) for i in range(n_samples)]


@step(inputs=["data"], outputs=["model"])
def fit(data, learning_rate: float, epochs: int, momentum: float = 0.9):
    return {"n": len(data), "lr": learning_rate, "epochs": epochs, "momentum": momentum}


def train(data, learning_rate, epochs, momentum=0.9):
    return data, learning_rate, epochs, momentum


def regularize(weights, dropout, l2=0.0):
    return weights, dropout, l2


def check_context_object():
    ctx = context(learning_rate=0.1, epochs=3)
    assert isinstance(ctx, Context)
    assert ctx.learning_rate == 0.1
    assert ctx["epochs"] == 3
    assert ctx.get("batch_size") is None
    assert ctx.get("batch_size", 32) == 32

    ctx.update({"batch_size": 16, "epochs": 4})
    assert ctx["batch_size"] == 16
    assert ctx.epochs == 4
    assert ctx.to_dict() == {"learning_rate": 0.1, "epochs": 4, "batch_size": 16}

    # inject_params: the context's values for the function's parameters, nothing else.
    assert ctx.inject_params(train) == {"learning_rate": 0.1, "epochs": 4}
    assert ctx.inject_params(regularize) == {}
    # A step's function is reachable as .func.
    assert ctx.inject_params(fit.func) == {"learning_rate": 0.1, "epochs": 4}

    # validate_for_step: required parameters the context has no value for, minus exclude.
    assert ctx.validate_for_step(train) == ["data"]
    assert ctx.validate_for_step(train, exclude=["data"]) == []
    assert ctx.validate_for_step(regularize, exclude=["weights"]) == ["dropout"]
    assert sorted(ctx.validate_for_step(regularize)) == ["dropout", "weights"]
    ctx.update({"dropout": 0.2})
    assert ctx.validate_for_step(regularize, exclude=["weights"]) == []
    assert ctx.inject_params(regularize) == {"dropout": 0.2}

    built = Context(seed=7, device="cpu")
    assert built.seed == 7
    assert built["device"] == "cpu"
    assert built.to_dict() == {"seed": 7, "device": "cpu"}


def main():
    check_context_object()

    ctx = Context(n_samples=5, learning_rate=0.05, epochs=2)
    pipeline = Pipeline("ctx_training", context=ctx)
    pipeline.add_step(make_data).add_step(fit)
    assert ctx.validate_for_step(fit.func, exclude=fit.inputs) == []

    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result["data"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # Params come by name from the context; momentum is not in it, so its default applies.
    assert result["model"] == {"n": 5, "lr": 0.05, "epochs": 2, "momentum": 0.9}

    # Updating the context the pipeline was given changes what the next run injects.
    ctx.update({"momentum": 0.5, "n_samples": 3})
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result["model"] == {"n": 3, "lr": 0.05, "epochs": 2, "momentum": 0.5}

    # The same steps in another pipeline get that pipeline's context.
    other = Pipeline("ctx_training_fast", context=context(n_samples=2, learning_rate=0.5, epochs=1))
    other.add_steps([make_data, fit])
    result = other.run(auto_start_ui=False)
    assert result.success
    assert result["model"] == {"n": 2, "lr": 0.5, "epochs": 1, "momentum": 0.9}
    print("OK")


if __name__ == "__main__":
    main()
