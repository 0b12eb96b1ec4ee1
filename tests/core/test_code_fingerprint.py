"""``code_fingerprint``: the step's code, the user code it reaches, the values it reads and the
versions of the packages it uses; and nothing of the standard library's or a package's own code.

User modules are real files in a temporary directory on ``sys.path``. A test that compares two
versions of some code rewrites the same module file and reloads it (``Project.versions``), and a
test that expects a difference also restores the first text and checks that the first fingerprint
comes back: the module's name and file stay the same, so a difference can only come from the edit.
"""

from __future__ import annotations

import importlib
import itertools
import json
import linecache
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import flowyml
import flowyml.core.code_fingerprint as cf
from flowyml.core.code_fingerprint import UncachableCodeError, code_fingerprint

_numbers = itertools.count()
PREFIX = "cfp_user_"


class Project:
    """User modules written to a directory on ``sys.path``, imported and reloaded by name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, source: str) -> None:
        """Write the module's text; ``linecache`` forgets the old text even when the size and
        the (coarse) modification time of the file did not change."""
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        linecache.cache.pop(str(path), None)
        importlib.invalidate_caches()

    def load(self, source: str) -> ModuleType:
        """``source`` as a module of its own, under a name never used before."""
        name = self.new_name()
        self.write(name, source)
        return importlib.import_module(name)

    def reload(self, name: str) -> ModuleType:
        module = sys.modules.get(name)
        return importlib.import_module(name) if module is None else importlib.reload(module)

    def versions(self, *sources: str) -> list[str]:
        """The fingerprint of ``train`` after each text in turn of one module (same name, file)."""
        name = self.new_name()
        digests = []
        for source in sources:
            self.write(name, source)
            digests.append(code_fingerprint(self.reload(name).train))
        return digests

    def edited_after_import(self, source: str, edited: str) -> ModuleType:
        """``source`` imported as a module (not fingerprinted yet), then its file saved as
        ``edited``: the module runs the old code."""
        name = self.new_name()
        self.write(name, source)
        running = self.reload(name)
        self.write(name, edited)
        return running

    @staticmethod
    def new_name() -> str:
        return f"{PREFIX}{next(_numbers)}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A directory of user modules; the modules are forgotten after the test.

    No bytecode files: a rewritten module is recompiled from its new text, never from a stale
    ``.pyc`` whose timestamp happens to match.
    """
    root = tmp_path / "user"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield Project(root)
    for name in [n for n in sys.modules if n.startswith(PREFIX)]:
        del sys.modules[name]


def clear_process_caches() -> None:
    """What a new process would start without: origins of files and modules, package versions."""
    for cached in (cf._path_origin, cf._origin, cf._unloaded_origin):
        cached.cache_clear()
    cf._versions.cache_clear()


# -- The step's own code ------------------------------------------------------------------------

PIPELINE = """
THRESHOLD = 0.5


def inner(x):
    return x * 2


def helper(x):
    return inner(x) + 1


def train(x):
    return helper(x) > THRESHOLD
"""


def test_the_same_code_in_another_module_has_the_same_fingerprint(project: Project) -> None:
    first = project.load(PIPELINE)
    second = project.load(PIPELINE)

    assert code_fingerprint(first.train) == code_fingerprint(second.train)


def test_the_fingerprint_is_a_hex_sha256(project: Project) -> None:
    digest = code_fingerprint(project.load(PIPELINE).train)

    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_an_edit_of_the_step_body_changes_the_fingerprint(project: Project) -> None:
    edited = PIPELINE.replace("return helper(x) > THRESHOLD", "return helper(x) >= THRESHOLD")

    original, changed, restored = project.versions(PIPELINE, edited, PIPELINE)

    assert changed != original
    assert restored == original


def test_the_steps_own_decorator_arguments_do_not_count(project: Project) -> None:
    source = """
    from flowyml import step


    @step(outputs=["model"], retry=1, register=False)
    def train(x):
        return x + 1
    """
    redecorated = source.replace("retry=1,", 'retry=5, tags={"team": "ml"},')

    original, changed = project.versions(source, redecorated)

    assert changed == original


