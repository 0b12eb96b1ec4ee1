"""What a person running ``pipeline.run()`` sees: each step as it starts and as it ends.

One line per event, printed through ``rich`` (imported only when a run shows progress) to
stderr, so a program's own stdout stays its own. Lines rather than a redrawn table: a step with a
``timeout`` runs in a forked child, and a redrawing thread holding the console's lock at the fork
would leave that child deadlocked on its first ``print``. Names and errors are printed as plain
text, never read as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowyml.core.execution import StepStatus

if TYPE_CHECKING:
    from flowyml.core.graph import PipelineGraph
    from flowyml.core.results import PipelineResult, StepResult
    from flowyml.core.step import Step

# The longest error a line shows; the whole error is in the result and the run record.
MAX_ERROR_CHARS = 300

_MARKS = {
    StepStatus.SUCCESS: ("✓", "green"),
    StepStatus.SKIPPED: ("-", "dim"),
    StepStatus.FAILED: ("✗", "bold red"),
    StepStatus.UPSTREAM_FAILED: ("-", "red"),
}

Piece = str | tuple[str, str]


class ProgressDisplay:
    """Prints a run's progress; ``show=None`` shows it only on a terminal or in a notebook."""

    def __init__(self, show: bool | None = None) -> None:
        from rich.console import Console

        self._console = Console(stderr=True, highlight=False)
        self.enabled = (
            show if show is not None else self._console.is_terminal or self._console.is_jupyter
        )
        self._width = 0

    def run_started(self, graph: PipelineGraph) -> None:
        self._width = max(len(s.name) for s in graph.steps)
        self._print("pipeline ", (graph.name, "bold"), f": {len(graph.steps)} steps")

    def step_started(self, step: Step) -> None:
        self._print("  ", ("▶", "cyan"), " ", step.name)

    def step_finished(self, result: StepResult) -> None:
        mark, style = _MARKS[result.status]
        took = _seconds(result.duration_seconds)
        outcome: list[Piece]
        if result.status is StepStatus.SUCCESS:
            retries = f", {result.retries} retries" if result.retries else ""
            how: Piece = ("cached", "blue") if result.cached else "done"
            outcome = [how, f" in {took}{retries}"]
        elif result.status is StepStatus.FAILED:
            outcome = [("failed", "red"), f" after {took}: {_short(str(result.error))}"]
        else:
            outcome = [(f"not run: {result.reason}", "dim")]
        self._print("  ", (mark, style), " ", result.step_name.ljust(self._width), "  ", *outcome)

    def run_finished(self, result: PipelineResult) -> None:
        counts = {status: 0 for status in StepStatus}
        for step_result in result.step_results.values():
            counts[step_result.status] += 1
        cached = sum(r.cached for r in result.step_results.values())
        summary = (
            f"{counts[StepStatus.SUCCESS] - cached} ran, {cached} cached, "
            f"{counts[StepStatus.SKIPPED]} skipped, "
            f"{counts[StepStatus.FAILED] + counts[StepStatus.UPSTREAM_FAILED]} failed or not run"
        )
        style = "green" if result.success else "bold red"
        self._print(
            (f"{result.pipeline_name} {result.state}", style),
            f" in {_seconds(result.duration_seconds)}: {summary}",
        )

    def _print(self, *pieces: Piece) -> None:
        if self.enabled:
            from rich.text import Text

            self._console.print(Text.assemble(*pieces), soft_wrap=True)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _short(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= MAX_ERROR_CHARS else first[:MAX_ERROR_CHARS] + "…"
