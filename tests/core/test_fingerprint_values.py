"""Content fingerprints of values: equal content agrees, any difference disagrees.

A fingerprint is a memoization cache key: two different values that agree would hand a step a
stale result, so every family of values is checked both ways — an equal copy (``copy``, a pickle
round trip, another memory layout or chunking) agrees, and one changed element, row, timestamp,
category, mask bit, field name, column order, index value or time zone disagrees.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import enum
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic
import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretBytes, SecretStr

from flowyml.core.fingerprint import UnfingerprintableError, fingerprint

REPO_ROOT = Path(__file__).resolve().parents[2]
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
needs_pyarrow = pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
KEY = b"k" * 32
OTHER_KEY = b"q" * 32


def round_trips(value: Any) -> list[Any]:
    """Equal copies of ``value`` made by other means: a deep copy and a pickle round trip."""
    return [copy.deepcopy(value), pickle.loads(pickle.dumps(value))]


def assert_equal_copies_agree(value: Any) -> None:
    digest = fingerprint(value)
    for twin in round_trips(value):
        assert fingerprint(twin) == digest


# -- Python values ----------------------------------------------------------------------------


def test_a_fingerprint_is_a_hex_sha256() -> None:
    digest = fingerprint({"a": [1, 2.5, "x"]})

    assert len(digest) == 64
    int(digest, 16)


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(10**40), 2.5, 1 + 2j, "text", b"raw", bytearray(b"raw"), [1, "a"], (1,)],
    ids=repr,
)
def test_builtin_values_agree_with_their_copies(value: Any) -> None:
    assert_equal_copies_agree(value)


def test_types_are_tagged_so_similar_looking_values_never_collide() -> None:
    values = [
        [1, 2],
        (1, 2),
        np.array([1, 2]),
        "12",
        b"12",
        bytearray(b"12"),
        {1, 2},
        frozenset({1, 2}),
        {1: 2},
        12,
        12.0,
        np.int64(12),
        True,
        1,
        None,
        "",
        b"",
        [],
        (),
    ]

    assert len({fingerprint(v) for v in values}) == len(values)


def test_lengths_are_framed_so_concatenations_never_collide() -> None:
    pairs = [
        (["ab", "c"], ["a", "bc"]),
        ([b"ab", b"c"], [b"a", b"bc"]),
        ([[1], [2, 3]], [[1, 2], [3]]),
        ({"ab": "c"}, {"a": "bc"}),
        ((("a",), "b"), ("a", ("b",))),
    ]

    for one, two in pairs:
        assert fingerprint(one) != fingerprint(two)


def test_set_order_does_not_count() -> None:
    assert fingerprint({"x", "y", "z"}) == fingerprint({"z", "x", "y"})


def test_dict_order_counts_since_code_depends_on_it() -> None:
    """``pd.DataFrame({"a": ..., "b": ...})`` takes its column order from the dict."""
    assert fingerprint({"a": 1, "b": 2}) != fingerprint({"b": 2, "a": 1})


def test_a_dataclass_attribute_set_after_construction_counts() -> None:
    @dataclasses.dataclass
    class Model:
        alpha: float = 1.0

    one, two = Model(), Model()
    one.coef_ = 2.0  # type: ignore[attr-defined]
    two.coef_ = 5.0  # type: ignore[attr-defined]

    assert fingerprint(one) != fingerprint(two)


def test_a_defaultdicts_factory_counts() -> None:
    assert fingerprint(collections.defaultdict(int)) != fingerprint(collections.defaultdict(list))


def test_attributes_of_a_list_subclass_count() -> None:
    class Tagged(list):  # type: ignore[type-arg]
        pass

    one, two = Tagged([1]), Tagged([1])
    one.tag = "a"  # type: ignore[attr-defined]
    two.tag = "b"  # type: ignore[attr-defined]

    assert fingerprint(one) != fingerprint(two)


class Vocabulary:
    """A plain object holding a set of strings: its pickle's order depends on the hash seed."""

    def __init__(self, words: list[str]) -> None:
        self.words = set(words)


def test_an_objects_set_of_strings_gives_one_fingerprint_whatever_the_hash_seed() -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_fingerprint_values import Vocabulary\n"
        "from flowyml.core.fingerprint import fingerprint\n"
        "print(fingerprint(Vocabulary([f'w{i}' for i in range(50)])))\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }

    assert len(digests) == 1


def test_ordered_dict_order_counts_like_its_equality() -> None:
    one = collections.OrderedDict([("a", 1), ("b", 2)])
    two = collections.OrderedDict([("b", 2), ("a", 1)])

    assert fingerprint(one) != fingerprint(two)


def test_a_changed_dict_value_changes_the_fingerprint() -> None:
    assert fingerprint({"a": 1, "b": 2}) != fingerprint({"a": 1, "b": 3})