def test_functions_without_source_count_by_their_bytecode() -> None:
    namespaces: list[dict[str, Any]] = [{}, {}, {}]
    exec("def f(x):\n    return x + 1\n", namespaces[0])
    exec("def f(x):\n    return x + 1\n", namespaces[1])
    exec("def f(x):\n    return x + 2\n", namespaces[2])
    digests = [code_fingerprint(namespace["f"]) for namespace in namespaces]

    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_a_step_whose_file_was_edited_after_import_is_not_keyed_by_the_edited_file(
    project: Project,
) -> None:
    edited = PIPELINE.replace("return helper(x) > THRESHOLD", "return helper(x) >= THRESHOLD")
    running = project.edited_after_import(PIPELINE, edited)

    stale = code_fingerprint(running.train)

    # A fresh process runs the edited code: it must never be handed the old code's values.
    assert stale != code_fingerprint(project.load(edited).train)


def test_a_helper_edited_after_import_does_not_key_the_old_helper_by_its_new_text(
    project: Project,
) -> None:
    edited = PIPELINE.replace("return inner(x) + 1", "return inner(x) + 10")
    running = project.edited_after_import(PIPELINE, edited)

    assert code_fingerprint(running.train) != code_fingerprint(project.load(edited).train)


def test_an_edit_after_import_that_leaves_the_running_code_as_written_keeps_the_key(
    project: Project,
) -> None:
    running = project.edited_after_import(PIPELINE, PIPELINE + "\n\n# a note at the end\n")

    assert code_fingerprint(running.train) == code_fingerprint(project.load(PIPELINE).train)


# -- User code reached from the step ------------------------------------------------------------


def test_an_edit_of_a_helper_changes_the_fingerprint(project: Project) -> None:
    edited = PIPELINE.replace("return inner(x) + 1", "return inner(x) + 10")

    original, changed, restored = project.versions(PIPELINE, edited, PIPELINE)

    assert changed != original
    assert restored == original


def test_an_edit_of_a_helpers_helper_changes_the_fingerprint(project: Project) -> None:
    edited = PIPELINE.replace("return x * 2", "return x * 20")

    original, changed, restored = project.versions(PIPELINE, edited, PIPELINE)

    assert changed != original
    assert restored == original


def test_comments_blank_lines_and_formatting_of_helpers_do_not_count(project: Project) -> None:
    reformatted = PIPELINE.replace(
        "def inner(x):\n    return x * 2",
        "def inner(x):  # doubles\n\n    # the factor is fixed\n    return (x *\n            2)",
    )
    assert reformatted != PIPELINE

    original, changed = project.versions(PIPELINE, reformatted)

    assert changed == original


def test_a_helpers_docstring_is_part_of_its_code(project: Project) -> None:
    """Docstrings are in the syntax tree (a library may read ``__doc__``), so they count."""
    documented = PIPELINE.replace("def inner(x):\n", 'def inner(x):\n    """Double it."""\n')

    original, changed, restored = project.versions(PIPELINE, documented, PIPELINE)

    assert changed != original
    assert restored == original


def test_a_helpers_decorator_arguments_count(project: Project) -> None:
    source = """
    import functools


    @functools.lru_cache(maxsize=8)
    def helper(x):
        return x + 1


    def train(x):
        return helper(x)
    """
    resized = source.replace("maxsize=8", "maxsize=16")

    original, changed, restored = project.versions(source, resized, source)

    assert changed != original
    assert restored == original


def test_a_helpers_default_value_counts(project: Project) -> None:
    """``scale=SCALE`` is evaluated once, at definition: the value counts, not the name."""
    source = """
    SCALE = 2


    def helper(x, scale=SCALE):
        return x * scale


    def train(x):
        return helper(x)
    """

    original, changed, restored = project.versions(
        source, source.replace("SCALE = 2", "SCALE = 3"), source
    )

    assert changed != original
    assert restored == original


