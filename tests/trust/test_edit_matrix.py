"""The edit matrix: after a user edits their pipeline, the cache returns what the edited code
computes, on the plain runner and through Dagster.

A user's project (a pipeline module, a helper module, a settings module, the module building
the pipeline inputs, and a fake installed distribution ``fakedep``) is written to a temp dir and
run once in a fresh interpreter (``edit_driver.py``): that base run fills one cache dir per runner.
Each edit is then applied *in place*, the way a person edits code, and the project runs again in a
fresh process (see "Cost") with the same cache dirs; the project is restored afterwards.

- An edit that changes what a step computes, or what it is given, must make that step (and every
  step whose inputs change with it) a cache MISS, and every output must equal what the edited
  project computes with caching off (the driver runs that reference in the same interpreter, on
  the plain runner; the base run checks that both runners agree, so a difference after an edit
  comes from the cache).
- An edit that does not change behaviour (comments, formatting, decorator options, unrelated code)
  must keep every step a cache HIT with unchanged outputs.

Decisions recorded here (the rule given to the implementation: "syntax tree, so comments and
formatting don't count"):
- a docstring edit is a MISS (the docstring is part of the syntax tree; README says so too);
- an edit of a step's ``condition`` that keeps the step running is a HIT: the condition is
  evaluated afresh on every run before the cache is consulted, and it does not take part in
  computing the outputs, so no stale value can come out of the cache;
- the body of a ``cache="input_hash"`` step is a HIT, with the old value: that is what the mode is
  for (README: "code edits keep the cache");
- renaming a local variable changes the syntax tree; it is in neither list.

Also recorded:
- ``no-edit`` (the same project run again) is the control of the HIT list;
- the datetime column lives in a frame of its own (``data/events``, step ``timeline``), so a
  problem hashing datetimes shows on that step only;
- ``fakedep`` lives in ``<tmp>/site-packages`` with a ``.dist-info`` (``METADATA``, ``RECORD``,
  ``top_level.txt``); the driver adds that dir with ``site.addsitedir`` before importing the
  project, so ``importlib.metadata`` (``version``, ``packages_distributions``) finds it as an
  installed distribution, though it is not under the interpreter's own site-packages;
- two steps with one name (made by a factory, or two lambdas) may be refused with a definition
  error, or kept as two steps with their own values and cache entries; never is one dropped.

Cost: one run for the base and one per edit, each running both runners. The base and the edits
that keep behaviour each run in a new interpreter; an edit that changes behaviour runs in a child
forked from a warm driver (``edit_driver.py --serve``: flowyml, Dagster and pandas imported, never
the user's code), which imports the project afresh and saves ~3 s a run. Children share their
server's hash seed and heap layout, so a cache key that differs from process to process (a set's
order, an address) would hit among them; between new interpreters it misses, which is what the
``no-edit`` control and the other hit edits check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "edit_driver.py"
RUNNERS = ("plain", "dagster")
SUBPROCESS_TIMEOUT = 600

# --- the user's project -------------------------------------------------------------------------

USERPIPE = '''\
"""A user's pipeline module: the steps and the pipeline."""

import functools
from functools import partial

import fakedep
import helpers
import knobs
import numpy as np
from helpers import scale
from pydantic import BaseModel, ConfigDict, SecretStr

from flowyml import Pipeline, context, step

OFFSET = 10
WEIGHTS = [1, 2]
UNRELATED = "left alone"
AGG = np.sum
triple = partial(scale, factor=3)
halve = lambda v: v / 2  # noqa: E731


def _center(values):
    return [v - min(values) for v in values]


def spread(values):
    return [v * 2 for v in _center(values)]


@functools.lru_cache(maxsize=None)
def lookup_table():
    return (1, 2, 3)


class Scorer:
    bias = 1

    def score(self, values):
        return sum(values) + self.bias


class Settings(BaseModel):
    model_config = ConfigDict(extra="allow")

    depth: int = 1


def is_open(count):
    return count > 0


def make_scaled(factor):
    @step(outputs=["closure/scaled"], register=False)
    def scaled():
        return [v * factor for v in range(4)]

    return scaled


def make_power(exponent):
    @step(outputs=[f"power/{exponent}"], register=False)
    def power():
        return [v**exponent for v in range(4)]

    return power


@step(inputs=["data/frame"], outputs=["data/train", "data/test"], register=False)
def split(frame):
    return frame.iloc[:6], frame.iloc[6:]


@step(inputs=["data/train", "data/test"], outputs=["eval/report"], register=False)
def evaluate(first, second, alpha=0.5):
    return {
        "fit_rows": len(first),
        "fit_sum": float(first["a"].sum()),
        "scored_rows": len(second),
        "score": float(second["a"].sum() * alpha),
    }


