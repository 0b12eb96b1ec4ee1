"""What a person running ``pipeline.run()`` sees: each step as it starts and as it ends.

One line per event, printed through ``rich`` (imported only when a run shows progress) to
stderr, so a program's own stdout stays its own. Lines rather than a redrawn table: a step with a
``timeout`` runs in a forked child, and a redrawing thread holding the console's lock at the fork
would leave that child deadlocked on its first ``print``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowyml.core.execution import StepStatus

if TYPE_CHECKING:
    from flowyml.core.graph import PipelineGraph
    from flowyml.core.results import PipelineResult, StepResult
    from flowyml.core.step import Step

_MARKS = {
    StepStatus.SUCCESS: "[green]✓[/]",
    StepStatus.SKIPPED: "[dim]-[/]",
    StepStatus.FAILED: "[bold red]✗[/]",
    StepStatus.UPSTREAM_FAILED: "[red]-[/]",
}


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
        self._print(f"pipeline [bold]{_escape(graph.name)}[/]: {len(graph.steps)} steps")

    def step_started(self, step: Step) -> None:
        self._print(f"  [cyan]▶[/] {_escape(step.name)}")

    def step_finished(self, result: StepResult) -> None:
        name = _escape(result.step_name.ljust(self._width))
        mark = _MARKS[result.status]
        if result.status is StepStatus.SUCCESS:
            how = "[blue]cached[/]" if result.cached else "done"
            retries = f", {result.retries} retries" if result.retries else ""
            line = f"{how} in {_seconds(result.duration_seconds)}{retries}"
        elif result.status is StepStatus.FAILED:
            took = _seconds(result.duration_seconds)
            line = f"[red]failed[/] after {took}: {_escape(result.error)}"
        else:
            line = f"[dim]not run: {_escape(result.reason)}[/]"
        self._print(f"  {mark} {name}  {line}")

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
            f"[{style}]{_escape(result.pipeline_name)} {result.state}[/] in "
            f"{_seconds(result.duration_seconds)}: {summary}"
        )

    def _print(self, markup: str) -> None:
        if self.enabled:
            self._console.print(markup, soft_wrap=True)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _escape(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))
