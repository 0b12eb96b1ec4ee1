"""A real browser on ``dagster dev``: headless Chromium renders the training pipeline's assets.

Chromium loads the lineage page of the ``training`` asset group (every asset the training job
materializes; the shared ingest assets show as links to their own group), dumps the rendered DOM
and takes a screenshot in the same load. The screenshot is kept as
``test-artifacts/e2e/training-asset-graph.png`` for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from e2e_support import (
    ARTIFACTS,
    EXAMPLES_LOCATION,
    REPOSITORY,
    TOKEN_ENV,
    Deployment,
    processes_with_token,
)

ASSETS_QUERY = """
query($pipeline: PipelineSelector!) {
  assetNodes(pipeline: $pipeline) { assetKey { path } groupName }
}
"""
# Virtual time a page gets to load; the graph's layout runs in a web worker that virtual time
# does not always wait for, so a slow load is retried with a longer budget.
BUDGETS_MS = (20_000, 40_000, 80_000)
CHROMIUM_TIMEOUT = 180.0

pytestmark = pytest.mark.timeout(900)


class GraphNodes(HTMLParser):
    """Names on the asset graph: asset nodes (``data-tooltip``) and links to other groups."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # inside an SVG <foreignObject>, where the graph draws its nodes
        self.assets: set[str] = set()
        self.links: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "foreignobject":
            self.depth += 1
        if not self.depth:
            return
        found = dict(attrs)
        if found.get("data-tooltip"):
            self.assets.add(str(found["data-tooltip"]))
        if found.get("class") == "label" and found.get("title"):
            self.links.add(str(found["title"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "foreignobject" and self.depth:
            self.depth -= 1


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    message = "no Chromium on PATH: apt-get update && apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs it: a missing browser there is a broken set-up
    pytest.skip(message)


def _render(url: str, screenshot: Path, profile: Path, budget_ms: int, log: Path) -> str:
    """Load ``url`` in headless Chromium; return the rendered DOM, leave a screenshot."""
    token = uuid.uuid4().hex
    argv = [
        _chromium(),
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
        "--window-size=1600,1000", f"--screenshot={screenshot}", "--dump-dom", url,
    ]  # fmt: skip
    with open(log, "ab") as stderr:
        browser = subprocess.Popen(
            argv,
            env={**os.environ, TOKEN_ENV: token},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            dom, _ = browser.communicate(timeout=CHROMIUM_TIMEOUT)
        finally:
            if browser.poll() is None:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
    left = processes_with_token(token)
    for process in left:
        os.kill(process.pid, signal.SIGKILL)
    assert not left, f"Chromium left processes behind: {[str(p) for p in left]}"
    assert browser.returncode == 0, f"chromium exited with {browser.returncode}; see {log}"
    return dom.decode(errors="replace")


def test_chromium_renders_every_training_asset_on_the_lineage_graph(
    examples_dev: Deployment, tmp_path: Path
) -> None:
    pipeline = {
        "repositoryLocationName": EXAMPLES_LOCATION,
        "repositoryName": REPOSITORY,
        "pipelineName": "training",
    }
    nodes = examples_dev.client(ASSETS_QUERY, {"pipeline": pipeline})["assetNodes"]
    in_group = {n["assetKey"]["path"][-1] for n in nodes if n["groupName"] == "training"}
    elsewhere = {n["assetKey"]["path"][-1] for n in nodes if n["groupName"] != "training"}
    assert in_group and elsewhere
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "training-asset-graph.png"
    url = f"{examples_dev.url}/locations/{EXAMPLES_LOCATION}/asset-groups/training/lineage"

    graph = GraphNodes()
    for budget in BUDGETS_MS:
        screenshot.unlink(missing_ok=True)
        dom = _render(url, screenshot, tmp_path / "profile", budget, tmp_path / "chromium.log")
        (ARTIFACTS / "training-asset-graph.html").write_text(dom, encoding="utf-8")
        graph = GraphNodes()
        graph.feed(dom)
        if in_group <= graph.assets:
            break

    assert sorted(in_group - graph.assets) == []
    assert sorted(elsewhere - graph.links - graph.assets) == []
    assert screenshot.stat().st_size > 0
