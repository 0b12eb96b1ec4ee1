"""Content fingerprints of values: the SHA-256 that memoization cache keys are built from.

A cache key that is equal for two different values hands a step a stale result, so the encoding
fed to SHA-256 is injective: every value starts with a type tag and every variable-length part is
length-framed, so ``[1, 2]``, ``(1, 2)``, ``np.array([1, 2])`` and ``"12"`` never feed the same
bytes, and neither do two concatenations that only differ in where one part ends.

Composite values (containers, arrays, frames, models, pickled objects) are hashed on their own and
their parent is fed ``@`` and that 32-byte sub-digest. A sub-digest depends on content only, so a
shared object and an equal copy feed the same bytes (``[x, x]`` and ``[x, copy(x)]`` agree), and
memoizing sub-digests by ``id()`` within one call makes a shared object cost once: a YAML alias
bomb (each list repeating the previous one nine times, nine levels deep) is hashed in linear time.
A memoized object is kept alive until the call ends, so its ``id()`` cannot be reused by another
object. A structure that contains itself raises :class:`UnfingerprintableError`: it has no finite
content encoding, and a cycle marker would make the digest of an inner object depend on where the
walk entered the cycle.

Third-party types (numpy, pandas, scipy.sparse, pyarrow, polars, torch) are recognised only when
their library is already in ``sys.modules``: a value of such a type cannot exist otherwise, and
importing them here would slow down ``import flowyml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import math
import pickle
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["UnfingerprintableError", "fingerprint"]

# ``hasher.update``: takes bytes or any C-contiguous buffer (numpy arrays, Arrow buffers).
Update = Callable[[Any], object]
# A feeder writes a value's encoding to an update; a body writes a composite's own encoding.
Feeder = Callable[[Update, Any], None]
Body = Callable[[Update, Any], None]

# Used when the caller passes no key: random, so a secret's fingerprint is not a public function
# of the secret that anyone could test guesses against; one per process, so it is stable within
# the process (a forked child inherits it).
_PROCESS_SECRET_KEY = secrets.token_bytes(32)

# ``pydantic.Secret[T]`` exists from pydantic 2.7 on; SecretStr and SecretBytes in every 2.x.
_SECRET_TYPES: tuple[type, ...] = (
    SecretStr,
    SecretBytes,
    *((pydantic.Secret,) if hasattr(pydantic, "Secret") else ()),
)

# Strings and bytes at least this long are hashed once per object and fed as a sub-digest, so a
# long string referenced many times (YAML aliases of one scalar) is not hashed again each time.
_LARGE_SCALAR = 1024
# Containers shorter than this whose items are all scalars are not memoized: revisiting one costs
# less than remembering it, and a list of a million small tuples would otherwise double its memory.
_SMALL_CONTAINER = 16
# Bytes per copy when a non-contiguous array is hashed in C order one slab at a time.
_CHUNK_BYTES = 1 << 22


class UnfingerprintableError(TypeError):
    """A value has no stable content fingerprint; the message names its type and why."""


def fingerprint(
    value: Any, *, secret_key: bytes | None = None, redact_secrets: bool = False
) -> str:
    """Hex SHA-256 of ``value``'s content.

    Values that differ anywhere get different fingerprints; equal content gets equal
    fingerprints in any process (no ``id()``, no ``hash()``; dict and set order does not count).
    Secrets (``SecretStr``, ``SecretBytes``, ``Secret``) are fed as ``HMAC-SHA256(secret_key,
    secret)``, never in clear; without ``secret_key`` a random per-process key is used, so a
    fingerprint that contains a secret is stable within a process but differs between processes.
    With ``redact_secrets`` a secret is fed as its type alone: the fingerprint is the same in
    every process and says nothing of the secret, nor changes with it (for what is shown to
    whoever can read a run's records, such as Dagster's code version).
    """
    if secret_key is not None and not secret_key:
        raise ValueError("secret_key must not be empty: an empty HMAC key makes secrets guessable")
    hasher = hashlib.sha256()
    fingerprinter = _Fingerprinter(None if redact_secrets else secret_key or _PROCESS_SECRET_KEY)
    try:
        fingerprinter.feed(hasher.update, value)
    except RecursionError as exc:
        raise UnfingerprintableError(
            f"cannot fingerprint a {_qualname(type(value))}: it is nested too deeply"
        ) from exc
    finally:
        # The handlers refer back to the fingerprinter; without breaking that cycle, the objects
        # it keeps alive (temporary masks, slabs' owners) would wait for the garbage collector.
        fingerprinter.handlers.clear()
    return hasher.hexdigest()


def _qualname(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _frame(tag: bytes, data: bytes) -> bytes:
    """``tag``, the length, then ``data``: no framed part can run into the next one."""
    return b"%s%d:%s" % (tag, len(data), data)


def _type_tag(value: Any) -> bytes:
    return _frame(b"o", _qualname(type(value)).encode())


def _shape(shape: Iterable[int]) -> bytes:
    return b"(" + b",".join(b"%d" % size for size in shape) + b")"


def _int(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit; no 4300-digit str() limit
    return b"i%d:" % size + value.to_bytes(size, "little", signed=True)


def _float(value: float) -> bytes:
    # .hex() is exact and tells -0.0 from 0.0; every NaN is the same value here.
    return b"f" + float.hex(value).encode() + b";"


def _complex(value: complex) -> bytes:
    return b"c%s,%s;" % (float.hex(value.real).encode(), float.hex(value.imag).encode())


def _str(value: str) -> bytes:
    return _frame(b"s", str.encode(value, "utf-8", "surrogatepass"))


def _bytes(value: bytes) -> bytes:
    return _frame(b"y", bytes(value))


def _bytearray(value: bytearray) -> bytes:
    return _frame(b"Y", bytes(value))


_SCALAR_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    int: _int,
    float: _float,
    complex: _complex,
    str: _str,
    bytes: _bytes,
    bytearray: _bytearray,
}


def _dtype(dtype: Any) -> bytes:
    """A numpy dtype, unambiguously: ``dtype.str`` is ``|V16`` for every 16-byte struct, so
    structured dtypes spell out each field's name, offset, title and type."""
    if dtype.names is not None:
        parts = [b"{%d,%d;" % (dtype.itemsize, len(dtype.names))]
        for name in dtype.names:
            field = dtype.fields[name]
            title = field[2] if len(field) > 2 else None
            parts += [
                _frame(b"n", name.encode()),
                b"%d;" % field[1],
                b"-" if title is None else _frame(b"t", repr(title).encode()),
                _dtype(field[0]),
            ]
        return b"".join(parts) + b"}"
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return b"[" + _shape(shape) + _dtype(base) + b"]"
    if dtype.kind == "T":  # numpy's variable-width StringDType; its repr carries na_object
        return _frame(b"d", repr(dtype).encode())
    return _frame(b"d", dtype.str.encode())  # byte order, kind, size, datetime unit


