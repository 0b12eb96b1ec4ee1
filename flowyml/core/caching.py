"""Content fingerprints of code and values, and the on-disk cache of step outputs.

A fingerprint is a SHA-256 over the *content* of a value: the real bytes of numpy arrays and
pandas columns, every element of containers, the fields of dataclasses and pydantic models. Two
values that differ anywhere get different fingerprints; dict and set order does not matter.

The cache stores pickles. Pickles run code when loaded, so the store only ever loads files from
the user's own cache directory (created 0700) and checks a SHA-256 of the payload before
unpickling: an entry that was truncated, corrupted or tampered with is a miss, never loaded.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import logging
import marshal
import os
import pickle
import sys
import tempfile
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from flowyml.core.errors import StepOutputError

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "FLOWYML_CACHE_DIR"

# Entry layout: magic, SHA-256 of the payload, payload (a pickle). The magic carries a format
# version so a future layout is a miss, not a crash.
_MAGIC = b"FLOWYML-CACHE-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


class UnfingerprintableError(TypeError):
    """A value has no stable content fingerprint (it cannot be pickled either)."""


def fingerprint(value: Any) -> str:
    """Hex SHA-256 of ``value``'s content."""
    hasher = hashlib.sha256()
    _feed(hasher, value)
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any) -> None:
    update = hasher.update
    numpy = sys.modules.get("numpy")
    pandas = sys.modules.get("pandas")
    if value is None:
        update(b"N;")
    elif isinstance(value, bool):
        update(b"T;" if value else b"F;")
    elif isinstance(value, int):
        update(b"i%d;" % value)
    elif isinstance(value, float):
        update(b"f" + value.hex().encode() + b";")
    elif isinstance(value, str):
        _feed_bytes(hasher, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes | bytearray | memoryview):
        _feed_bytes(hasher, b"y", memoryview(value).cast("B"))
    elif isinstance(value, SecretStr | SecretBytes):
        # Hashed like the plain value so a changed secret invalidates, never stored in clear.
        _feed(hasher, value.get_secret_value())
    elif numpy is not None and isinstance(value, numpy.ndarray):
        _feed_array(hasher, numpy, value)
    elif numpy is not None and isinstance(value, numpy.generic):
        update(b"g" + value.dtype.str.encode() + b";")
        _feed_bytes(hasher, b"", value.tobytes())
    elif pandas is not None and isinstance(value, pandas.DataFrame):
        update(b"D%d;" % value.shape[1])
        _feed_series(hasher, numpy, value.index.to_series())
        for name in value.columns:
            _feed(hasher, name)
        for position in range(value.shape[1]):
            _feed_series(hasher, numpy, value.iloc[:, position])
    elif pandas is not None and isinstance(value, pandas.Series):
        update(b"S;")
        _feed(hasher, value.name)
        _feed_series(hasher, numpy, value.index.to_series())
        _feed_series(hasher, numpy, value)
    elif isinstance(value, Mapping):
        update(b"d%d;" % len(value))
        for key_digest, item in sorted((fingerprint(k), v) for k, v in value.items()):
            update(key_digest.encode())
            _feed(hasher, item)
    elif isinstance(value, list | tuple):
        update(b"%s%d;" % (type(value).__name__.encode(), len(value)))
        for item in value:
            _feed(hasher, item)
    elif isinstance(value, set | frozenset):
        update(b"e%d;" % len(value))
        for digest in sorted(fingerprint(item) for item in value):
            update(digest.encode())
    elif isinstance(value, BaseModel):
        _feed_type(hasher, value)
        _feed(hasher, {name: getattr(value, name) for name in type(value).model_fields})
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _feed_type(hasher, value)
        _feed(hasher, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    else:
        _feed_type(hasher, value)
        try:
            payload = pickle.dumps(value, protocol=5)
        except Exception as exc:
            raise UnfingerprintableError(
                f"cannot fingerprint a {type(value).__qualname__}: it cannot be pickled ({exc})"
            ) from exc
        _feed_bytes(hasher, b"p", payload)


def _feed_bytes(hasher: Any, tag: bytes, data: bytes | memoryview) -> None:
    hasher.update(b"%s%d:" % (tag, len(data)))
    hasher.update(data)


def _feed_type(hasher: Any, value: Any) -> None:
    kind = type(value)
    hasher.update(f"o{kind.__module__}.{kind.__qualname__};".encode())


def _feed_array(hasher: Any, numpy: Any, array: Any) -> None:
    hasher.update(b"A" + array.dtype.str.encode() + repr(array.shape).encode() + b";")
    if array.dtype.hasobject:
        _feed(hasher, array.tolist())
    else:
        _feed_bytes(hasher, b"", memoryview(numpy.ascontiguousarray(array)).cast("B"))


def _feed_series(hasher: Any, numpy: Any, series: Any) -> None:
    """A column by its dtype and values: raw bytes, or every element of an object column (its
    ``str()`` would let two different lists, arrays or objects hash alike)."""
    hasher.update(str(series.dtype).encode() + b";")
    _feed_array(hasher, numpy, numpy.asarray(series.to_numpy()))


def code_fingerprint(func: Callable[..., Any]) -> str:
    """Hex SHA-256 of what a function does: its syntax tree without decorators.

    Comments, blank lines and decorator arguments (``retry``, ``tags`` ...) do not change it; the
    body, signature, defaults and docstring do. Functions without source (built in a REPL, lambdas
    from ``exec``) fall back to their compiled code.
    """
    target = inspect.unwrap(func)
    try:
        source = textwrap.dedent(inspect.getsource(target))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return _bytecode_fingerprint(target)
    node = tree.body[0] if tree.body else tree
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        node.decorator_list = []
    return hashlib.sha256(ast.dump(node, include_attributes=False).encode()).hexdigest()


def _bytecode_fingerprint(func: Any) -> str:
    code = getattr(func, "__code__", None)
    if code is None:
        return hashlib.sha256(repr(func).encode()).hexdigest()
    hasher = hashlib.sha256()
    _feed_code(hasher, code)
    hasher.update(repr(getattr(func, "__defaults__", None)).encode())
    return hasher.hexdigest()


def _feed_code(hasher: Any, code: types.CodeType) -> None:
    hasher.update(code.co_code)
    hasher.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(hasher, const)
        else:
            hasher.update(marshal.dumps(const) if _marshallable(const) else repr(const).encode())


def _marshallable(value: Any) -> bool:
    try:
        marshal.dumps(value)
    except ValueError:
        return False
    return True


def pickle_outputs(step: str, outputs: Mapping[str, Any]) -> bytes:
    """Pickle a step's outputs; a value that cannot be pickled is named in the error."""
    try:
        return pickle.dumps(dict(outputs), protocol=5)
    except Exception as whole_error:
        for name, value in outputs.items():
            try:
                pickle.dumps(value, protocol=5)
            except Exception as exc:
                raise StepOutputError(
                    step, f"output '{name}' ({type(value).__qualname__}) cannot be pickled: {exc}"
                ) from exc
        raise StepOutputError(step, f"outputs cannot be pickled: {whole_error}") from whole_error


def default_cache_dir() -> Path:
    """``$FLOWYML_CACHE_DIR``, else the user's cache directory (``$XDG_CACHE_HOME/flowyml``)."""
    if override := os.environ.get(CACHE_DIR_ENV):
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flowyml"


class CacheStore:
    """Step outputs on disk, one file per cache key, written atomically.

    Never raises on a bad entry or an unusable directory: those are misses with a warning, so a
    cache problem can cost time but never a run.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.writable = self._prepare()

    def _prepare(self) -> bool:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            logger.warning("flowyml cache disabled: %s is not writable (%s)", self.root, exc)
            return False
        return True

    def path_for(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.pkl"

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, outputs)`` on a hit, ``(False, None)`` on a miss or an unusable entry."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False, None
        except OSError as exc:
            logger.warning("flowyml cache: cannot read %s (%s); treated as a miss", path, exc)
            return False, None
        header = len(_MAGIC) + _DIGEST_SIZE
        payload = data[header:]
        if (
            len(data) < header
            or not data.startswith(_MAGIC)
            or hashlib.sha256(payload).digest() != data[len(_MAGIC) : header]
        ):
            logger.warning("flowyml cache: entry %s is corrupt; treated as a miss", path)
            return False, None
        try:
            return True, pickle.loads(payload)
        except Exception as exc:
            logger.warning("flowyml cache: cannot load %s (%s); treated as a miss", path, exc)
            return False, None

    def put(self, key: str, payload: bytes) -> bool:
        """Store pickled outputs under ``key``; ``False`` (with a warning) if it cannot."""
        if not self.writable:
            return False
        path = self.path_for(key)
        tmp_name: str | None = None
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
                tmp_name = tmp.name
                tmp.write(_MAGIC)
                tmp.write(hashlib.sha256(payload).digest())
                tmp.write(payload)
            os.replace(tmp_name, path)
        except OSError as exc:
            logger.warning("flowyml cache: cannot write %s (%s); result not cached", path, exc)
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)
            return False
        return True
