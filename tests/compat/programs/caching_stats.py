"""A flowyml 2.x program: a pipeline run twice with caching on, and its cache statistics.

The second run takes the cached steps from the cache (``cached`` is True and the functions do
not run again); a ``cache=False`` step always runs; changing a param a step reads makes it run
again; ``enable_cache=False`` means no cache store at all. Executions are counted in a file in
the working directory, so the count holds wherever a step body runs.
"""

from pathlib import Path

from flowyml import Pipeline, context, step

EXECUTIONS = Path("executions.log")


def record(name):
    with EXECUTIONS.open("a") as log:
        log.write(name + "\n")


def executions(name):
    if not EXECUTIONS.exists():
        return 0
    return EXECUTIONS.read_text().split().count(name)


@step(outputs=["dataset"])
def load_dataset(size: int):
    record("load_dataset")
    return list(range(size))


@step(inputs=["dataset"], outputs=["stats"])
def compute_stats(dataset):
    record("compute_stats")
    return {"n": len(dataset), "mean": sum(dataset) / len(dataset)}


@step(inputs=["stats"], outputs=["report"], cache=False)
def render_report(stats):
    record("render_report")
    return f"n={stats['n']} mean={stats['mean']:.1f}"


def build(name, ctx, **options):
    pipeline = Pipeline(name, context=ctx, **options)
    return pipeline.add_step(load_dataset).add_step(compute_stats).add_step(render_report)


def main():
    ctx = context(size=6)
    pipeline = build("cached_stats", ctx)
    assert pipeline.cache_store is not None

    first = pipeline.run(auto_start_ui=False)
    assert first.success
    assert first["report"] == "n=6 mean=2.5"
    for name in ("load_dataset", "compute_stats", "render_report"):
        assert not first.step_results[name].cached, name

    second = pipeline.run(auto_start_ui=False)
    assert second.success
    assert second.step_results["load_dataset"].cached
    assert second.step_results["compute_stats"].cached
    assert not second.step_results["render_report"].cached  # cache=False: always runs
    assert second["dataset"] == first["dataset"]
    assert second["stats"] == first["stats"]
    assert second["report"] == first["report"]
    assert executions("load_dataset") == 1
    assert executions("compute_stats") == 1
    assert executions("render_report") == 2

    # Keys read from cache_stats(): "hits", "misses" and "total_entries" (flowyml 2.2.1 returns
    # total_entries, total_size_mb, hits, misses, hit_rate and by_step). Hits and misses count
    # the lookups of this pipeline's cache store since it was made; a cache=False step makes none.
    stats = pipeline.cache_stats()
    assert stats["hits"] == 2, stats
    assert stats["misses"] == 2, stats
    assert stats["total_entries"] == 2, stats

    # A param the step reads is part of what is cached: a new value runs it (and what depends
    # on its output) again.
    ctx.update({"size": 8})
    third = pipeline.run(auto_start_ui=False)
    assert third.success
    assert not third.step_results["load_dataset"].cached
    assert not third.step_results["compute_stats"].cached
    assert third["report"] == "n=8 mean=3.5"
    assert executions("load_dataset") == 2
    assert executions("compute_stats") == 2
    stats = pipeline.cache_stats()
    assert stats["hits"] == 2, stats
    assert stats["misses"] == 4, stats
    assert stats["total_entries"] == 4, stats

    # Back to the first value: both entries are still there.
    ctx.update({"size": 6})
    fourth = pipeline.run(auto_start_ui=False)
    assert fourth.step_results["load_dataset"].cached
    assert fourth.step_results["compute_stats"].cached
    assert fourth["report"] == "n=6 mean=2.5"
    assert executions("load_dataset") == 2
    assert pipeline.cache_stats()["hits"] == 4

    # With caching off there is no cache store and every run runs every step.
    uncached = build("uncached_stats", context(size=6), enable_cache=False)
    assert uncached.cache_store is None
    before = executions("load_dataset")
    for _ in range(2):
        result = uncached.run(auto_start_ui=False)
        assert result.success
        assert result["report"] == "n=6 mean=2.5"
        for name in ("load_dataset", "compute_stats", "render_report"):
            assert not result.step_results[name].cached, name
    assert executions("load_dataset") == before + 2
    print("OK")


if __name__ == "__main__":
    main()