def _arrow_metadata(metadata: Mapping[bytes, bytes] | None) -> bytes:
    items = sorted((metadata or {}).items())
    return b"%d;" % len(items) + b"".join(_frame(b"k", k) + _frame(b"v", v) for k, v in items)


def _arrow_type(pa: Any, arrow_type: Any) -> bytes:
    """An Arrow type, unambiguously: ``str()`` of a struct would let a field named ``"a: int64,
    b"`` read like two fields, so nested types spell out each child field."""
    if isinstance(arrow_type, pa.DictionaryType):
        return b"D(%s%s%s)" % (
            _arrow_type(pa, arrow_type.index_type),
            _arrow_type(pa, arrow_type.value_type),
            b"o" if arrow_type.ordered else b"u",
        )
    if isinstance(arrow_type, pa.BaseExtensionType):
        serialize = getattr(arrow_type, "__arrow_ext_serialize__", None)
        return b"E(%s%s%s%s)" % (
            _frame(b"n", arrow_type.extension_name.encode()),
            _frame(b"s", str(arrow_type).encode()),
            _frame(b"p", serialize() if serialize is not None else b""),
            _arrow_type(pa, arrow_type.storage_type),
        )
    if arrow_type.num_fields == 0:
        return _frame(b"t", str(arrow_type).encode())
    params = [getattr(arrow_type, p, None) for p in ("list_size", "keys_sorted", "mode")]
    params.append(list(getattr(arrow_type, "type_codes", [])))
    parts = [b"N(", _frame(b"k", f"{arrow_type.id}:{params!r}".encode())]
    for index in range(arrow_type.num_fields):
        field = arrow_type.field(index)
        parts += [
            _frame(b"n", field.name.encode()),
            b"1" if field.nullable else b"0",
            _arrow_type(pa, field.type),
            _arrow_metadata(field.metadata),
        ]
    return b"".join(parts) + b")"


def _is_fixed_width(pa: Any, arrow_type: Any) -> bool:
    types = pa.types
    return bool(
        types.is_integer(arrow_type)
        or types.is_floating(arrow_type)
        or types.is_temporal(arrow_type)
        or types.is_decimal(arrow_type)
        or types.is_fixed_size_binary(arrow_type)
        or types.is_interval(arrow_type)
    )