@step(inputs=["data/frame"], outputs=["profile/frame"], register=False)
def profile(frame):
    return {
        "columns": [str(c) for c in frame.columns],
        "a_dtype": str(frame["a"].dtype),
        "a_sum": float(frame["a"].sum()),
        "index_sum": int(sum(frame.index)),
        "color_codes": [int(c) for c in frame["color"].cat.codes],
    }


@step(inputs=["data/events"], outputs=["events/timeline"], register=False)
def timeline(events):
    return {
        "times": [t.isoformat() for t in events["when"]],
        "amount": int(events["amount"].sum()),
    }


@step(inputs=["arrays/masked"], outputs=["arrays/masked_stats"], register=False)
def masked_stats(masked):
    return {"sum": float(masked.sum()), "count": int(masked.count())}


@step(inputs=["arrays/records"], outputs=["arrays/records_stats"], register=False)
def records_stats(records):
    return {"names": list(records.dtype.names), "x_sum": float(records["x"].sum())}


@step(outputs=["helper/spread"], register=False)
def helped():
    """Spread some values."""
    return spread([3, 5, 9])


@step(outputs=["globals/offset"], register=False)
def offset_step():
    return [v + OFFSET for v in range(3)]


@step(outputs=["globals/weighted"], register=False)
def weighted():
    return sum(w * (i + 1) * 10 for i, w in enumerate(WEIGHTS))


@step(outputs=["globals/aggregated"], register=False)
def aggregated():
    return int(AGG(np.array([1, 5, 2])))


@step(outputs=["globals/partial"], register=False)
def partialed():
    return triple([1, 2])


@step(outputs=["globals/lambda"], register=False)
def lambdaed():
    return [halve(v) for v in (2, 4)]


@step(outputs=["helper/cached_table"], register=False)
def looked_up():
    return sum(lookup_table())


@step(outputs=["class/score"], register=False)
def scored():
    return Scorer().score([1, 2, 3])


scaled = make_scaled(3)
power = make_power(2)
squared = step(inputs=["power/2"], outputs=["lambda/squared"], register=False)(
    lambda values: [v * v for v in values]
)


@step(outputs=["imported/scaled"], register=False)
def imported():
    return scale([1, 2, 3])


@step(outputs=["imported/shifted"], register=False)
def via_module():
    return helpers.shift([1, 2, 3])


@step(outputs=["imported/threshold"], register=False)
def thresholded():
    return [v for v in range(6) if v > knobs.THRESHOLD]


@step(outputs=["dependency/transformed"], register=False)
def dep_step():
    return fakedep.transform([1, 2, 3])


@step(outputs=["nested/inner"], register=False)
def inner_step():
    return 20


@step(outputs=["nested/outer"], register=False)
def outer_step():
    return inner_step() * 10


@step(register=False)
def tuned(count=0, rate=1.0, options=None):
    return {"count": count, "doubled_rate": rate * 2, "k": options["inner"]["k"]}


@step(register=False)
def modeled(settings=None, token=None):
    return {
        "depth": settings.depth,
        "extra": dict(settings.model_extra or {}),
        "token_sum": sum(map(ord, token.get_secret_value())),
    }


@step(outputs=["gate/value"], condition=is_open, register=False)
def gated():
    return "open"


@step(outputs=["project/data"], cache="input_hash", register=False)
def load_data():
    return [1, 2, 3]


@step(outputs=["leaf/value"], register=False)
def leaf():
    return {"leaf": 1}


CONTEXT = context(
    count=3,
    rate=2,
    options={"inner": {"k": 1}},
    settings=Settings(depth=2, flavour="mild"),
    token=SecretStr("s3cret"),
)

PIPELINE = Pipeline(
    "edits",
    context=CONTEXT,
    steps=[
        split,
        evaluate,
        profile,
        timeline,
        masked_stats,
        records_stats,
        helped,
        offset_step,
        weighted,
        aggregated,
        partialed,
        lambdaed,
        looked_up,
        scored,
        scaled,
        power,
        squared,
        imported,
        via_module,
        thresholded,
        dep_step,
        inner_step,
        outer_step,
        tuned,
        modeled,
        gated,
        load_data,
        leaf,
    ],
)
'''

HELPERS = '''\
"""Helpers of the user's pipeline, in a module of their own."""


def scale(values, factor=2):
    return [v * factor for v in values]


def shift(values):
    return [v + 1 for v in values]
'''

KNOBS = '''\
"""Settings of the user's project."""

THRESHOLD = 3
'''

DATA = '''\
"""The pipeline's inputs, as the user builds them."""

import numpy as np
import pandas as pd


