"""A flowyml 2.x program: the ways to put a pipeline together, and its DAG and step groups.

``add_step`` chains, ``add_steps`` takes a list, ``Pipeline.from_steps`` builds one in a call,
and ``auto_discover=True`` takes the steps scoped to the pipeline's name. ``build()`` exposes
the DAG's order and the execution groups. Every step here is scoped, so no unscoped step leaks
into the auto-discovered pipelines.
"""

from flowyml import Pipeline, context, step


@step(outputs=["raw"], pipeline="etl")
def extract(rows: int = 5):
    return list(range(rows))


@step(inputs=["raw"], outputs=["clean"], pipeline="etl")
def transform(raw):
    return [r for r in raw if r % 2 == 0]


@step(inputs=["clean"], outputs=["loaded"], pipeline="etl")
def load(clean):
    return len(clean)


@step(outputs=["summary"], pipeline="reporting")
def summarize():
    return "nothing to report"


@step(outputs=["table"], pipeline="features", execution_group="prep")
def read_table():
    return [{"x": 1}, {"x": 2}, {"x": 3}]


@step(inputs=["table"], outputs=["columns"], pipeline="features", execution_group="prep")
def featurize(table):
    return [row["x"] * 10 for row in table]


@step(inputs=["columns"], outputs=["score"], pipeline="features")
def score(columns):
    return sum(columns)


def order(pipeline):
    return [node.name for node in pipeline.dag.topological_sort()]


def main():
    # add_step returns the pipeline, so calls chain.
    chained = Pipeline("etl_chain")
    assert chained.add_step(extract) is chained
    chained.add_step(transform).add_step(load)
    result = chained.run(auto_start_ui=False)
    assert result.success
    assert result["raw"] == [0, 1, 2, 3, 4]
    assert result["clean"] == [0, 2, 4]
    assert result["loaded"] == 3

    # add_steps takes a list in any order; the DAG orders it by inputs and outputs.
    batch = Pipeline("etl_batch")
    assert batch.add_steps([load, extract, transform]) is batch
    batch.build()
    assert order(batch) == ["extract", "transform", "load"]
    assert batch.run(auto_start_ui=False)["loaded"] == 3

    # from_steps passes its keyword arguments on to Pipeline().
    once = Pipeline.from_steps(
        extract, transform, load, name="etl_once", enable_cache=False, context=context(rows=10)
    )
    assert once.name == "etl_once"
    assert once.cache_store is None
    result = once.run(auto_start_ui=False)
    assert result.success
    assert result["clean"] == [0, 2, 4, 6, 8]
    assert result["loaded"] == 5

    # auto_discover takes the steps scoped to the pipeline's name, and only those.
    discovered = Pipeline("etl", auto_discover=True)
    discovered.build()
    assert order(discovered) == ["extract", "transform", "load"]
    assert "summarize" not in order(discovered)
    result = discovered.run(auto_start_ui=False)
    assert result.success
    assert result["loaded"] == 3
    assert set(result.step_results) == {"extract", "transform", "load"}

    reporting = Pipeline("reporting", auto_discover=True)
    reporting.build()
    assert order(reporting) == ["summarize"]
    assert reporting.run(auto_start_ui=False)["summary"] == "nothing to report"

    # Steps sharing an execution_group form one step group; the others stay on their own.
    features = Pipeline("features", auto_discover=True)
    features.build()
    assert order(features) == ["read_table", "featurize", "score"]
    assert len(features.step_groups) == 1
    group = features.step_groups[0]
    assert group.group_name == "prep"
    assert [s.name for s in group.steps] == ["read_table", "featurize"]
    result = features.run(auto_start_ui=False)
    assert result.success
    assert result["columns"] == [10, 20, 30]
    assert result["score"] == 60
    for name in ("read_table", "featurize", "score"):
        assert result.step_results[name].success, name

    # A pipeline without groups has none.
    assert chained.step_groups == []
    print("OK")


if __name__ == "__main__":
    main()