def _plain_arrow_chunk(pa: Any, chunk: Any) -> Any:
    """The chunk as plain values: dictionary-encoded chunks each carry their own dictionary and
    view types point into shared buffers, so both are decoded before hashing."""
    arrow_type = chunk.type
    if isinstance(arrow_type, pa.BaseExtensionType):
        return _plain_arrow_chunk(pa, chunk.storage)
    if pa.types.is_dictionary(arrow_type):
        return _plain_arrow_chunk(pa, chunk.dictionary_decode())
    if pa.types.is_string_view(arrow_type):
        return chunk.cast(pa.large_string())
    if pa.types.is_binary_view(arrow_type):
        return chunk.cast(pa.large_binary())
    return chunk


class _ArrowColumn:
    """One Arrow column, hashed chunk by chunk into streams that do not depend on where the
    chunk boundaries fall: equal content in any chunking gives the same digest.

    Three streams: the positions of the nulls (bitmaps are bit-packed from a per-chunk offset, so
    they cannot simply be concatenated), the lengths of variable-size values, and the values
    themselves. Values under a null are unspecified in Arrow; chunks with nulls are normalized
    (zeroed, or filled with an empty value) so that such leftovers do not count. Struct fields
    and list values are child columns with streams of their own.
    """

    def __init__(self, fingerprinter: _Fingerprinter) -> None:
        self.fingerprinter = fingerprinter
        self.length = 0
        self.nulls = hashlib.sha256()
        self.lengths = hashlib.sha256()
        self.data = hashlib.sha256()
        self.children: list[_ArrowColumn] = []

    def child(self, index: int) -> _ArrowColumn:
        while len(self.children) <= index:
            self.children.append(_ArrowColumn(self.fingerprinter))
        return self.children[index]

    def add(self, chunk: Any) -> None:
        pa = sys.modules["pyarrow"]
        # pyarrow's to_numpy needs numpy; it is imported by now wherever Arrow data comes from
        # (pandas, polars), and is only imported here, at call time, if it is not.
        import numpy

        chunk = _plain_arrow_chunk(pa, chunk)
        arrow_type = chunk.type
        count = len(chunk)
        nulls = None
        if chunk.null_count:
            nulls = chunk.is_null().to_numpy(zero_copy_only=False)
            self.nulls.update(numpy.flatnonzero(nulls).astype(numpy.int64) + self.length)
        self.length += count
        types = pa.types
        if not count or types.is_null(arrow_type):
            return
        if types.is_boolean(arrow_type):
            filled = chunk.fill_null(False) if nulls is not None else chunk
            self.data.update(filled.to_numpy(zero_copy_only=False))
        elif _is_fixed_width(pa, arrow_type):
            width = arrow_type.byte_width
            start = chunk.offset * width
            values = numpy.frombuffer(chunk.buffers()[1], numpy.uint8)
            values = values[start : start + count * width]
            if nulls is not None:
                values = values.reshape(count, width).copy()
                values[nulls] = 0
            self.data.update(values)
        elif types.is_string(arrow_type) or types.is_large_string(arrow_type):
            large = types.is_large_string(arrow_type)
            self._add_binary(numpy, chunk.fill_null("") if nulls is not None else chunk, large)
        elif types.is_binary(arrow_type) or types.is_large_binary(arrow_type):
            large = types.is_large_binary(arrow_type)
            self._add_binary(numpy, chunk.fill_null(b"") if nulls is not None else chunk, large)
        elif types.is_struct(arrow_type):
            for index, field in enumerate(chunk.flatten()):
                self.child(index).add(field)
        elif (
            types.is_list(arrow_type)
            or types.is_large_list(arrow_type)
            or types.is_fixed_size_list(arrow_type)
        ):
            lengths = chunk.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            self.lengths.update(lengths.astype(numpy.int64))
            self.child(0).add(chunk.flatten())
        else:  # maps, unions, list views, run-end encoded: rare enough to go value by value
            for item in chunk.to_pylist():
                self.fingerprinter.feed(self.data.update, item)

    def _add_binary(self, numpy: Any, chunk: Any, large: bool) -> None:
        count = len(chunk)
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = numpy.frombuffer(offsets_buffer, numpy.int64 if large else numpy.int32)
        offsets = offsets[chunk.offset : chunk.offset + count + 1]
        self.lengths.update(numpy.diff(offsets).astype(numpy.int64))
        if data_buffer is not None:
            self.data.update(memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])])

    def digest(self) -> bytes:
        parts = [b"%d;" % self.length, self.nulls.digest(), self.lengths.digest()]
        parts += [self.data.digest(), b"%d;" % len(self.children)]
        parts += [child.digest() for child in self.children]
        return hashlib.sha256(b"".join(parts)).digest()