def make_frame():
    return pd.DataFrame(
        {
            "a": np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype="int64"),
            "b": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5],
            "color": pd.Categorical(
                ["red", "green", "blue", "red", "green", "blue", "red", "green", "blue", "red"],
                categories=["red", "green", "blue"],
            ),
        },
        columns=["a", "b", "color"],
        index=pd.RangeIndex(0, 10),
    )


def make_events():
    return pd.DataFrame(
        {
            "when": pd.to_datetime(
                [
                    "2024-01-01 08:00",
                    "2024-01-02 08:00",
                    "2024-01-03 08:00",
                    "2024-01-04 08:00",
                    "2024-01-05 08:00",
                ]
            ),
            "amount": [1, 2, 3, 4, 5],
        }
    )


def make_inputs():
    return {
        "data/frame": make_frame(),
        "data/events": make_events(),
        "arrays/masked": np.ma.masked_array(
            [1.0, 2.0, 3.0, 4.0], mask=[False, True, False, False]
        ),
        "arrays/records": np.array([(1, 10.0), (2, 20.0)], dtype=[("x", "i8"), ("y", "f8")]),
    }
'''

FAKEDEP = '''\
"""An installed third-party package (as far as importlib.metadata can tell)."""


def transform(values):
    return [v + 1 for v in values]