CLASSES = """
class Base:
    def factor(self):
        return 2


def offset():
    return 1


class Scaler(Base):
    def apply(self, x):
        return x * self.factor() + offset()


def train(x):
    return Scaler().apply(x)
"""


def test_an_edit_of_a_method_of_a_class_the_step_uses_changes_the_fingerprint(
    project: Project,
) -> None:
    edited = CLASSES.replace("x * self.factor()", "x / self.factor()")

    original, changed, restored = project.versions(CLASSES, edited, CLASSES)

    assert changed != original
    assert restored == original


def test_an_edit_of_a_user_base_class_changes_the_fingerprint(project: Project) -> None:
    edited = CLASSES.replace("return 2", "return 3")

    original, changed, restored = project.versions(CLASSES, edited, CLASSES)

    assert changed != original
    assert restored == original


def test_an_edit_of_a_helper_a_method_calls_changes_the_fingerprint(project: Project) -> None:
    edited = CLASSES.replace("return 1", "return 10")

    original, changed, restored = project.versions(CLASSES, edited, CLASSES)

    assert changed != original
    assert restored == original


def test_mutual_recursion_terminates(project: Project) -> None:
    source = """
    def is_even(n):
        return True if n == 0 else is_odd(n - 1)


    def is_odd(n):
        return False if n == 0 else is_even(n - 1)


    def train(n):
        return is_even(n)
    """
    original, changed, restored = project.versions(
        source, source.replace("False if", "bool(0) if"), source
    )

    assert changed != original
    assert restored == original


HELPERS = """
def helper(x):
    return x + 1


def helper_as_method(self, x):
    return x + 1
"""

# How a step module reaches ``helper`` (or ``helper_as_method``) of the module ``{helpers}``.
REACHED_THROUGH = {
    "a global": """
        from {helpers} import helper

        def train(x):
            return helper(x)
    """,
    "a module attribute": """
        import {helpers}

        def train(x):
            return {helpers}.helper(x)
    """,
    "an import in the step body": """
        def train(x):
            from {helpers} import helper
            return helper(x)
    """,
    "a module imported in the step body": """
        def train(x):
            import {helpers}
            return {helpers}.helper(x)
    """,
    "a closure cell": """
        from {helpers} import helper

        def make(fn):
            def train(x):
                return fn(x)
            return train

        train = make(helper)
    """,
    "a functools.partial": """
        import functools
        from {helpers} import helper

        bump = functools.partial(helper)

        def train(x):
            return bump(x)
    """,
    "a bound method": """
        from {helpers} import helper_as_method

        class Holder:
            run = helper_as_method

        run = Holder().run

        def train(x):
            return run(x)
    """,
    "a staticmethod": """
        from {helpers} import helper

        class Tools:
            bump = staticmethod(helper)

        def train(x):
            return Tools.bump(x)
    """,
    "a classmethod": """
        from {helpers} import helper_as_method

        class Tools:
            bump = classmethod(helper_as_method)

        def train(x):
            return Tools.bump(x)
    """,
    "a Step object": """
        from flowyml import step
        from {helpers} import helper

        bump = step(register=False)(helper)

        def train(x):
            return bump(x)
    """,
    "a default value": """
        from {helpers} import helper

        def train(x, fn=helper):
            return fn(x)
    """,
}


@pytest.mark.parametrize("through", sorted(REACHED_THROUGH))
def test_a_helper_reached_through_is_walked(project: Project, through: str) -> None:
    helpers, steps = project.new_name(), project.new_name()
    project.write(helpers, HELPERS)
    project.write(steps, REACHED_THROUGH[through].format(helpers=helpers))

    def fingerprint_after(helpers_source: str) -> str:
        project.write(helpers, helpers_source)
        project.reload(helpers)
        return code_fingerprint(project.reload(steps).train)

    original = fingerprint_after(HELPERS)
    edited = fingerprint_after(HELPERS.replace("x + 1", "x + 100"))
    restored = fingerprint_after(HELPERS)

    assert edited != original
    assert restored == original