def _is_iterator(value: Any) -> bool:
    return hasattr(value, "__next__") and hasattr(value, "__iter__")


class _SecretHidingPickler(pickle.Pickler):
    """A pickler that writes a secret met anywhere inside an object as its keyed HMAC, so a
    secret held by an arbitrary object is no more in clear in the fingerprint than one passed
    directly."""

    def __init__(
        self, stream: io.BytesIO, fingerprinter: _Fingerprinter, buffers: list[pickle.PickleBuffer]
    ) -> None:
        super().__init__(stream, protocol=5, buffer_callback=buffers.append)
        self.fingerprinter = fingerprinter

    def persistent_id(self, obj: Any) -> bytes | None:
        return self.fingerprinter.secret(obj) if isinstance(obj, _SECRET_TYPES) else None


class _Fingerprinter:
    """The state of one :func:`fingerprint` call.

    ``memo`` maps ``id()`` of a composite to its sub-digest and ``alive`` holds those objects so
    their ids stay theirs; ``active`` holds the composites being hashed, to detect cycles.
    ``heavy`` counts the parts seen so far that would be costly to hash again (composites, large
    pickles), so that a cheap-looking object knows whether it turned out worth remembering.
    """

    def __init__(self, secret_key: bytes | None) -> None:
        self.secret_key = secret_key  # None: secrets redacted
        self.memo: dict[int, bytes] = {}
        self.alive: list[Any] = []
        self.active: set[int] = set()
        self.heavy = 0
        self.handlers: dict[type, Feeder] = {}

    # -- dispatch ---------------------------------------------------------------------------

    def feed(self, update: Update, value: Any) -> None:
        """Feed ``value``'s self-delimiting encoding to ``update``."""
        kind = type(value)
        handler = self.handlers.get(kind)
        if handler is None:  # decided once per type and call: a list of a million values of
            handler = self.handlers[kind] = self._handler(kind)  # one type pays it once
        handler(update, value)

    def _handler(self, kind: type) -> Feeder:
        """How values of exactly this type are fed. Library types are looked up in
        ``sys.modules`` now, so a library imported during the call (polars importing pyarrow)
        is seen."""
        if kind is type(None):
            return lambda update, value: update(b"N")
        if kind is bool:
            return lambda update, value: update(b"T" if value else b"F")
        if kind in (str, bytes, bytearray):
            encode = _SCALAR_ENCODERS[kind]
            return lambda update, value: (
                update(encode(value))
                if len(value) < _LARGE_SCALAR
                else self.composite(update, value, self._large_scalar_body)
            )
        if kind in _SCALAR_ENCODERS:
            encode = _SCALAR_ENCODERS[kind]
            return lambda update, value: update(encode(value))
        if kind in (list, tuple, dict, set, frozenset):
            body = self._container_body(kind)
            return lambda update, value: self.composite(
                update, value, body, cheap=len(value) < _SMALL_CONTAINER
            )
        numpy = sys.modules.get("numpy")
        if numpy is not None and issubclass(kind, numpy.generic):
            return self._feed_numpy_scalar
        if issubclass(kind, _SECRET_TYPES):
            return lambda update, value: update(self.secret(value))
        if issubclass(kind, memoryview):
            return self._feed_memoryview
        scalar_base = next((b for b in _SCALAR_ENCODERS if issubclass(kind, b)), None)
        if scalar_base is not None:  # IntEnum, StrEnum, other subclasses of a scalar type
            encode = _SCALAR_ENCODERS[scalar_base]
            return lambda update, value: update(_type_tag(value) + encode(value))
        body = self._object_body(kind)
        cheap = body == self._object_state_body
        return lambda update, value: self.composite(update, value, body, cheap=cheap)

    def _container_body(self, kind: type) -> Body:
        if issubclass(kind, Mapping):
            return self._mapping_body
        if issubclass(kind, list | tuple):
            return self._sequence_body
        return self._set_body

    def _object_body(self, kind: type) -> Body:
        """The body of a composite that is not a plain container: a library type, a model, a
        dataclass, a container subclass, or else a pickle."""
        modules = sys.modules
        numpy = modules.get("numpy")
        if numpy is not None and issubclass(kind, numpy.ndarray):
            return self._ndarray_body
        pandas = modules.get("pandas")
        if pandas is not None and issubclass(
            kind,
            pandas.DataFrame | pandas.Series | pandas.Index | pandas.api.extensions.ExtensionArray,
        ):
            return self._pandas_body
        sparse = modules.get("scipy.sparse")
        if sparse is not None and issubclass(kind, sparse.spmatrix | sparse.sparray):
            return self._sparse_body
        pa = modules.get("pyarrow")
        if pa is not None and issubclass(kind, pa.Table | pa.RecordBatch | pa.ChunkedArray):
            return self._arrow_table_body
        if pa is not None and issubclass(kind, pa.Array):
            return self._arrow_array_body
        polars = modules.get("polars")
        if polars is not None and issubclass(kind, polars.DataFrame | polars.Series):
            return self._polars_body
        torch = modules.get("torch")
        if torch is not None and issubclass(kind, torch.Tensor):
            return self._tensor_body
        if issubclass(kind, BaseModel):
            return self._model_body
        if dataclasses.is_dataclass(kind):
            return self._dataclass_body
        if issubclass(kind, Mapping | list | tuple | set | frozenset):
            return self._container_body(kind)
        return self._object_state_body

    def composite(self, update: Update, value: Any, body: Body, *, cheap: bool = False) -> None:
        """Feed ``@`` and the sub-digest of ``value``'s body, computed once per object.

        ``cheap`` objects (small containers, pickled objects) are remembered only if they turned
        out heavy (contained a composite, or a large pickle): that is what bounds the work on
        shared references, and a small leaf costs less to hash again than to keep in the memo,
        which matters for a million tuples or timestamps, each seen once.
        """
        key = id(value)
        digest = self.memo.get(key)
        if digest is None:
            if key in self.active:
                raise UnfingerprintableError(
                    f"cannot fingerprint a {_qualname(type(value))}: it contains itself"
                )
            self.active.add(key)
            before = self.heavy
            hasher = hashlib.sha256()
            body(hasher.update, value)
            digest = hasher.digest()
            self.active.discard(key)
            if not cheap or self.heavy != before:
                self.memo[key] = digest
                self.alive.append(value)
        self.heavy += 1
        update(b"@" + digest)

    def digest(self, value: Any) -> bytes:
        """SHA-256 of ``value``'s encoding, for sorting the items of dicts and sets."""
        hasher = hashlib.sha256()
        self.feed(hasher.update, value)
        return hasher.digest()

    # -- Python values ----------------------------------------------------------------------

    def _large_scalar_body(self, update: Update, value: str | bytes | bytearray) -> None:
        update(_SCALAR_ENCODERS[type(value)](value))

    def _sequence_body(self, update: Update, value: list[Any] | tuple[Any, ...]) -> None:
        if type(value) not in (list, tuple):
            update(_type_tag(value))  # namedtuples, list subclasses
            self._extra_state(update, value)
        update(b"%s%d;" % (b"t" if isinstance(value, tuple) else b"l", len(value)))
        for item in value:
            self.feed(update, item)

    def _mapping_body(self, update: Update, value: Mapping[Any, Any]) -> None:
        """Keys and values in order: dicts keep insertion order and code depends on it (a frame
        built from a dict takes its column order), so two orders are two values. A dict built
        the same way has the same order in every process, so this costs no hits."""
        if type(value) is not dict:
            update(_type_tag(value))
            self._extra_state(update, value)
        update(b"D%d;" % len(value))
        for key, item in value.items():
            self.feed(update, key)
            self.feed(update, item)

    def _extra_state(self, update: Update, value: Any) -> None:
        """What a subclass of a container carries besides its items: a ``defaultdict``'s
        factory, attributes set on the object."""
        factory = getattr(value, "default_factory", None)
        if factory is not None:
            update(_frame(b"f", _qualname(factory).encode()))
        attributes = getattr(value, "__dict__", None)
        if attributes:
            self.feed(update, dict(sorted(attributes.items())))

    def _set_body(self, update: Update, value: set[Any] | frozenset[Any]) -> None:
        if type(value) not in (set, frozenset):
            update(_type_tag(value))
        update(b"%s%d;" % (b"z" if isinstance(value, frozenset) else b"e", len(value)))
        update(b"".join(sorted(self.digest(item) for item in value)))

    def _feed_numpy_scalar(self, update: Update, value: Any) -> None:
        update(b"g")  # a leaf: fed inline, never memoized
        self.array(update, sys.modules["numpy"].asarray(value))

    def _feed_memoryview(self, update: Update, value: memoryview) -> None:
        data = value.cast("B") if value.c_contiguous else value.tobytes()
        update(_frame(b"v", value.format.encode()) + _shape(value.shape) + b"%d:" % len(data))
        update(data)

    def secret(self, value: Any) -> bytes:
        """A secret as ``HMAC-SHA256(key, secret)``: a change invalidates the cache, yet the
        fingerprint gives no way to test guesses of the secret without the key. Redacted (no
        key), its type alone."""
        if self.secret_key is None:
            return _type_tag(value) + b"redacted"
        secret = value.get_secret_value()
        if isinstance(value, SecretStr):
            message = secret.encode("utf-8", "surrogatepass")
        elif isinstance(value, SecretBytes):
            message = secret
        else:  # Secret[T] holds any value: its digest is what is authenticated
            message = self.digest(secret)
        return _type_tag(value) + hmac.digest(self.secret_key, message, "sha256")

    def _model_body(self, update: Update, value: BaseModel) -> None:
        """Class, declared fields in order, extra fields and private attributes: pydantic's
        ``==`` compares all of them, so two models that are not equal never share a key."""
        update(_type_tag(value))
        fields = type(value).model_fields
        update(b"m%d;" % len(fields))
        for name in fields:
            update(_frame(b"n", name.encode()))
            self.feed(update, getattr(value, name))
        self.feed(update, value.model_extra)
        self.feed(update, value.__pydantic_private__)

    def _dataclass_body(self, update: Update, value: Any) -> None:
        """Fields in order, then any other attribute the object holds (a fitted ``coef_`` set
        after construction): the step that receives it can read those too."""
        update(_type_tag(value))
        fields = dataclasses.fields(value)
        update(b"a%d;" % len(fields))
        for field in fields:
            update(_frame(b"n", field.name.encode()))
            self.feed(update, getattr(value, field.name))
        names = {field.name for field in fields}
        extra = {k: v for k, v in getattr(value, "__dict__", {}).items() if k not in names}
        self.feed(update, dict(sorted(extra.items())))

    def _object_state_body(self, update: Update, value: Any) -> None:
        """Any other object, by what pickling it would save (``__reduce_ex__``): how it is rebuilt
        and its state, fed structurally, so a set in its state counts by content, not in the
        hash-seed-dependent order a pickle writes it. Falls back to the pickle for state that
        refers back to the object itself."""
        try:
            reduced = value.__reduce_ex__(5)
        except Exception:
            reduced = None
        if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
            self._pickle_body(update, value)
            return
        callable_, args, *rest = reduced
        try:
            parts = hashlib.sha256()
            self.feed(parts.update, args)
            for part in rest:  # state, list items, dict items, state setter
                self.feed(parts.update, list(part) if _is_iterator(part) else part)
        except UnfingerprintableError:
            self._pickle_body(update, value)
            return
        maker = f"{getattr(callable_, '__module__', '?')}.{getattr(callable_, '__qualname__', '?')}"
        update(_type_tag(value) + _frame(b"r", maker.encode()) + parts.digest())

    def _pickle_body(self, update: Update, value: Any) -> None:
        """Any other object: its class and its pickle. Protocol 5 hands large contiguous buffers
        (numpy arrays inside an object) out of band, so they are hashed in place, not copied."""
        buffers: list[pickle.PickleBuffer] = []
        stream = io.BytesIO()
        try:
            _SecretHidingPickler(stream, self, buffers).dump(value)
            payload = stream.getbuffer()
        except Exception as exc:
            raise UnfingerprintableError(
                f"cannot fingerprint a {_qualname(type(value))}: it is not a supported type and "
                f"cannot be pickled ({exc})"
            ) from exc
        if len(payload) >= _LARGE_SCALAR or buffers:
            self.heavy += 1
        update(_type_tag(value) + b"p%d:" % len(payload))
        update(payload)
        update(b"%d;" % len(buffers))
        for buffer in buffers:
            raw = buffer.raw()
            update(b"%d:" % raw.nbytes)
            update(raw)

    # -- numpy ------------------------------------------------------------------------------

    def _ndarray_body(self, update: Update, array: Any) -> None:
        numpy = sys.modules["numpy"]
        if type(array) is not numpy.ndarray:
            update(_type_tag(array))  # np.matrix, np.memmap, masked arrays
        masked = sys.modules.get("numpy.ma")
        if masked is not None and isinstance(array, masked.MaskedArray):
            # The data under the mask counts too: .data and .filled() expose it. So do the fill
            # value (filled(), many reductions return it) and whether the mask is hard.
            update(b"M" + (b"h" if array.hardmask else b"s"))
            self.array(update, masked.getdata(array))
            self.array(update, masked.getmaskarray(array))
            self.feed(update, array.fill_value)
        else:
            self.array(update, numpy.asarray(array))  # a subclass's own indexing is not content

    def array(self, update: Update, array: Any) -> None:
        """An ndarray's dtype, shape and elements in C order, whatever its memory layout."""
        update(b"A" + _dtype(array.dtype) + _shape(array.shape))
        if array.dtype.hasobject:  # object, StringDType, structs with object fields
            for item in array.reshape(-1).tolist():
                self.feed(update, item)
        elif array.nbytes:
            self._raw(update, array)

    def _raw(self, update: Update, array: Any) -> None:
        """The bytes of ``array`` in C order: straight from the buffer when it is C-contiguous,
        else one slab of rows at a time, so a strided view is never copied whole."""
        numpy = sys.modules["numpy"]
        if array.flags.c_contiguous:
            update(array.reshape(-1).view(numpy.uint8))
            return
        row_bytes = array.itemsize * math.prod(array.shape[1:])
        if array.ndim > 1 and row_bytes > _CHUNK_BYTES:
            for row in array:
                self._raw(update, row)
            return
        rows = max(1, _CHUNK_BYTES // row_bytes)
        for start in range(0, len(array), rows):
            slab = numpy.ascontiguousarray(array[start : start + rows])
            update(slab.reshape(-1).view(numpy.uint8))

    # -- pandas -----------------------------------------------------------------------------

    def _pandas_body(self, update: Update, value: Any) -> None:
        """Frames, series and indexes from their underlying arrays, column by column.

        ``attrs`` and the duplicate-labels flag count: both travel with the frame into a step
        and can change what it does. An index's ``freq`` counts for the same reason.
        """
        pandas = sys.modules["pandas"]
        if isinstance(value, pandas.api.extensions.ExtensionArray):
            self.extension_array(update, value)
            return
        update(_type_tag(value))
        if isinstance(value, pandas.DataFrame):
            update(b"F%d,%d;" % value.shape)
            self._pandas_metadata(update, value)
            self.feed(update, value.columns)
            self.feed(update, value.index)
            for _, column in value.items():
                self.extension_array(update, column.array)
        elif isinstance(value, pandas.Series):
            self._pandas_metadata(update, value)
            self.feed(update, value.name)
            self.feed(update, value.index)
            self.extension_array(update, value.array)
        else:
            self.feed(update, list(value.names))
            if isinstance(value, pandas.MultiIndex):
                update(b"L%d;" % value.nlevels)
                for level, codes in zip(value.levels, value.codes, strict=True):
                    self.feed(update, level)
                    self.array(update, codes)
            elif isinstance(value, pandas.RangeIndex):  # never materialized: it may be huge
                update(b"R%d,%d,%d;" % (value.start, len(value), value.step))
            else:
                if isinstance(value, pandas.DatetimeIndex | pandas.TimedeltaIndex):
                    self.feed(update, value.freqstr)
                self.extension_array(update, value.array)

    def _pandas_metadata(self, update: Update, value: Any) -> None:
        self.feed(update, value.attrs)
        update(b"T" if value.flags.allows_duplicate_labels else b"F")

    def extension_array(self, update: Update, array: Any) -> None:
        """A pandas array from its buffers: codes and categories, values and mask, int64
        timestamps, Arrow chunks. Never through ``to_numpy()``, which makes objects of
        tz-aware timestamps, categories and nullable values."""
        pandas = sys.modules["pandas"]
        numpy = sys.modules["numpy"]
        arrays = pandas.arrays
        dtype = array.dtype
        if isinstance(array, pandas.Categorical):
            update(_type_tag(array) + (b"Co" if dtype.ordered else b"Cu"))
            self.feed(update, dtype.categories)
            self.array(update, array.codes)
            return
        # The dtype carries unit, tz, storage, NA value, subtype, fill value, closed side.
        update(_type_tag(array) + _frame(b"X", f"{_qualname(type(dtype))}:{dtype!r}".encode()))
        if isinstance(array, arrays.DatetimeArray | arrays.TimedeltaArray | arrays.PeriodArray):
            self.array(update, array.asi8)
        elif isinstance(array, arrays.NumpyExtensionArray):
            self.array(update, numpy.asarray(array))
        elif isinstance(array, arrays.IntegerArray | arrays.FloatingArray | arrays.BooleanArray):
            values, mask = array._data, array._mask  # no public view of either without a copy
            if mask.any():  # what lies under the mask is not content
                values = numpy.where(mask, numpy.zeros((), values.dtype), values)
            self.array(update, values)
            self.array(update, mask)
        elif isinstance(array, arrays.ArrowExtensionArray):
            self._arrow_chunks(update, array.__arrow_array__())
        elif isinstance(array, arrays.IntervalArray):
            self.extension_array(update, array.left.array)
            self.extension_array(update, array.right.array)
        elif isinstance(array, arrays.SparseArray):
            update(b"%d;" % len(array))
            self.array(update, array.sp_index.to_int_index().indices)
            self.array(update, array.sp_values)
            self.feed(update, array.fill_value)
        else:  # a third-party extension array: slow, but by content
            self.array(update, numpy.asarray(array, dtype=object))

    # -- scipy.sparse -----------------------------------------------------------------------

    def _sparse_body(self, update: Update, matrix: Any) -> None:
        """A sparse matrix or array in its own format: the class and format count (a CSR and a
        CSC matrix of equal content differ; ``*`` differs between ``*_matrix`` and ``*_array``),
        and so does the stored layout (unsorted indices, explicit zeros). That never lets two
        different matrices agree, and costs no conversion. DOK and LIL have no flat arrays and
        are hashed as their canonical CSR form."""
        update(_type_tag(matrix) + _frame(b"S", matrix.format.encode()) + _shape(matrix.shape))
        update(_dtype(matrix.dtype))
        if matrix.format in ("dok", "lil"):
            matrix = matrix.tocsr()
            matrix.sort_indices()
        if matrix.format in ("csr", "csc", "bsr"):
            parts = [matrix.data, matrix.indices, matrix.indptr]
        elif matrix.format == "coo":
            parts = [matrix.data, *matrix.coords]
        else:  # dia
            parts = [matrix.data, matrix.offsets]
        for part in parts:
            self.array(update, part)

    # -- pyarrow and polars -----------------------------------------------------------------

    def _arrow_table_body(self, update: Update, value: Any) -> None:
        """Tables, record batches and chunked arrays by schema and content, never by chunking."""
        pa = sys.modules["pyarrow"]
        update(_type_tag(value))
        if isinstance(value, pa.ChunkedArray):
            self._arrow_chunks(update, value)
            return
        schema = value.schema
        update(b"%d,%d;" % (value.num_rows, len(schema)) + _arrow_metadata(schema.metadata))
        for field, column in zip(schema, value.columns, strict=True):
            update(_frame(b"n", field.name.encode()) + (b"1" if field.nullable else b"0"))
            update(_arrow_metadata(field.metadata))
            self._arrow_chunks(update, column)

    def _arrow_array_body(self, update: Update, value: Any) -> None:
        update(_type_tag(value))
        self._arrow_chunks(update, value)

    def _arrow_chunks(self, update: Update, column: Any) -> None:
        """An Array or ChunkedArray: its type, then the digest of its content streams."""
        pa = sys.modules["pyarrow"]
        update(_arrow_type(pa, column.type))
        streams = _ArrowColumn(self)
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            streams.add(chunk)
        update(streams.digest())

    def _polars_body(self, update: Update, value: Any) -> None:
        """A polars frame or series through Arrow (zero-copy for most types), plus polars'
        own dtypes, which Arrow cannot tell apart (an Enum and a Categorical)."""
        polars = sys.modules["polars"]
        update(_type_tag(value))
        if isinstance(value, polars.DataFrame):
            schema = list(value.schema.items())
        else:
            schema = [(value.name, value.dtype)]
        update(b"%d;" % len(schema))
        for name, dtype in schema:
            update(_frame(b"n", name.encode()) + _frame(b"t", str(dtype).encode()))
        try:
            arrow = value.to_arrow()
        except Exception as exc:
            raise UnfingerprintableError(
                f"cannot fingerprint a {_qualname(type(value))}: it has no Arrow form ({exc})"
            ) from exc
        if isinstance(value, polars.DataFrame):
            self._arrow_table_body(update, arrow)
        else:
            self._arrow_chunks(update, arrow)

    # -- torch ------------------------------------------------------------------------------

    def _tensor_body(self, update: Update, tensor: Any) -> None:
        """A CPU tensor's class, dtype, shape, ``requires_grad`` and bytes. Other devices are
        refused rather than copied to the host behind the caller's back."""
        torch = sys.modules["torch"]
        if tensor.device.type != "cpu" or tensor.layout != torch.strided:
            raise UnfingerprintableError(
                f"cannot fingerprint a {_qualname(type(tensor))} on device {tensor.device} with "
                f"layout {tensor.layout}: only dense CPU tensors are supported"
            )
        update(_type_tag(tensor) + _frame(b"t", str(tensor.dtype).encode()))
        update(_shape(tensor.shape) + (b"G" if tensor.requires_grad else b"g"))
        plain = tensor.detach().resolve_conj().resolve_neg().contiguous()
        update(plain.reshape(-1).view(torch.uint8).numpy())