'''

PROJECT_FILES = {
    "userpipe.py": USERPIPE,
    "helpers.py": HELPERS,
    "knobs.py": KNOBS,
    "data.py": DATA,
}
FAKEDEP_VERSION = "1.0.0"

# Every step of USERPIPE's pipeline, by name (the lambda step is named after its function).
STEPS = (
    "split", "evaluate", "profile", "timeline", "masked_stats", "records_stats", "helped",
    "offset_step", "weighted", "aggregated", "partialed", "lambdaed", "looked_up", "scored",
    "scaled", "power", "<lambda>", "imported", "via_module", "thresholded", "dep_step",
    "inner_step", "outer_step", "tuned", "modeled", "gated", "load_data", "leaf",
)  # fmt: skip
FRAME_STEPS = frozenset({"split", "profile", "evaluate"})


def write_fakedep(site_dir: Path, version: str, source: str = FAKEDEP) -> None:
    """``fakedep`` as pip would leave it in a site dir: the package and its ``.dist-info``."""
    for old in site_dir.glob("fakedep-*.dist-info"):
        shutil.rmtree(old)
    package = site_dir / "fakedep"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source, encoding="utf-8")
    info = site_dir / f"fakedep-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fakedep\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (info / "top_level.txt").write_text("fakedep\n", encoding="utf-8")
    (info / "RECORD").write_text(
        f"fakedep/__init__.py,,\nfakedep-{version}.dist-info/METADATA,,\n"
        f"fakedep-{version}.dist-info/INSTALLER,,\nfakedep-{version}.dist-info/top_level.txt,,\n"
        f"fakedep-{version}.dist-info/RECORD,,\n",
        encoding="utf-8",
    )


def write_project(directory: Path, files: dict[str, str]) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    """``text`` with its one occurrence of ``old`` replaced (an edit that misses fails loudly)."""
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"the edit expects exactly one {old!r} in the file, found {count}")
    return text.replace(old, new)


# --- edits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One edit of the project: text replacements, a new ``fakedep`` version, or another project.

    ``miss`` are the steps that must be cache misses (the edited ones and those whose inputs
    change); ``changes_output`` says the edit changes some output of a fresh run (checked, so an
    edit that does nothing cannot pass for a miss).
    """

    id: str
    changes: tuple[tuple[str, str | None, str], ...] = ()
    miss: frozenset[str] = frozenset()
    changes_output: bool = True
    fakedep_version: str | None = None
    fakedep_source: str | None = None
    project: str = "project"
    module: str = "userpipe"
    notes: str = ""

    def apply(self, root: Path) -> None:
        project = root / "project"
        for file_name, old, new in self.changes:
            path = project / file_name
            text = path.read_text(encoding="utf-8")
            path.write_text(text + new if old is None else replace_once(text, old, new), "utf-8")
        if self.fakedep_version is not None:
            write_fakedep(
                root / "site-packages", self.fakedep_version, self.fakedep_source or FAKEDEP
            )


def edit(id: str, file_name: str, old: str | None, new: str, *miss: str, **options: Any) -> Edit:
    return Edit(id, ((file_name, old, new),), frozenset(miss), **options)


FRAME_EDITS = [
    edit(
        "frame-one-row",
        "data.py",
        "[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]",
        "[3, 1, 4, 1, 5, 8, 2, 6, 5, 3]",
        *FRAME_STEPS,
    ),
    edit(
        "datetime-column-one-timestamp",
        "data.py",
        "2024-01-03 08:00",
        "2024-01-03 08:30",
        "timeline",
    ),
    edit(
        "frame-one-category",
        "data.py",
        '["red", "green", "blue", "red", "green", "blue", "red", "green", "blue", "red"]',
        '["red", "green", "blue", "red", "blue", "blue", "red", "green", "blue", "red"]',
        *FRAME_STEPS,
    ),
    edit(
        "frame-category-order-same-values",
        "data.py",
        'categories=["red", "green", "blue"]',
        'categories=["blue", "green", "red"]',
        *FRAME_STEPS,
        notes="same values, other categories order: the codes a step computes differ",
    ),
    edit(
        "frame-dtype-int64-to-float64-same-values",
        "data.py",
        'dtype="int64"',
        'dtype="float64"',
        *FRAME_STEPS,
    ),
    edit(
        "frame-column-order",
        "data.py",
        'columns=["a", "b", "color"]',
        'columns=["b", "a", "color"]',
        *FRAME_STEPS,
    ),
    edit(
        "frame-index-same-values-other-index",
        "data.py",
        "index=pd.RangeIndex(0, 10)",
        "index=pd.RangeIndex(100, 110)",
        *FRAME_STEPS,
    ),
    edit(
        "masked-array-mask",
        "data.py",
        "mask=[False, True, False, False]",
        "mask=[False, False, True, False]",
        "masked_stats",
    ),
    edit(
        "structured-dtype-field-names",
        "data.py",
        '[("x", "i8"), ("y", "f8")]',
        '[("y", "i8"), ("x", "f8")]',
        "records_stats",
    ),
]

CODE_EDITS = [
    edit(
        "swap-inputs-order",
        "userpipe.py",
        'inputs=["data/train", "data/test"], outputs=["eval/report"]',
        'inputs=["data/test", "data/train"], outputs=["eval/report"]',
        "evaluate",
        notes="the train/test mix-up fix: inputs bind positionally to (first, second)",
    ),
    edit(
        "swap-outputs-order",
        "userpipe.py",
        'outputs=["data/train", "data/test"]',
        'outputs=["data/test", "data/train"]',
        "split",
        "evaluate",
    ),
    edit("param-default", "userpipe.py", "alpha=0.5", "alpha=0.25", "evaluate"),
    edit(
        "helper-body", "userpipe.py", "[v * 2 for v in _center", "[v * 3 for v in _center", "helped"
    ),
    edit("helpers-helper-body", "userpipe.py", "v - min(values)", "v - max(values)", "helped"),
    edit(
        "class-method-body",
        "userpipe.py",
        "sum(values) + self.bias",
        "sum(values) * 2 + self.bias",
        "scored",
    ),
    edit("class-attribute", "userpipe.py", "    bias = 1\n", "    bias = 5\n", "scored"),
    edit("module-constant", "userpipe.py", "OFFSET = 10", "OFFSET = 20", "offset_step"),
    edit("global-list-literal", "userpipe.py", "WEIGHTS = [1, 2]", "WEIGHTS = [1, 3]", "weighted"),
    edit(
        "global-list-mutated-later-in-the-module",
        "userpipe.py",
        None,
        "\nWEIGHTS.append(4)\n",
        "weighted",
        notes="the assignment's text is unchanged; the value the step reads is not",
    ),
    edit(
        "global-bound-to-another-library-function",
        "userpipe.py",
        "AGG = np.sum",
        "AGG = np.max",
        "aggregated",
    ),
    edit(
        "global-partial-argument",
        "userpipe.py",
        "partial(scale, factor=3)",
        "partial(scale, factor=4)",
        "partialed",
    ),
    edit("global-lambda-body", "userpipe.py", "lambda v: v / 2", "lambda v: v / 4", "lambdaed"),
    edit(
        "decorated-helper-body",
        "userpipe.py",
        "return (1, 2, 3)",
        "return (1, 2, 4)",
        "looked_up",
        notes="the helper is wrapped by functools.lru_cache",
    ),
    edit("closure-variable", "userpipe.py", "make_scaled(3)", "make_scaled(4)", "scaled"),
    edit(
        "imported-helper-body",
        "helpers.py",
        "[v * factor for v in values]",
        "[v * factor + 1 for v in values]",
        "imported",
        "partialed",
    ),
    edit(
        "helper-called-as-module-attribute",
        "helpers.py",
        "[v + 1 for v in values]",
        "[v + 5 for v in values]",
        "via_module",
    ),
    edit(
        "constant-of-another-user-module",
        "knobs.py",
        "THRESHOLD = 3",
        "THRESHOLD = 2",
        "thresholded",
    ),
    edit(
        "step-called-as-a-function-by-another-step",
        "userpipe.py",
        "    return 20\n",
        "    return 30\n",
        "inner_step",
        "outer_step",
    ),
    edit("step-body-constant", "userpipe.py", "spread([3, 5, 9])", "spread([3, 5, 10])", "helped"),
    edit(
        "step-docstring",
        "userpipe.py",
        '"""Spread some values."""',
        '"""Spread a few values."""',
        "helped",
        changes_output=False,
        notes="a docstring is part of the syntax tree",
    ),
    Edit(
        "dependency-upgraded",
        miss=frozenset({"dep_step"}),
        fakedep_version="2.0.0",
        fakedep_source=FAKEDEP.replace("v + 1", "v + 2"),
        notes="a new version of an installed distribution, with new behaviour",
    ),
    Edit(
        "dependency-version-bumped",
        miss=frozenset({"dep_step"}),
        fakedep_version="1.0.1",
        changes_output=False,
        notes="only the installed version changes (METADATA and the .dist-info's name)",
    ),
    edit(
        "context-param-value",
        "userpipe.py",
        "    count=3,\n",
        "    count=4,\n",
        "tuned",
    ),
    edit(
        "context-int-to-a-different-float",
        "userpipe.py",
        "    rate=2,\n",
        "    rate=2.5,\n",
        "tuned",
    ),
    edit(
        "context-int-to-an-equal-float",
        "userpipe.py",
        "    rate=2,\n",
        "    rate=2.0,\n",
        "tuned",
        notes="2 and 2.0 are equal but the step returns 4 or 4.0",
    ),
    edit(
        "context-nested-dict-inner-value",
        "userpipe.py",
        'options={"inner": {"k": 1}}',
        'options={"inner": {"k": 2}}',
        "tuned",
    ),
    edit(
        "context-pydantic-model-extra-field",
        "userpipe.py",
        'flavour="mild"',
        'flavour="hot"',
        "modeled",
    ),
    edit(
        "context-secret-value",
        "userpipe.py",
        'SecretStr("s3cret")',
        'SecretStr("s3cre7")',
        "modeled",
    ),
    Edit(
        "input-hash-step-of-another-project-same-module-name",
        miss=frozenset({"load_data"}),
        project="other_same_name",
        notes="another directory, same module and step names, another load_data body",
    ),
    Edit(
        "input-hash-step-of-another-project-other-module-name",
        miss=frozenset({"load_data"}),
        project="other_module_name",
        module="otherpipe",
        notes="another directory and module name, same step name, another load_data body",
    ),
]

MISS_EDITS = CODE_EDITS + FRAME_EDITS

HIT_EDITS = [
    Edit("no-edit", notes="the control: the same project run again in another process"),
    edit(
        "comment-in-a-step",
        "userpipe.py",
        '    return {\n        "fit_rows"',
        '    # report the sizes\n    return {  # one dict\n        "fit_rows"',
    ),
    edit(
        "blank-lines-in-a-step",
        "userpipe.py",
        "def profile(frame):\n    return {",
        "def profile(frame):\n\n\n    return {",
    ),
    edit(
        "line-breaks",
        "userpipe.py",
        "    return frame.iloc[:6], frame.iloc[6:]\n",
        "    return (\n        frame.iloc[:6],\n        frame.iloc[6:],\n    )\n",
    ),
    edit(
        "indentation-and-quote-style",
        "userpipe.py",
        'def masked_stats(masked):\n    return {"sum": float(masked.sum()), "count": '
        "int(masked.count())}\n",
        "def masked_stats(masked):\n  return {'sum': float(masked.sum()),\n"
        "          'count': int(masked.count())}\n",
    ),
    edit(
        "decorator-tags",
        "userpipe.py",
        '@step(outputs=["class/score"], register=False)',
        '@step(outputs=["class/score"], tags={"team": "ml"}, register=False)',
    ),
    edit(
        "decorator-retry",
        "userpipe.py",
        '@step(outputs=["globals/offset"], register=False)',
        '@step(outputs=["globals/offset"], retry=2, register=False)',
    ),
    edit(
        "decorator-timeout",
        "userpipe.py",
        '@step(inputs=["data/frame"], outputs=["profile/frame"], register=False)',
        '@step(inputs=["data/frame"], outputs=["profile/frame"], timeout=120, register=False)',
        notes="the step then runs in a forked child",
    ),
    edit(
        "decorator-resources",
        "userpipe.py",
        '@step(outputs=["helper/spread"], register=False)',
        '@step(outputs=["helper/spread"], resources={"cpu": "2", "memory": "1Gi"}, register=False)',
    ),
    edit(
        "condition-code-that-keeps-the-step-running",
        "userpipe.py",
        "return count > 0",
        "return count >= 1",
        notes="decided: a HIT (the condition is evaluated every run, before the cache)",
    ),
    edit(
        "unrelated-step-body",
        "userpipe.py",
        'return {"leaf": 1}',
        'return {"leaf": 2}',
        "leaf",
        notes="the edited step misses; every other step hits",
    ),
    edit(
        "unused-function-added",
        "userpipe.py",
        None,
        "\n\ndef not_used_by_any_step(values):\n    return [v * 7 for v in values]\n",
    ),
    edit(
        "unrelated-constant-changed",
        "userpipe.py",
        'UNRELATED = "left alone"',
        'UNRELATED = "changed"',
    ),
    edit(
        "comment-and-blank-line-in-a-helper",
        "userpipe.py",
        "def spread(values):\n    return",
        "def spread(values):\n    # twice the distance to the minimum\n\n    return",
    ),
    edit(
        "comment-in-an-imported-helper-module",
        "helpers.py",
        "def shift(values):\n",
        "def shift(values):\n    # one more\n",
    ),
    edit(
        "input-hash-step-body",
        "userpipe.py",
        "return [1, 2, 3]\n",
        "return [1, 2, 3, 4]\n",
        changes_output=True,
        notes="decided: cache='input_hash' keeps the value across code edits, by design",
    ),
]

PAIR_EDITS = [
    Edit(
        "factory-made-steps-with-one-name",
        (
            (
                "userpipe.py",
                "power = make_power(2)\n",
                "power = make_power(2)\ncube = make_power(3)\n",
            ),
            ("userpipe.py", "        power,\n", "        power,\n        cube,\n"),
        ),
        notes="two steps named 'power', same code object, different closures and outputs",
    ),
    Edit(
        "lambda-steps-with-one-name",
        (
            (
                "userpipe.py",
                "scaled = make_scaled(3)\n",
                'scaled = make_scaled(3)\nhalved = step(inputs=["power/2"], '
                'outputs=["lambda/halved"], register=False)(\n'
                "    lambda values: [v / 2 for v in values]\n)\n",
            ),
            ("userpipe.py", "        squared,\n", "        squared,\n        halved,\n"),
        ),
        notes="two steps named '<lambda>'",
    ),
]
PAIR_EXPECTED = {
    "factory-made-steps-with-one-name": {
        "power/2": {"list": [{"int": v**2} for v in range(4)]},
        "power/3": {"list": [{"int": v**3} for v in range(4)]},
    },
    "lambda-steps-with-one-name": {
        "lambda/squared": {"list": [{"int": (v**2) ** 2} for v in range(4)]},
        "lambda/halved": {"list": [{"float": v**2 / 2} for v in range(4)]},
    },
}
REFUSALS = ("StepDefinitionError", "PipelineDefinitionError")


# --- running ------------------------------------------------------------------------------------


def driver_env(**settings: str) -> dict[str, str]:
    """The environment of a driver run: ours without a Dagster instance, a hash seed of its own
    (never one set for the tests), and ``settings``."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return {**env, "PYTHONHASHSEED": "random", **settings}


class Driver:
    """``edit_driver.py --serve``: runs the driver in children forked from one warm interpreter."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=driver_env(),
            text=True,
            start_new_session=True,
        )
        self.answer()

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the edit driver's server exited with {self.process.wait()}"
        return json.loads(line)

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], path: list[str]) -> str | None:
        """Run the driver with ``argv``; its stdout and stderr land in ``cwd``. ``None`` when it
        exited with 0, else how it ended."""
        assert self.process.stdin is not None
        request = {
            "argv": argv,
            "cwd": str(cwd),
            "env": env,
            "path": path,
            "stdout": str(cwd / "driver.out"),
            "stderr": str(cwd / "driver.err"),
            "timeout": SUBPROCESS_TIMEOUT,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.answer()
        if answer["timed_out"]:
            return f"killed after {SUBPROCESS_TIMEOUT} s"
        code = answer["exit"]
        if code < 0:
            return f"ended by {signal.Signals(-code).name}"
        return f"exited with {code}" if code else None

    def close(self) -> None:
        """Stop the server, and whatever it or its children left in its process group."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class Project:
    """The user's project on disk, its shared cache dirs, its driver, and every run made so far."""

    root: Path
    driver: Driver
    base: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def site(self) -> Path:
        return self.root / "site-packages"

    def restore(self) -> None:
        write_project(self.root / "project", PROJECT_FILES)
        write_fakedep(self.site, FAKEDEP_VERSION)

    def run(
        self,
        project: str = "project",
        module: str = "userpipe",
        caches: tuple[Path, Path] | None = None,
        rerun: bool = False,
        fresh: bool = False,
    ) -> dict[str, Any]:
        """Run ``module`` of ``project`` in a fresh child of the driver, or with ``fresh`` in a
        new interpreter (a hash seed and heap layout of its own); the driver's JSON report."""
        plain_cache, dagster_cache = caches or (
            self.root / "cache-plain",
            self.root / "cache-dagster",
        )
        path = [str(self.root / project), str(REPO)]
        env = driver_env(
            PYTHONPATH=os.pathsep.join(path),
            PYTHONDONTWRITEBYTECODE="1",  # an edit within the same second must be seen
            FLOWYML_CACHE_DIR=str(self.root / "cache-unused"),
        )
        argv = [
            "--module",
            module,
            "--site",
            str(self.site),
            "--plain-cache",
            str(plain_cache),
            "--dagster-cache",
            str(dagster_cache),
        ]
        if rerun:
            argv.append("--rerun")
        if fresh:
            done = subprocess.run(
                [sys.executable, str(DRIVER), *argv],
                cwd=self.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=SUBPROCESS_TIMEOUT,
            )
            assert done.returncode == 0, done.stderr[-4000:]
            return json.loads(done.stdout.strip().splitlines()[-1])
        failed = self.driver.run(argv, cwd=self.root, env=env, path=path)
        stderr = (self.root / "driver.err").read_text()[-4000:]
        assert failed is None, f"the edit driver {failed}; its stderr:\n{stderr}"
        return json.loads((self.root / "driver.out").read_text().strip().splitlines()[-1])

    def report(self, change: Edit, **options: Any) -> dict[str, Any]:
        """The report of the project with ``change`` applied (run once, then remembered)."""
        if change.id not in self.reports:
            change.apply(self.root)
            try:
                self.reports[change.id] = self.run(change.project, change.module, **options)
            finally:
                self.restore()
        return self.reports[change.id]


def prepared(root: Path, driver: Driver) -> Project:
    """The project and the two other projects of the same-name edits, written under ``root``."""
    made = Project(root, driver)
    made.restore()
    other_load_data = USERPIPE.replace("return [1, 2, 3]\n", "return [7, 8, 9]\n")
    assert other_load_data != USERPIPE
    write_project(made.root / "other_same_name", {**PROJECT_FILES, "userpipe.py": other_load_data})
    other_module = dict(PROJECT_FILES)
    del other_module["userpipe.py"]
    write_project(
        made.root / "other_module_name", {**other_module, "otherpipe.py": other_load_data}
    )
    return made


def run_lane(lane: tuple[Project, list[Edit]]) -> None:
    """The base run of one copy of the project, then its share of the edits, one at a time.

    The base and the edits that keep behaviour run in new interpreters, each with a hash seed and
    heap layout of its own, so a key that is not the same in every process (a set's order, an
    address) turns those hits into misses; the edits that change behaviour, which must miss
    anyway, run in children of the warm driver."""
    copy, edits = lane
    copy.base = copy.run(fresh=True)
    for change in edits:
        copy.report(change, fresh=change in HIT_EDITS)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The project, run once (both runners' caches then hold the base run's entries), and every
    edit's report. Two copies of the project, each with its own caches and base run, take half
    the edits each at the same time: every edit is still compared with the base run of its own
    copy, and the matrix takes half the time on two cores."""
    drivers = [Driver(), Driver()]
    try:
        made = prepared(tmp_path_factory.mktemp("edit-matrix"), drivers[0])
        twin = prepared(tmp_path_factory.mktemp("edit-matrix-twin"), drivers[1])
        edits = MISS_EDITS + HIT_EDITS
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(run_lane, [(made, edits[0::2]), (twin, edits[1::2])]))
        made.reports.update(twin.reports)
        yield made
    finally:
        for driver in drivers:
            driver.close()


def steps_of(report: dict[str, Any], run: str) -> dict[str, dict[str, Any]]:
    assert "error" not in report, report.get("error", {}).get("traceback")
    return report[run]["steps"]


def result_of(report: dict[str, Any], run: str) -> dict[str, Any]:
    """Each step's status and outputs in ``run`` (what must equal a fresh computation)."""
    return {
        name: {"status": step["status"], "outputs": step["outputs"], "error": step["error"]}
        for name, step in steps_of(report, run).items()
    }


def hits(report: dict[str, Any], run: str) -> dict[str, bool]:
    return {name: step["cached"] for name, step in steps_of(report, run).items()}


def ids(edits: list[Edit]) -> list[str]:
    return [e.id for e in edits]


def by_runner(edits: list[Edit]) -> list[Any]:
    return [pytest.param(e, r, id=f"{r}-{e.id}") for e in edits for r in RUNNERS]


# --- the base run -------------------------------------------------------------------------------


@pytest.mark.timeout(900)
@pytest.mark.parametrize("runner", RUNNERS)
def test_the_base_run_computes_every_step(project: Project, runner: str) -> None:
    result = result_of(project.base, f"cached/{runner}")

    assert set(result) == set(STEPS)
    assert set(hits(project.base, f"cached/{runner}").values()) == {False}
    assert result == result_of(project.base, "reference")
    assert {r["status"] for r in result.values()} == {"success"}


@pytest.mark.timeout(900)
def test_both_runners_compute_the_same_base_outputs(project: Project) -> None:
    assert result_of(project.base, "cached/dagster") == result_of(project.base, "cached/plain")


# --- edits that must miss -----------------------------------------------------------------------


CHANGING_EDITS = [e for e in MISS_EDITS if e.changes_output]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("change", CHANGING_EDITS, ids=ids(CHANGING_EDITS))
def test_the_edit_changes_what_a_fresh_run_computes(project: Project, change: Edit) -> None:
    """Guards the matrix itself: an edit meant to change outputs does change them (the docstring
    edit and the version-only bump change none, by nature)."""
    report = project.report(change)
    fresh = result_of(report, "reference")
    base = result_of(project.base, "reference")

    assert {name for name in change.miss if fresh.get(name) != base.get(name)}


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("change", "runner"), by_runner(MISS_EDITS))
def test_an_edited_step_is_a_cache_miss(project: Project, change: Edit, runner: str) -> None:
    cached = hits(project.report(change), f"cached/{runner}")

    assert {name for name in change.miss if cached.get(name, True)} == set()


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("change", "runner"), by_runner(MISS_EDITS))
def test_after_an_edit_every_output_equals_a_fresh_computation(
    project: Project, change: Edit, runner: str
) -> None:
    report = project.report(change)

    assert result_of(report, f"cached/{runner}") == result_of(report, "reference")


# --- edits that must hit ------------------------------------------------------------------------


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("change", "runner"), by_runner(HIT_EDITS))
def test_an_edit_that_keeps_behaviour_is_a_cache_hit(
    project: Project, change: Edit, runner: str
) -> None:
    cached = hits(project.report(change), f"cached/{runner}")

    assert {name for name, hit in cached.items() if not hit} == set(change.miss)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("change", "runner"), by_runner(HIT_EDITS))
def test_after_an_edit_that_keeps_behaviour_outputs_are_unchanged(
    project: Project, change: Edit, runner: str
) -> None:
    after = result_of(project.report(change), f"cached/{runner}")
    before = result_of(project.base, f"cached/{runner}")

    assert {n: r for n, r in after.items() if n not in change.miss} == {
        n: r for n, r in before.items() if n not in change.miss
    }


# --- two steps with one name --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair_reports(project: Project) -> dict[str, dict[str, Any]]:
    """Each pair edit run with caches of its own, the cached runs twice (the second must hit)."""
    reports = {}
    for change in PAIR_EDITS:
        caches = (project.root / f"{change.id}-plain", project.root / f"{change.id}-dagster")
        reports[change.id] = project.report(change, caches=caches, rerun=True)
    return reports


def refused(report: dict[str, Any]) -> bool:
    """The project was refused at import or build, naming a definition error."""
    return "error" in report and report["error"]["type"] in REFUSALS


PAIR_RUNS = ("reference", "cached/plain", "cached/dagster", "rerun/plain", "rerun/dagster")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("run", PAIR_RUNS)
@pytest.mark.parametrize("change", PAIR_EDITS, ids=ids(PAIR_EDITS))
def test_same_named_steps_are_refused_or_both_kept(
    pair_reports: dict[str, dict[str, Any]], change: Edit, run: str
) -> None:
    """The second step's outputs are never silently lost: an error, or both steps' values."""
    report = pair_reports[change.id]
    if refused(report):
        return
    steps_of(report, run)  # the run itself succeeded
    outputs = report[run]["outputs"]

    assert {k: outputs.get(k) for k in PAIR_EXPECTED[change.id]} == PAIR_EXPECTED[change.id]


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("change", "runner"), by_runner(PAIR_EDITS))
def test_same_named_steps_kept_apart_have_cache_entries_of_their_own(
    pair_reports: dict[str, dict[str, Any]], change: Edit, runner: str
) -> None:
    """Run again with the same cache, both steps are hits (they did not overwrite each other)."""
    report = pair_reports[change.id]
    if refused(report):
        return
    hit_of_output = {
        output: step["cached"]
        for step in steps_of(report, f"rerun/{runner}").values()
        for output in step["outputs"]
    }

    assert {k: hit_of_output.get(k) for k in PAIR_EXPECTED[change.id]} == dict.fromkeys(
        PAIR_EXPECTED[change.id], True
    )
