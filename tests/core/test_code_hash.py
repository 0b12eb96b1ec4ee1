"""``Step.get_code_hash``: a fingerprint of what the function does, not how it is decorated."""

from __future__ import annotations

import itertools
from pathlib import Path

from core_support import load_module

from flowyml import Step

_modules = itertools.count()

BASE = """
from flowyml import step


@step(outputs=["model"], retry=1, register=False)
def train(raw, learning_rate=0.01):
    scaled = [x * learning_rate for x in raw]
    return sum(scaled)
"""


def code_hash(directory: Path, source: str) -> str:
    """The code hash of ``train`` defined by ``source`` in a module file of its own."""
    module = load_module(directory, f"code_hash_{next(_modules)}", source)
    return module.train.get_code_hash()


def test_the_same_code_in_another_file_has_the_same_hash(tmp_path: Path) -> None:
    assert code_hash(tmp_path, BASE) == code_hash(tmp_path, BASE)


def test_comments_and_blank_lines_do_not_change_the_hash(tmp_path: Path) -> None:
    commented = BASE.replace(
        "    scaled = [",
        "    # scale every value first\n\n    scaled = [  # a comprehension\n        ",
    )
    assert commented != BASE

    assert code_hash(tmp_path, commented) == code_hash(tmp_path, BASE)


def test_decorator_arguments_do_not_change_the_hash(tmp_path: Path) -> None:
    redecorated = BASE.replace(
        '@step(outputs=["model"], retry=1, register=False)',
        '@step(outputs=["model"], retry=5, timeout=60, tags={"team": "ml"}, register=False)',
    )
    assert redecorated != BASE

    assert code_hash(tmp_path, redecorated) == code_hash(tmp_path, BASE)


def test_an_edit_of_the_body_changes_the_hash(tmp_path: Path) -> None:
    edited = BASE.replace("return sum(scaled)", "return max(scaled)")
    assert edited != BASE

    assert code_hash(tmp_path, edited) != code_hash(tmp_path, BASE)


def test_an_edit_of_a_default_value_changes_the_hash(tmp_path: Path) -> None:
    edited = BASE.replace("learning_rate=0.01", "learning_rate=0.02")
    assert edited != BASE

    assert code_hash(tmp_path, edited) != code_hash(tmp_path, BASE)


def test_functions_without_source_hash_their_compiled_code() -> None:
    namespaces: list[dict[str, object]] = [{}, {}, {}]
    exec("def f(x):\n    return x + 1\n", namespaces[0])
    exec("def f(x):\n    return x + 1\n", namespaces[1])
    exec("def f(x):\n    return x + 2\n", namespaces[2])
    hashes = [Step(ns["f"]).get_code_hash() for ns in namespaces]  # type: ignore[arg-type]

    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]