def test_ints_of_any_size_are_fingerprinted_exactly() -> None:
    huge = 10**20000  # beyond int's 4300-digit str() limit

    assert fingerprint(huge) != fingerprint(huge + 1)
    assert fingerprint(-1) != fingerprint(255)


def test_negative_zero_differs_from_zero_and_nan_equals_nan() -> None:
    assert fingerprint(-0.0) != fingerprint(0.0)
    assert fingerprint(float("nan")) == fingerprint(float("nan"))


def test_bool_differs_from_int() -> None:
    assert fingerprint(True) != fingerprint(1)
    assert fingerprint(False) != fingerprint(0)


def test_subclasses_of_builtins_keep_their_type_name() -> None:
    class Color(enum.IntEnum):
        RED = 1

    Point = collections.namedtuple("Point", "x y")

    class Tags(list[str]):
        pass

    assert fingerprint(Color.RED) != fingerprint(1)
    assert fingerprint(Point(1, 2)) != fingerprint((1, 2))
    assert fingerprint(Tags(["a"])) != fingerprint(["a"])


def test_a_shared_object_and_an_equal_copy_give_the_same_fingerprint() -> None:
    shared = {"weights": [0.5] * 40, "name": "m"}

    assert fingerprint([shared, shared]) == fingerprint([shared, copy.deepcopy(shared)])


def test_a_shared_object_still_counts_once_per_reference() -> None:
    shared = [1, 2, 3]

    assert fingerprint([shared, shared]) != fingerprint([shared])


@pytest.mark.timeout(10)
def test_a_nine_level_alias_bomb_finishes() -> None:
    bomb: Any = [1] * 9
    for _ in range(9):
        bomb = [bomb] * 9  # 9**10 leaves, 10 distinct lists

    assert fingerprint(bomb) != fingerprint([bomb])


@pytest.mark.timeout(10)
def test_a_yaml_alias_bomb_document_finishes() -> None:
    yaml = pytest.importorskip("yaml")
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 10):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    document = "\n".join(lines)
    assert len(document) < 1000

    assert len(fingerprint(yaml.safe_load(document))) == 64


@pytest.mark.timeout(10)
def test_a_long_string_referenced_many_times_is_hashed_once() -> None:
    text = "x" * 10_000_000

    assert fingerprint([text] * 1000) != fingerprint([text] * 999)


def test_a_structure_that_contains_itself_raises() -> None:
    loop: list[Any] = [1]
    loop.append(loop)

    with pytest.raises(UnfingerprintableError, match="contains itself"):
        fingerprint(loop)


def test_a_too_deeply_nested_value_raises_unfingerprintable() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]

    with pytest.raises(UnfingerprintableError, match="nested too deeply"):
        fingerprint(deep)


def test_an_unpicklable_unsupported_object_raises_naming_its_type() -> None:
    with pytest.raises(UnfingerprintableError, match=r"_thread\.lock"):
        fingerprint({"lock": threading.Lock()})


def test_unfingerprintable_error_is_a_type_error() -> None:
    assert issubclass(UnfingerprintableError, TypeError)