# -- Values the code reads ----------------------------------------------------------------------


def test_a_module_constant_with_another_value_changes_the_fingerprint(project: Project) -> None:
    edited = PIPELINE.replace("THRESHOLD = 0.5", "THRESHOLD = 0.6")

    original, changed, restored = project.versions(PIPELINE, edited, PIPELINE)

    assert changed != original
    assert restored == original


def test_a_constant_rebound_at_run_time_is_seen_on_the_next_call(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook cell ``THRESHOLD = 0.6`` between two runs, without redefining the step."""
    module = project.load(PIPELINE)
    before = code_fingerprint(module.train)

    monkeypatch.setattr(module, "THRESHOLD", 0.6)
    rebound = code_fingerprint(module.train)
    monkeypatch.setattr(module, "THRESHOLD", 0.5)

    assert rebound != before
    assert code_fingerprint(module.train) == before


def test_a_numpy_array_constant_counts_by_content(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = project.load(
        """
        import numpy as np

        WEIGHTS = np.array([1.0, 2.0])


        def train(x):
            return x @ WEIGHTS
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(module, "WEIGHTS", np.array([1.0, 3.0]))

    assert code_fingerprint(module.train) != before


def test_a_closure_variable_with_another_value_changes_the_fingerprint(project: Project) -> None:
    module = project.load(
        """
        def make(factor):
            def train(x):
                return x * factor
            return train
        """
    )

    assert code_fingerprint(module.make(2)) == code_fingerprint(module.make(2))
    assert code_fingerprint(module.make(2)) != code_fingerprint(module.make(3))


def test_rebinding_a_helper_name_is_seen_on_the_next_call(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The structure cache keeps which names code reads, never what they are bound to."""
    module = project.load(PIPELINE)
    other = project.load(PIPELINE.replace("return inner(x) + 1", "return inner(x) - 1"))
    original = module.helper
    before = code_fingerprint(module.train)

    monkeypatch.setattr(module, "helper", other.helper)
    rebound = code_fingerprint(module.train)
    monkeypatch.setattr(module, "helper", original)

    assert rebound != before
    assert code_fingerprint(module.train) == before


def test_a_name_not_defined_yet_counts_as_missing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = project.load(
        """
        def train(x):
            return later(x)
        """
    )
    missing = code_fingerprint(module.train)

    monkeypatch.setattr(module, "later", abs, raising=False)

    assert code_fingerprint(module.train) != missing


def test_an_unfingerprintable_global_raises_naming_it(project: Project) -> None:
    module = project.load(
        """
        import sqlite3

        conn = sqlite3.connect(":memory:")


        def train(query):
            return conn.execute(query)
        """
    )
    try:
        with pytest.raises(UncachableCodeError) as raised:
            code_fingerprint(module.train)
    finally:
        module.conn.close()

    assert isinstance(raised.value, TypeError)
    assert str(raised.value).startswith("global 'conn' (sqlite3.Connection) read by train()")


# -- Code that is not the user's ----------------------------------------------------------------


def test_standard_library_code_is_not_walked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were ``json.dumps`` walked, giving it another body would change the fingerprint."""
    module = project.load(
        """
        import json


        def train(x):
            return json.dumps(x)
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(json.dumps, "__code__", json.loads.__code__)

    assert code_fingerprint(module.train) == before


def test_rebinding_a_global_to_another_library_function_changes_the_fingerprint(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Library code is not walked, but which library function a name is bound to counts."""
    module = project.load(
        """
        import json

        serialize = json.dumps


        def train(x):
            return serialize(x)
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(module, "serialize", json.loads)

    assert code_fingerprint(module.train) != before


def test_numpy_code_is_not_walked(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    module = project.load(
        """
        import numpy


        def train(x):
            return numpy.mean(x)
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(np.mean.__wrapped__, "__code__", np.std.__wrapped__.__code__)

    assert code_fingerprint(module.train) == before


def test_flowyml_code_counts_as_a_dependency_not_as_user_code(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = project.load(
        """
        import flowyml


        def train():
            return flowyml.get_registered_steps()
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(
        flowyml.get_registered_steps, "__code__", flowyml.clear_step_registry.__code__
    )

    assert code_fingerprint(module.train) == before


FAKEPKG_V1 = """
import functools


def compute(x):
    return x + 1


class Counter:
    n = 0


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)

    return wrapper
"""


def install_fakepkg(site_dir: Path, version: str) -> None:
    """What ``pip install fakepkg==<version>`` leaves in a site directory."""
    for old in site_dir.glob("fakepkg-*.dist-info"):
        shutil.rmtree(old)
    package = site_dir / "fakepkg"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(FAKEPKG_V1, encoding="utf-8")
    info = site_dir / f"fakepkg-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fakepkg\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "top_level.txt").write_text("fakepkg\n", encoding="utf-8")
    (info / "RECORD").write_text(
        f"fakepkg/__init__.py,,\nfakepkg-{version}.dist-info/METADATA,,\n", encoding="utf-8"
    )
    importlib.invalidate_caches()


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` holding the distribution ``fakepkg`` 1.0, not yet a site
    directory of this module: ``as_site_directory`` makes it one."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    install_fakepkg(directory, "1.0")
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    clear_process_caches()
    yield directory
    sys.modules.pop("fakepkg", None)
    clear_process_caches()


def as_site_directory(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Count ``directory`` among the site directories, as ``site-packages`` is. This patches the
    module's list of roots only: what the tests below prove is what happens to code found there,
    not that the real ``site-packages`` is found (``test_installed_numpy_is_not_user_code``)."""
    roots = cf._roots()
    monkeypatch.setattr(cf, "_roots", lambda: ((str(directory.resolve()), "site"), *roots))
    clear_process_caches()


def test_installed_numpy_is_not_user_code() -> None:
    assert cf._module_origin(np) == "dist:numpy"
    assert cf._module_origin(json) == "stdlib"
    assert cf._module_origin(flowyml) == "dist:flowyml"


USES_FAKEPKG = {
    "module": "import fakepkg\n\n\ndef train(x):\n    return fakepkg.compute(x)\n",
    "function": "from fakepkg import compute\n\n\ndef train(x):\n    return compute(x)\n",
}


@pytest.mark.parametrize("imported", sorted(USES_FAKEPKG))
def test_an_installed_distributions_version_counts(
    project: Project, site_dir: Path, monkeypatch: pytest.MonkeyPatch, imported: str
) -> None:
    as_site_directory(site_dir, monkeypatch)
    module = project.load(USES_FAKEPKG[imported])
    before = code_fingerprint(module.train)

    install_fakepkg(site_dir, "2.0")
    clear_process_caches()  # versions are read once per process: this stands for a restart

    assert code_fingerprint(module.train) != before


def test_an_installed_packages_code_is_not_walked(
    project: Project, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_site_directory(site_dir, monkeypatch)
    module = project.load(USES_FAKEPKG["module"])
    before = code_fingerprint(module.train)

    (site_dir / "fakepkg" / "__init__.py").write_text(
        FAKEPKG_V1.replace("x + 1", "x + 100"), encoding="utf-8"
    )
    importlib.reload(sys.modules["fakepkg"])

    assert code_fingerprint(module.train) == before


def test_the_same_package_outside_site_directories_is_user_code(
    project: Project, site_dir: Path
) -> None:
    """The control of the test above: a package found elsewhere (an editable install, a
    project directory) is walked, so the same edit is seen."""
    module = project.load(USES_FAKEPKG["module"])
    before = code_fingerprint(module.train)

    (site_dir / "fakepkg" / "__init__.py").write_text(
        FAKEPKG_V1.replace("x + 1", "x + 100"), encoding="utf-8"
    )
    importlib.reload(sys.modules["fakepkg"])

    assert code_fingerprint(module.train) != before


def test_a_third_party_object_counts_by_its_state(
    project: Project, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_site_directory(site_dir, monkeypatch)
    module = project.load(
        """
        import fakepkg

        counter = fakepkg.Counter()


        def train(x):
            return counter.n + x
        """
    )
    before = code_fingerprint(module.train)

    monkeypatch.setattr(module.counter, "n", 5, raising=False)

    assert code_fingerprint(module.train) != before


def test_a_helper_wrapped_by_a_packages_decorator_is_walked(
    project: Project, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package's wrapper is not walked, but it exposes ``__wrapped__``: the helper is."""
    as_site_directory(site_dir, monkeypatch)
    source = """
    import fakepkg


    @fakepkg.traced
    def helper(x):
        return x + 1


    def train(x):
        return helper(x)
    """

    original, changed, restored = project.versions(
        source, source.replace("x + 1", "x + 100"), source
    )

    assert changed != original
    assert restored == original


# -- The structure cache ------------------------------------------------------------------------


def test_the_structure_of_code_is_parsed_once_per_process(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[object] = []
    parse: Callable[[Any], Any] = cf._parse

    def counting_parse(obj: Any) -> Any:
        parsed.append(obj)
        return parse(obj)

    monkeypatch.setattr(cf, "_parse", counting_parse)
    module = project.load(CLASSES)
    first = code_fingerprint(module.train)
    parsed_by_first_call = len(parsed)

    second = code_fingerprint(module.train)

    assert parsed_by_first_call > 0
    assert len(parsed) == parsed_by_first_call
    assert second == first


def test_an_import_in_the_body_counts_the_same_before_and_after_the_package_is_imported(
    project: Project, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that imports a library inside its body: the first run imports it; the second
    run's key must be the first run's, or the cache never hits."""
    as_site_directory(site_dir, monkeypatch)
    monkeypatch.delitem(sys.modules, "fakepkg", raising=False)
    module = project.load("def train(x):\n    from fakepkg import compute\n    return compute(x)\n")
    before = code_fingerprint(module.train)

    module.train(1)

    assert "fakepkg" in sys.modules
    assert code_fingerprint(module.train) == before


def test_a_class_attribute_computed_from_a_constant_counts_by_value(project: Project) -> None:
    source = """
    SCALE = {scale}


    class Settings:
        K = SCALE


    def train():
        return Settings.K * 10
    """
    before, after = project.versions(source.format(scale=2), source.format(scale=3))

    assert after != before


def test_an_enum_members_value_counts(project: Project) -> None:
    source = """
    import enum

    BASE = {base}


    class Mode(enum.Enum):
        A = BASE


    def train():
        return Mode.A.value
    """
    before, after = project.versions(source.format(base=1), source.format(base=7))

    assert after != before


def test_a_pydantic_field_default_from_a_constant_counts(project: Project) -> None:
    source = """
    from pydantic import BaseModel

    LR = {lr}


    class Config(BaseModel):
        lr: float = LR


    def train():
        return Config().lr
    """
    before, after = project.versions(source.format(lr=0.1), source.format(lr=0.5))

    assert after != before


def test_a_function_held_in_a_dispatch_table_is_walked(project: Project) -> None:
    source = """
    def double(x):
        return x * {factor}


    OPS = {{"double": double}}


    def train(x):
        return OPS["double"](x)
    """
    before, after = project.versions(source.format(factor=2), source.format(factor=3))

    assert after != before


def test_a_function_held_by_a_user_object_is_walked(project: Project) -> None:
    source = """
    def double(x):
        return x * {factor}


    class Box:
        pass


    BOX = Box()
    BOX.fn = double


    def train(x):
        return BOX.fn(x)
    """
    before, after = project.versions(source.format(factor=2), source.format(factor=3))

    assert after != before