class Plain:
    """A class with no special support: fingerprinted by its class and its pickle."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Twin:
    def __init__(self, value: Any) -> None:
        self.value = value


def test_other_objects_are_fingerprinted_by_class_and_pickle() -> None:
    assert fingerprint(Plain(1)) == fingerprint(Plain(1))
    assert fingerprint(Plain(1)) != fingerprint(Plain(2))
    assert fingerprint(Plain(1)) != fingerprint(Twin(1))
    assert fingerprint(Decimal("1.10")) != fingerprint(Decimal("1.1"))


def test_an_array_inside_a_pickled_object_counts() -> None:
    base = np.arange(100_000, dtype=np.float64)
    changed = base.copy()
    changed[-1] = -1

    assert fingerprint(Plain(base)) == fingerprint(Plain(base.copy()))
    assert fingerprint(Plain(base)) != fingerprint(Plain(changed))


def test_a_memoryview_differs_from_bytes_with_the_same_content() -> None:
    assert fingerprint(memoryview(b"abc")) == fingerprint(memoryview(b"abc"))
    assert fingerprint(memoryview(b"abc")) != fingerprint(b"abc")


# -- fingerprints across processes ------------------------------------------------------------

CHILD_SCRIPT = """
import json
from pydantic import SecretStr
from flowyml.core.fingerprint import fingerprint
print(json.dumps({
    "containers": fingerprint({"b": {"x", "y", "z"}, "a": frozenset({"p", "q"}), "c": ("t", 1.5)}),
    "secret": fingerprint(SecretStr("1234")),
    "keyed_secret": fingerprint(SecretStr("1234"), secret_key=b"k" * 32),
    "redacted_secret": fingerprint(SecretStr("1234"), redact_secrets=True),
}))
"""


@pytest.fixture(scope="module")
def child_fingerprints() -> list[dict[str, str]]:
    """Fingerprints from two fresh interpreters with different string hash seeds."""
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout))
    return results


def test_equal_content_agrees_across_processes_with_different_hash_seeds(
    child_fingerprints: list[dict[str, str]],
) -> None:
    one, two = child_fingerprints

    assert one["containers"] == two["containers"]


def test_a_keyed_secret_agrees_across_processes(child_fingerprints: list[dict[str, str]]) -> None:
    one, two = child_fingerprints

    assert (
        one["keyed_secret"] == two["keyed_secret"] == fingerprint(SecretStr("1234"), secret_key=KEY)
    )


def test_without_a_key_each_process_fingerprints_a_secret_differently(
    child_fingerprints: list[dict[str, str]],
) -> None:
    one, two = child_fingerprints

    assert len({one["secret"], two["secret"], fingerprint(SecretStr("1234"))}) == 3


def test_a_redacted_secret_agrees_across_processes(
    child_fingerprints: list[dict[str, str]],
) -> None:
    one, two = child_fingerprints

    assert (
        one["redacted_secret"]
        == two["redacted_secret"]
        == fingerprint(SecretStr("1234"), redact_secrets=True)
    )


# -- secrets ----------------------------------------------------------------------------------


def test_a_secret_is_not_fed_in_clear() -> None:
    secret = fingerprint(SecretStr("1234"), secret_key=KEY)

    assert secret != fingerprint("1234")
    assert secret != fingerprint("1234", secret_key=KEY)


def test_the_same_key_gives_a_stable_secret_fingerprint() -> None:
    assert fingerprint(SecretStr("1234"), secret_key=KEY) == fingerprint(
        SecretStr("1234"), secret_key=KEY
    )


def test_without_a_key_a_secret_is_stable_within_the_process() -> None:
    assert fingerprint(SecretStr("1234")) == fingerprint(SecretStr("1234"))


def test_different_keys_give_different_secret_fingerprints() -> None:
    assert fingerprint(SecretStr("1234"), secret_key=KEY) != fingerprint(
        SecretStr("1234"), secret_key=OTHER_KEY
    )


def test_a_changed_secret_changes_the_fingerprint() -> None:
    assert fingerprint(SecretStr("1234"), secret_key=KEY) != fingerprint(
        SecretStr("1235"), secret_key=KEY
    )


def test_brute_forcing_a_pin_without_the_key_finds_nothing() -> None:
    target = fingerprint({"pin": SecretStr("4821")}, secret_key=KEY)
    pins = [f"{n:04d}" for n in range(10_000)]
    guesses = set()
    for pin in pins:
        guesses.add(fingerprint({"pin": pin}))
        guesses.add(fingerprint({"pin": SecretStr(pin)}, secret_key=OTHER_KEY))
        guesses.add(fingerprint({"pin": SecretStr(pin)}))  # this process's own random key

    assert target not in guesses


def test_secret_bytes_and_generic_secrets_are_keyed_too() -> None:
    cases: list[tuple[object, object]] = [(SecretBytes(b"1234"), b"1234")]
    if hasattr(pydantic, "Secret"):  # pydantic >= 2.7
        cases.append((pydantic.Secret[int](1234), 1234))
    for secret, clear in cases:
        keyed = fingerprint(secret, secret_key=KEY)
        assert keyed == fingerprint(copy.deepcopy(secret), secret_key=KEY)
        assert keyed != fingerprint(clear)
        assert keyed != fingerprint(secret, secret_key=OTHER_KEY)


def test_a_secret_inside_an_arbitrary_object_is_keyed_too() -> None:
    keyed = fingerprint(Plain(SecretStr("1234")), secret_key=KEY)

    assert keyed == fingerprint(Plain(SecretStr("1234")), secret_key=KEY)
    assert keyed != fingerprint(Plain(SecretStr("1234")), secret_key=OTHER_KEY)
    assert keyed != fingerprint(Plain(SecretStr("1235")), secret_key=KEY)


def test_a_redacted_secret_is_its_type_alone() -> None:
    redacted = fingerprint({"pin": SecretStr("4821")}, redact_secrets=True)

    assert redacted == fingerprint({"pin": SecretStr("0000")}, redact_secrets=True)
    assert redacted != fingerprint({"pin": SecretBytes(b"4821")}, redact_secrets=True)
    assert redacted not in {fingerprint({"pin": "4821"}), fingerprint({"pin": "redacted"})}


def test_an_empty_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        fingerprint(SecretStr("1234"), secret_key=b"")


# -- pydantic models and dataclasses ----------------------------------------------------------


class Config(BaseModel):
    model_config = ConfigDict(extra="allow")

    rate: float
    layers: list[int]
    token: SecretStr | None = None


class SameFields(BaseModel):
    model_config = ConfigDict(extra="allow")

    rate: float
    layers: list[int]
    token: SecretStr | None = None


class WithPrivate(BaseModel):
    rate: float
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)


def test_a_model_agrees_with_its_copies() -> None:
    assert_equal_copies_agree(Config(rate=0.1, layers=[1, 2], extra_field="x"))


def test_a_changed_model_field_changes_the_fingerprint() -> None:
    assert fingerprint(Config(rate=0.1, layers=[1, 2])) != fingerprint(
        Config(rate=0.1, layers=[1, 3])
    )


def test_a_different_extra_field_changes_the_fingerprint() -> None:
    assert fingerprint(Config(rate=0.1, layers=[1], note="a")) != fingerprint(
        Config(rate=0.1, layers=[1], note="b")
    )
    assert fingerprint(Config(rate=0.1, layers=[1], note="a")) != fingerprint(
        Config(rate=0.1, layers=[1], other="a")
    )


def test_models_of_different_classes_with_equal_fields_differ() -> None:
    assert fingerprint(Config(rate=0.1, layers=[1])) != fingerprint(
        SameFields(rate=0.1, layers=[1])
    )


def test_a_private_attribute_of_a_model_counts() -> None:
    one, two = WithPrivate(rate=1.0), WithPrivate(rate=1.0)
    two._cache["k"] = 1

    assert fingerprint(one) != fingerprint(two)


def test_a_secret_field_of_a_model_is_keyed() -> None:
    model = Config(rate=0.1, layers=[1], token=SecretStr("1234"))

    assert fingerprint(model, secret_key=KEY) != fingerprint(model, secret_key=OTHER_KEY)
    assert fingerprint(model, secret_key=KEY) != fingerprint(
        Config(rate=0.1, layers=[1], token=SecretStr("1235")), secret_key=KEY
    )


@dataclasses.dataclass
class Point:
    x: int
    y: list[int]


@dataclasses.dataclass
class Vector:
    x: int
    y: list[int]


def test_a_dataclass_agrees_with_its_copies() -> None:
    assert_equal_copies_agree(Point(1, [2, 3]))


def test_a_changed_dataclass_field_or_class_changes_the_fingerprint() -> None:
    assert fingerprint(Point(1, [2, 3])) != fingerprint(Point(1, [2, 4]))
    assert fingerprint(Point(1, [2, 3])) != fingerprint(Vector(1, [2, 3]))


# -- numpy ------------------------------------------------------------------------------------

NUMPY_ARRAYS: dict[str, Callable[[], np.ndarray]] = {
    "bool": lambda: np.array([True, False, True]),
    "int8": lambda: np.array([1, -2, 3], dtype=np.int8),
    "float16": lambda: np.array([1.5, 2.5, -0.0], dtype=np.float16),
    "float64": lambda: np.array([1.5, np.nan, -0.0]),
    "complex": lambda: np.array([1 + 2j, 3 - 4j, 0j]),
    "unicode": lambda: np.array(["a", "bc", "def"]),
    "bytes": lambda: np.array([b"a", b"bc", b"def"]),
    "datetime64[ns]": lambda: np.array(
        ["2024-01-01T00:00:00.000000001", "NaT", "2024-03-01"], "M8[ns]"
    ),
    "datetime64[D]": lambda: np.array(["2024-01-01", "2024-02-01", "2024-03-01"], "M8[D]"),
    "timedelta64[s]": lambda: np.array([1, 2, 3], "m8[s]"),
    "structured": lambda: np.array([(1, 2.0), (3, 4.0), (5, 6.0)], [("a", "<i4"), ("b", "<f8")]),
    "object": lambda: np.array([{"k": 1}, [1, 2], "s"], dtype=object),
    "StringDType": lambda: np.array(["a", "bc", "def"], dtype=np.dtypes.StringDType()),
    "2d": lambda: np.arange(12, dtype=np.float64).reshape(3, 4),
}


def change_first_element(array: np.ndarray) -> np.ndarray:
    changed = array.copy()
    flat = changed.reshape(-1)
    replacement = {
        "b": False,
        "i": 7,
        "f": 9.5,
        "c": 9j,
        "U": "z",
        "S": b"z",
        "M": np.datetime64("2000-01-01", "D"),
        "m": np.timedelta64(9, "s"),
        "V": (9, 9.0),
        "O": {"k": 2},
        "T": "z",
    }[array.dtype.kind]
    flat[0] = replacement
    return changed


@pytest.mark.parametrize("name", NUMPY_ARRAYS)
def test_a_numpy_array_agrees_with_its_copies(name: str) -> None:
    assert_equal_copies_agree(NUMPY_ARRAYS[name]())


@pytest.mark.parametrize("name", NUMPY_ARRAYS)
def test_one_changed_numpy_element_changes_the_fingerprint(name: str) -> None:
    array = NUMPY_ARRAYS[name]()

    assert fingerprint(array) != fingerprint(change_first_element(array))


def test_the_datetime_unit_counts() -> None:
    values = np.array([1, 2, 3], dtype=np.int64)

    assert fingerprint(values.view("M8[ns]")) != fingerprint(values.view("M8[us]"))
    assert fingerprint(values.view("M8[s]")) != fingerprint(values.view("m8[s]"))


def test_structured_dtypes_with_swapped_field_names_differ() -> None:
    one = np.zeros(2, dtype=[("a", "<i8"), ("b", "<f8")])
    two = np.zeros(2, dtype=[("b", "<i8"), ("a", "<f8")])

    assert one.dtype.str == two.dtype.str  # both '|V16': the bug this guards against
    assert fingerprint(one) != fingerprint(two)


def test_structured_field_types_and_offsets_count() -> None:
    base = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [0, 4]})
    moved = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [4, 0]})
    retyped = np.dtype({"names": ["a", "b"], "formats": ["<f4", "<i4"], "offsets": [0, 4]})
    raw = np.arange(4, dtype=np.uint8).repeat(4)

    digests = {fingerprint(raw.view(dtype)) for dtype in (base, moved, retyped)}

    assert len(digests) == 3


def test_the_shape_counts_for_equal_bytes() -> None:
    flat = np.arange(6)

    assert fingerprint(flat) != fingerprint(flat.reshape(2, 3))
    assert fingerprint(flat.reshape(2, 3)) != fingerprint(flat.reshape(3, 2))


def test_zero_size_and_zero_dimensional_arrays_are_told_apart() -> None:
    values = [
        np.zeros((0, 3)),
        np.zeros((3, 0)),
        np.zeros(0),
        np.array(5.0),
        np.array([5.0]),
        np.float64(5.0),
        5.0,
    ]

    assert len({fingerprint(v) for v in values}) == len(values)


def test_numpy_scalars_count_their_dtype() -> None:
    assert fingerprint(np.int32(1)) != fingerprint(np.int64(1))
    assert fingerprint(np.datetime64(1, "s")) != fingerprint(np.datetime64(1, "ms"))
    assert fingerprint(np.float64(1.5)) == fingerprint(pickle.loads(pickle.dumps(np.float64(1.5))))


@pytest.mark.parametrize(
    "view",
    [
        lambda a: np.asfortranarray(a),
        lambda a: a.T.copy().T,
        lambda a: a[:, ::2],
        lambda a: a[::-1],
        lambda a: a[1:, 1:],
    ],
    ids=["fortran", "transposed-copy", "strided", "reversed", "offset"],
)
def test_a_view_agrees_with_its_contiguous_copy(view: Callable[[np.ndarray], np.ndarray]) -> None:
    array = view(np.random.default_rng(0).random((300, 40)))

    assert fingerprint(array) == fingerprint(np.ascontiguousarray(array))


def test_a_view_with_rows_larger_than_a_slab_agrees_with_its_copy() -> None:
    array = np.asfortranarray(np.random.default_rng(0).random((3, 700_000)))  # 5.6 MB rows

    assert fingerprint(array) == fingerprint(np.ascontiguousarray(array))


def test_a_contiguous_array_is_hashed_from_its_buffer_without_a_copy() -> None:
    array = np.random.default_rng(0).random(2_500_000)  # 20 MB
    tracemalloc.start()
    fingerprint(array)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert peak < 1_000_000


def test_a_strided_view_is_hashed_in_slabs_not_copied_whole() -> None:
    view = np.random.default_rng(0).random(10_000_000)[::2]  # a copy would be 40 MB
    tracemalloc.start()
    fingerprint(view)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert peak < 10_000_000


def test_object_arrays_compare_their_elements_by_content() -> None:
    one = np.array([[1, 2], "x"], dtype=object)
    two = np.array([[1, 2], "x"], dtype=object)
    two[0] = [1, 2]

    assert fingerprint(one) == fingerprint(two)
    assert fingerprint(one) != fingerprint(np.array([[1, 3], "x"], dtype=object))


def test_a_masked_array_agrees_with_its_copies() -> None:
    assert_equal_copies_agree(np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False]))


def test_a_masked_array_with_a_different_mask_differs() -> None:
    one = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    two = np.ma.array([1.0, 2.0, 3.0], mask=[False, False, True])

    assert fingerprint(one) != fingerprint(two)


def test_a_masked_array_differs_from_its_plain_data() -> None:
    data = np.array([1.0, 2.0, 3.0])

    assert fingerprint(np.ma.array(data)) != fingerprint(data)


def test_the_fill_value_of_a_masked_array_counts() -> None:
    one = np.ma.array([1.0, 2.0], mask=[False, True], fill_value=0.0)
    two = np.ma.array([1.0, 2.0], mask=[False, True], fill_value=-1.0)

    assert fingerprint(one) != fingerprint(two)


# -- pandas -----------------------------------------------------------------------------------


def frame() -> pd.DataFrame:
    """A frame with a column of every kind of array pandas has."""
    columns: dict[str, Any] = {
        "float": [1.5, 2.5, np.nan],
        "int": [1, 2, 3],
        "naive": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        "aware": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
        "delta": pd.to_timedelta([1, 2, 3], unit="s"),
        "category": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]),
        "Int64": pd.array([1, None, 3], dtype="Int64"),
        "boolean": pd.array([True, None, False], dtype="boolean"),
        "string": pd.array(["x", None, "z"], dtype="string[python]"),
        "object": [{"k": 1}, [1], "s"],
        "period": pd.period_range("2024-01", periods=3, freq="M"),
        "interval": pd.arrays.IntervalArray.from_breaks([0, 1, 2, 3]),
        "sparse": pd.arrays.SparseArray([0.0, 0.0, 1.0]),
    }
    if HAS_PYARROW:
        columns["int64[pyarrow]"] = pd.array([1, None, 3], dtype="int64[pyarrow]")
        columns["string[pyarrow]"] = pd.array(["x", None, "z"], dtype="string[pyarrow]")
    return pd.DataFrame(columns, index=pd.Index([10, 20, 30], name="id"))


def test_a_dataframe_of_every_dtype_agrees_with_its_copies() -> None:
    data = frame()

    assert_equal_copies_agree(data)
    assert fingerprint(data) == fingerprint(data.copy())


def test_a_series_agrees_with_its_copies() -> None:
    assert_equal_copies_agree(pd.Series([1.0, 2.0], index=["a", "b"], name="s"))


def with_attrs(data: pd.DataFrame, **attrs: Any) -> pd.DataFrame:
    changed = data.copy()
    changed.attrs.update(attrs)
    return changed


PANDAS_CHANGES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "float value": lambda df: df.assign(float=[9.5, 2.5, np.nan]),
    "float dtype": lambda df: df.assign(float=df["float"].astype("float32")),
    "timestamp": lambda df: df.assign(naive=pd.to_datetime(["2024-01-01", "2024-01-03", None])),
    "aware timestamp": lambda df: df.assign(
        aware=pd.date_range("2024-01-02", periods=3, tz="Europe/Paris")
    ),
    "time zone": lambda df: df.assign(aware=df["aware"].dt.tz_convert("UTC")),
    "category value": lambda df: df.assign(
        category=pd.Categorical(["a", "b", "b"], categories=["a", "b", "c"])
    ),
    "category order": lambda df: df.assign(
        category=pd.Categorical(["a", "b", "a"], categories=["b", "a", "c"])
    ),
    "category ordered": lambda df: df.assign(
        category=pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"], ordered=True)
    ),
    "Int64 NA position": lambda df: df.assign(Int64=pd.array([1, 2, None], dtype="Int64")),
    "boolean value": lambda df: df.assign(boolean=pd.array([False, None, False], dtype="boolean")),
    "string NA": lambda df: df.assign(string=pd.array(["x", "", "z"], dtype="string[python]")),
    "object element": lambda df: df.assign(object=[{"k": 2}, [1], "s"]),
    "period": lambda df: df.assign(period=pd.period_range("2024-02", periods=3, freq="M")),
    "interval closed side": lambda df: df.assign(
        interval=pd.arrays.IntervalArray.from_breaks([0, 1, 2, 3], closed="left")
    ),
    "sparse value": lambda df: df.assign(sparse=pd.arrays.SparseArray([0.0, 2.0, 1.0])),
    "column order": lambda df: df[[df.columns[1], df.columns[0], *df.columns[2:]]],
    "column name": lambda df: df.rename(columns={"int": "integer"}),
    "index value": lambda df: df.rename(index={30: 31}),
    "index name": lambda df: df.rename_axis("key"),
    "attrs": lambda df: with_attrs(df, source="v2"),
}


@pytest.mark.parametrize("change", PANDAS_CHANGES)
def test_one_changed_part_of_a_dataframe_changes_the_fingerprint(change: str) -> None:
    assert fingerprint(PANDAS_CHANGES[change](frame())) != fingerprint(frame())


@needs_pyarrow
@pytest.mark.parametrize(
    ("column", "values"),
    [("int64[pyarrow]", [1, 2, 3]), ("string[pyarrow]", ["x", "y", "z"])],
)
def test_one_changed_arrow_backed_value_changes_the_fingerprint(
    column: str, values: list[Any]
) -> None:
    changed = frame()
    changed[column] = pd.array(values, dtype=column)

    assert fingerprint(changed) != fingerprint(frame())


def test_a_series_name_counts() -> None:
    assert fingerprint(pd.Series([1, 2], name="a")) != fingerprint(pd.Series([1, 2], name="b"))


def test_a_multiindex_counts_levels_codes_and_names() -> None:
    base = pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["x", "y"])
    variants = [
        pd.MultiIndex.from_tuples([(1, "a"), (2, "c")], names=["x", "y"]),
        pd.MultiIndex.from_tuples([(2, "b"), (1, "a")], names=["x", "y"]),
        pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["x", "z"]),
    ]

    assert fingerprint(base) == fingerprint(pickle.loads(pickle.dumps(base)))
    for variant in variants:
        assert fingerprint(variant) != fingerprint(base)


def test_an_index_frequency_counts() -> None:
    values = ["2024-01-01", "2024-01-02"]

    assert fingerprint(pd.DatetimeIndex(values, freq="D")) != fingerprint(pd.DatetimeIndex(values))


@pytest.mark.timeout(10)
def test_a_huge_range_index_is_not_materialized() -> None:
    assert fingerprint(pd.RangeIndex(10**12)) != fingerprint(pd.RangeIndex(10**12 + 1))


def test_a_categorical_is_hashed_from_codes_not_as_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    column = pd.Series(pd.Categorical(["a", "b"] * 1000))
    digest = fingerprint(column)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("converted to objects")

    monkeypatch.setattr(pd.Categorical, "to_numpy", refuse)
    monkeypatch.setattr(pd.Categorical, "__array__", refuse)

    assert fingerprint(column) == digest


def test_values_under_a_nullable_mask_do_not_count() -> None:
    mask = np.array([False, True])
    one = pd.arrays.IntegerArray(np.array([1, 5]), mask)
    two = pd.arrays.IntegerArray(np.array([1, 7]), mask.copy())

    assert fingerprint(one) == fingerprint(two)


@needs_pyarrow
def test_the_chunking_of_an_arrow_backed_column_does_not_count() -> None:
    whole = pd.Series(["a", "b", "c", None], dtype="string[pyarrow]")
    pieces = pd.concat([whole.iloc[:2], whole.iloc[2:]], ignore_index=True)

    assert pieces.array.__arrow_array__().num_chunks == 2
    assert fingerprint(whole) == fingerprint(pieces)


# -- scipy.sparse -----------------------------------------------------------------------------

SPARSE_FORMATS = ["csr", "csc", "coo", "bsr", "dia", "dok", "lil"]


def sparse_matrix(fmt: str) -> Any:
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0], [4.0, 0.0, 0.0, 5.0]])
    return sparse.csr_matrix(dense).asformat(fmt)


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_a_sparse_matrix_agrees_with_its_copies(fmt: str) -> None:
    assert_equal_copies_agree(sparse_matrix(fmt))


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_one_changed_sparse_value_changes_the_fingerprint(fmt: str) -> None:
    matrix = sparse_matrix(fmt)
    changed = (sparse_matrix("csr") * 2).asformat(fmt)

    assert fingerprint(matrix) != fingerprint(changed)


def test_the_sparse_format_and_class_count() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse_matrix("csr")

    assert fingerprint(matrix) != fingerprint(matrix.tocsc())
    assert fingerprint(matrix) != fingerprint(sparse.csr_array(matrix))


def test_a_dok_matrix_does_not_depend_on_insertion_order() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    one, two = sparse.dok_matrix((3, 3)), sparse.dok_matrix((3, 3))
    one[0, 1], one[2, 2] = 1.0, 2.0
    two[2, 2], two[0, 1] = 2.0, 1.0

    assert fingerprint(one) == fingerprint(two)


# -- pyarrow ----------------------------------------------------------------------------------


def arrow_table() -> Any:
    pa = pytest.importorskip("pyarrow")
    return pa.table(
        {
            "int": pa.array([1, None, 3, 4]),
            "float": pa.array([1.5, 2.5, None, 4.5]),
            "bool": pa.array([True, None, False, True]),
            "text": pa.array(["a", None, "ccc", ""]),
            "stamp": pa.array([1, 2, None, 4], pa.timestamp("ns", tz="UTC")),
            "dict": pa.array(["x", "y", "x", None]).dictionary_encode(),
            "list": pa.array([[1, 2], None, [], [3]]),
            "struct": pa.array([{"p": 1, "q": "a"}, None, {"p": 3, "q": None}, {"p": 4, "q": "d"}]),
            "map": pa.array([[("k", 1)], None, [], [("m", 2)]], pa.map_(pa.string(), pa.int64())),
        }
    )


def test_an_arrow_table_agrees_with_its_copies() -> None:
    assert_equal_copies_agree(arrow_table())


def test_the_chunking_of_an_arrow_table_does_not_count() -> None:
    pa = pytest.importorskip("pyarrow")
    table = arrow_table()
    rechunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])

    assert rechunked.column("text").num_chunks == 3
    assert fingerprint(rechunked) == fingerprint(table)


ARROW_CHANGES: dict[str, tuple[str, list[Any]]] = {
    "int": ("int", [1, None, 3, 5]),
    "int null position": ("int", [1, 2, None, 4]),
    "bool": ("bool", [True, None, True, True]),
    "text": ("text", ["a", None, "cc", "c"]),
    "text null vs empty": ("text", ["a", "", "ccc", ""]),
    "stamp": ("stamp", [1, 2, None, 5]),
    "list": ("list", [[1], [2], [], [3]]),
    "struct": ("struct", [{"p": 1, "q": "a"}, None, {"p": 3, "q": "c"}, {"p": 4, "q": "d"}]),
    "map": ("map", [[("k", 1)], None, [], [("m", 3)]]),
}


@pytest.mark.parametrize("change", ARROW_CHANGES)
def test_one_changed_arrow_value_changes_the_fingerprint(change: str) -> None:
    pa = pytest.importorskip("pyarrow")
    table = arrow_table()
    name, values = ARROW_CHANGES[change]
    position = table.schema.get_field_index(name)
    column = pa.array(values, table.schema.field(name).type)

    assert fingerprint(table.set_column(position, name, column)) != fingerprint(table)


def test_an_arrow_field_name_or_type_counts() -> None:
    pa = pytest.importorskip("pyarrow")
    base = pa.table({"a": pa.array([1, 2], pa.int64())})

    assert fingerprint(base) != fingerprint(pa.table({"b": pa.array([1, 2], pa.int64())}))
    assert fingerprint(base) != fingerprint(pa.table({"a": pa.array([1, 2], pa.int32())}))


def test_values_under_an_arrow_null_do_not_count() -> None:
    pa = pytest.importorskip("pyarrow")
    validity = pa.py_buffer(bytes([0b01]))
    one = pa.Array.from_buffers(pa.int64(), 2, [validity, pa.py_buffer(np.array([1, 5]).tobytes())])
    two = pa.Array.from_buffers(pa.int64(), 2, [validity, pa.py_buffer(np.array([1, 7]).tobytes())])

    assert fingerprint(one) == fingerprint(two)


def test_a_sliced_arrow_array_agrees_with_a_fresh_one() -> None:
    pa = pytest.importorskip("pyarrow")

    assert fingerprint(pa.array(["x", "yy", "zzz"]).slice(1)) == fingerprint(
        pa.array(["yy", "zzz"])
    )


# -- polars -----------------------------------------------------------------------------------


def polars_frame() -> Any:
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    return pl.DataFrame(
        {
            "int": [1, 2, None],
            "text": ["a", None, "c"],
            "when": pl.Series([1, 2, 3]).cast(pl.Datetime("us", "UTC")),
            "cat": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
        }
    )


def test_a_polars_frame_agrees_with_its_copies() -> None:
    data = polars_frame()

    assert_equal_copies_agree(data)
    assert fingerprint(data) == fingerprint(data.clone())


def test_one_changed_polars_value_or_name_changes_the_fingerprint() -> None:
    pl = pytest.importorskip("polars")
    data = polars_frame()

    assert fingerprint(data) != fingerprint(data.with_columns(pl.Series("int", [1, 2, 4])))
    assert fingerprint(data) != fingerprint(data.rename({"int": "number"}))


def test_a_polars_enum_differs_from_a_categorical_with_equal_values() -> None:
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    categorical = pl.Series("c", ["u", "v"], dtype=pl.Categorical)
    enumerated = pl.Series("c", ["u", "v"], dtype=pl.Enum(["u", "v"]))

    assert fingerprint(categorical) != fingerprint(enumerated)


# -- torch ------------------------------------------------------------------------------------


def test_a_torch_tensor_agrees_with_its_copies_and_counts_its_values() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)

    assert_equal_copies_agree(tensor)
    assert fingerprint(tensor) == fingerprint(tensor.T.contiguous().T)
    assert fingerprint(tensor) != fingerprint(tensor + 1)
    assert fingerprint(tensor) != fingerprint(tensor.to(torch.float64))


def test_a_tensor_off_the_cpu_is_refused() -> None:
    torch = pytest.importorskip("torch")

    with pytest.raises(UnfingerprintableError, match="CPU"):
        fingerprint(torch.empty(3, device="meta"))


# -- bookkeeping ------------------------------------------------------------------------------


def test_fingerprinting_imports_no_optional_library() -> None:
    # The module is loaded from its file so that only its own imports are measured, not those
    # of the flowyml package around it.
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('fp', 'flowyml/core/fingerprint.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "module.fingerprint({'a': [1, 2.0, 'x', None, b'y', {3}, (4,)]})\n"
        "heavy = {'numpy', 'pandas', 'pyarrow', 'polars', 'torch', 'scipy', 'dagster'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "[]"
