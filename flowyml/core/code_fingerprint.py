"""The "code" part of a step's cache key: the step's code and everything of the user's it reaches.

``code_fingerprint(func)`` is a hex SHA-256 over:

1. the function's own syntax tree without its decorators (``@step(retry=..., tags=...)`` must not
   invalidate the cache). Comments, blank lines and formatting do not count; the body, the
   signature, the default expressions and the docstring do (a docstring is part of the syntax
   tree, and a library may read it). A function without source (``exec``, a REPL) counts by its
   compiled code instead;
2. transitively, the code of the user's own functions, methods and classes that code reaches: the
   global names its code (and its nested functions, lambdas and comprehensions) loads, resolved
   through the function's *current* ``__globals__``; attribute chains rooted at a user module
   (``helpers.scale``, ``pkg.sub.fn``); its closure cells; modules and names it imports in its
   body (``from helpers import scale`` inside the step; a user module not yet imported is imported
   then, as running the step would); its default values. A class counts with its source syntax
   tree (decorators included), every function, property, static and class method in its
   ``__dict__`` and its user-code bases. A ``functools.partial``, a bound method, a staticmethod
   or classmethod, a ``Step`` and anything with ``__wrapped__`` are followed to their function.
   Helpers keep their decorators in their syntax tree (``@lru_cache(maxsize=...)`` changes
   behaviour); only the step's own function, and a step reached through a ``Step`` object, drop
   them. Every object is walked once per call, so recursion and cycles terminate;
3. the *values* of the globals, closure variables, defaults and partial arguments that code reads
   (numbers, strings, containers, numpy arrays, pandas frames, dataclasses, pydantic models,
   instances of user classes ...), by ``fingerprint``, read at every call: rebinding
   ``THRESHOLD`` in a notebook changes the fingerprint. A value that cannot be fingerprinted
   raises ``UncachableCodeError`` naming it. A name that is not defined yet counts as missing;
4. for each module, function, class or object of the standard library or of an installed
   distribution that code refers to: its qualified name (rebinding ``serialize = json.dumps`` to
   ``json.loads`` is seen) and, for a distribution, ``name==version`` of the distribution(s)
   providing its top-level module (upgrading scikit-learn changes the fingerprint). Their code is
   not walked. flowyml and flowyml_dagster count the same way: as a dependency, not user code;
5. the Python minor version, always: the standard library and the builtins are versioned with
   the interpreter, every step uses them, and ``ast.dump`` output itself changes between minor
   versions, so a conditional would only pretend to be finer.

The *structure* is worked out once per process: per code object, the hash of its syntax tree and
the global names, attribute chains and imports its bytecode reads; per class, the hash of its
syntax tree; the table of distributions and their versions. Each call only re-resolves those
names through the current namespaces (a notebook may rebind ``helper``) and fingerprints the
values read, which keeps a step with twenty helpers well under a millisecond
(``bench/code_fingerprint.py``).

"User code" is code whose file lies outside the standard library and the site directories
(``sysconfig`` paths, ``<prefix>/lib/pythonX.Y`` of each prefix, ``site.getsitepackages()``, the
user site), plus code without a file (``python -c``, a notebook cell). The prefixes themselves are
not used as a whole: on a system Python ``sys.prefix`` is ``/usr``, and a project in
``/usr/src/app`` is user code. A package installed in editable mode lives outside the site
directories, so its code is walked like the user's own.

What it cannot see, so a cache hit can be stale:

- data a step reads from files by path, databases, the network or environment variables (a
  ``Path`` global counts by its text, never by the file's content);
- code reached only dynamically: ``getattr(obj, "name")`` with a string, ``eval``/``exec``,
  ``importlib.import_module``, a user module passed around as a value (functions held in a
  global container or a user object's attributes *are* walked, within a budget of items);
- the methods of objects the code only gets at run time (a step input, the result of a call,
  an unpickled object) when their class is not reached by name: only code that the step's code
  names, directly or through what it reaches, is walked;
- a third-party package's own code (it counts by version; a global third-party *object*, such
  as ``MODEL = Ridge(alpha=1.0)``, counts by its state as well), and user functions hidden
  inside third-party objects that do not expose ``__wrapped__`` (a numba dispatcher);
- the internals of C extensions, including user-built ones;
- a source file edited on disk after its code was first fingerprinted in this process (the
  structure of each code object is read once per process, as the code that runs is); and
  distribution versions are read once per process. A function whose file was edited after its
  module was imported and before its first fingerprint counts by its compiled code, not by the
  file: its source no longer compiles to the code that runs, so the file cannot vouch for it
  (such a process never shares entries with one running the edited code). A class has no such
  check (its body's code is not kept): an edit of a class body made in that window that changes
  neither a method nor a public attribute's value (a private attribute, a pydantic field's
  constraint or type) is keyed by the edited text while the old class runs.
"""

from __future__ import annotations

import ast
import dis
import enum
import functools
import hashlib
import importlib
import importlib.util
import inspect
import linecache
import os
import re
import site
import sys
import sysconfig
import textwrap
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from flowyml.core.fingerprint import fingerprint

if TYPE_CHECKING:  # importlib.metadata is imported by the first version looked up
    import importlib.metadata

__all__ = ["UncachableCodeError", "code_fingerprint"]

_USER = "user"
_STDLIB = "stdlib"
_DIST = "dist:"
_OWN_PACKAGES = ("flowyml", "flowyml_dagster")
_FORMAT = "flowyml-code-1"
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_MISSING: Any = object()
# Builtin value types: straight to ``fingerprint``, skipping the origin checks of other objects.
_VALUE_TYPES = frozenset(
    {int, float, str, bool, bytes, type(None), complex, tuple, list, dict, set, frozenset}
)
# Items searched for functions held inside one value (a dispatch table, a registry).
_HELD_CODE_BUDGET = 10_000
_HELD_CODE = (types.FunctionType, types.MethodType, functools.partial, type)
_SCALARS = frozenset({int, float, str, bool, bytes, type(None), complex})
_CODE_MEMBERS = (
    types.FunctionType,
    staticmethod,
    classmethod,
    property,
    functools.cached_property,
    type,
)
# Between an IMPORT_NAME and the last name it binds; anything else ends the statement.
_IMPORT_TAIL_OPS = frozenset({"SWAP", "POP_TOP"})
_CONST_OPS = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})
_STORE_OPS = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"})
_CHAIN_ROOT_OPS = frozenset(
    {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"}
)
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


class UncachableCodeError(TypeError):
    """A value the step's code reads cannot be fingerprinted, so no cache key is trustworthy.

    The message names the value and the function reading it, e.g.
    ``global 'conn' (sqlite3.Connection) read by train()``, so the caller can warn once and run
    the step uncached.
    """


class _Import(NamedTuple):
    """One name an ``import`` statement inside a function binds.

    ``module`` is imported (relative to the function's package when ``level > 0``); the local
    name gets ``getattr(module, attr)`` for ``from module import attr``, else the module itself,
    or its top-level package for a plain ``import a.b`` (``bind_top``).
    """

    module: str
    level: int
    attr: str | None
    local: str
    bind_top: bool


@dataclass(frozen=True, slots=True)
class _Shape:
    """What never changes for a code object: its hashes and the names it reads.

    ``digest`` is the hash of its syntax tree with decorators, ``bare_digest`` without (equal
    when it has none, or when it has no source and counts by its bytecode). ``chains`` maps a
    name to the attribute paths read from it (``helpers.scale`` gives ``helpers: (("scale",),)``).
    """

    digest: str
    bare_digest: str
    globals: tuple[str, ...]
    chains: Mapping[str, tuple[tuple[str, ...], ...]]
    imports: tuple[_Import, ...]


# Keyed by the identity of the code object, not by ``==``: equal code objects (same bytecode and
# line numbers in two files) may carry different decorators, which are not part of the code
# object but are part of the digest. A weak reference drops the entry with its code object, so
# a notebook's redefinitions do not pile up.
_SHAPES: dict[int, tuple[weakref.ref[types.CodeType], _Shape]] = {}
# Per source file: its (size, mtime) in ``linecache`` and its code objects compiled from that text.
_COMPILED_FILES: dict[
    str, tuple[tuple[int, float], Mapping[tuple[str, int], types.CodeType] | None]
] = {}
# Classes compare by identity, so a weak-key dictionary is keyed by identity already.
_CLASS_DIGESTS: weakref.WeakKeyDictionary[type, str | None] = weakref.WeakKeyDictionary()


def code_fingerprint(
    func: Callable[..., Any], *, secret_key: bytes | None = None, redact_secrets: bool = False
) -> str:
    """Hex SHA-256 of ``func``'s code, the user code it reaches and the values that code reads.

    See the module docstring for exactly what is covered. Raises ``UncachableCodeError`` when a
    value it reads cannot be fingerprinted. A secret the code reads (a ``SecretStr`` default, a
    global, a closure variable) enters as ``HMAC-SHA256(secret_key, secret)``, as secret params
    do in a cache key: with the store's key the fingerprint is the same in every process using
    that store; without one a random key of this process is used (see ``fingerprint``). With
    ``redact_secrets`` a secret enters as its type alone, the same in every process.
    """
    walk = _Walk(secret_key, redact_secrets=redact_secrets)
    walk.mark_bare(func)
    walk.feed(func, "step", _name_of(func))
    walk.run()
    return hashlib.sha256("\0".join(walk.parts).encode("utf-8", "surrogatepass")).hexdigest()


class _Walk:
    """One fingerprinting pass: the token list being built and the objects met so far.

    Functions and classes become numbered units, processed breadth first from a queue (no
    recursion, so a long call chain cannot hit the recursion limit); a unit met again is fed as
    its number only, which is what makes cycles terminate.
    """

    def __init__(self, secret_key: bytes | None = None, *, redact_secrets: bool = False) -> None:
        self.secret_key = secret_key
        self.redact_secrets = redact_secrets
        self.parts: list[str] = [_FORMAT, f"py{_PYTHON}"]
        self.units: dict[int, int] = {}
        self.queue: list[Any] = []
        self.bare: set[int] = set()
        # Digests of values met in this pass, by identity: a constant read by ten helpers is
        # hashed once. The value is kept with its digest so its id cannot be reused meanwhile.
        self.values: dict[int, tuple[Any, str]] = {}

    def mark_bare(self, func: Any) -> None:
        """Drop the decorators of ``func`` and of every function it wraps (``__wrapped__``)."""
        while func is not None and id(func) not in self.bare:
            self.bare.add(id(func))
            func = getattr(func, "__wrapped__", None)

    def run(self) -> None:
        position = 0
        while position < len(self.queue):
            unit = self.queue[position]
            if isinstance(unit, type):
                self.walk_class(unit, position)
            else:
                self.walk_function(unit, position)
            position += 1

    def unit(self, obj: Any) -> str:
        number = self.units.get(id(obj))
        if number is None:
            number = self.units[id(obj)] = len(self.queue)
            self.queue.append(obj)
        return f"u{number}"

    def feed(self, value: Any, what: str, reader: str) -> None:
        """Feed anything code can refer to: a unit, an origin, a followed wrapper or a value."""
        parts = self.parts
        kind = type(value)
        if kind in _VALUE_TYPES:
            parts.append(self.value(value, what, reader))
            self.feed_code_within(value, what, reader)
        elif kind is types.FunctionType:
            origin = _function_origin(value)
            if origin == _USER:
                parts.append(self.unit(value))
            else:
                parts.append(_origin_token(origin, _qualified(value)))
                wrapped = value.__dict__.get("__wrapped__")
                if wrapped is not None:
                    self.feed(wrapped, what, reader)
        elif isinstance(value, type):
            origin = _class_origin(value)
            parts.append(
                self.unit(value) if origin == _USER else _origin_token(origin, _qualified(value))
            )
        elif isinstance(value, types.ModuleType):
            parts.append(_origin_token(_module_origin(value), value.__name__))
        elif kind is types.MethodType:
            parts.append("M")
            self.feed(value.__func__, what, reader)
            self.feed(value.__self__, what, reader)
        elif isinstance(value, staticmethod | classmethod):
            parts.append("D")
            self.feed(value.__func__, what, reader)
        elif isinstance(value, property):
            parts.append("R")
            for accessor in (value.fget, value.fset, value.fdel):
                self.feed(accessor, what, reader)
        elif isinstance(value, functools.cached_property):
            parts.append("R")
            self.feed(value.func, what, reader)
        elif isinstance(value, functools.partial):
            self.feed_partial(value, what, reader)
        elif isinstance(value, _step_class()):
            parts.append("S")
            self.mark_bare(value.func)
            self.feed(value.func, what, reader)
        elif kind is types.BuiltinFunctionType:
            parts.append(_origin_token(_builtin_origin(value), _qualified(value)))
        else:
            self.feed_object(value, what, reader)

    def value(self, value: Any, what: str, reader: str) -> str:
        known = self.values.get(id(value))
        if known is None:
            known = self.values[id(value)] = (
                value,
                _value_digest(value, what, reader, self.secret_key, self.redact_secrets),
            )
        return known[1]

    def feed_partial(self, value: functools.partial[Any], what: str, reader: str) -> None:
        self.parts.append("P")
        self.feed(value.func, what, reader)
        for arg in value.args:
            self.feed(arg, f"argument of a functools.partial in {what}", reader)
        for key in sorted(value.keywords):
            self.parts.append(key)
            self.feed(value.keywords[key], f"argument '{key}' of a partial in {what}", reader)

    def feed_object(self, value: Any, what: str, reader: str) -> None:
        """An instance, by its class and its content: a user class is walked, a library's
        counts by name and version, and the object's state by value (``MODEL = Ridge(alpha=1)``
        edited to ``alpha=100`` is another key). Code the object holds (a function stored in
        it) is walked too. An object without a fingerprint makes the step uncached."""
        cls = type(value)
        origin = _class_origin(cls)
        if origin == _USER:
            self.parts.append(self.unit(cls))
        elif origin.startswith(_DIST):
            self.parts.append(_origin_token(origin, _qualified(cls)))
        self.parts.append(self.value(value, what, reader))
        self.feed_code_within(value, what, reader)
        if callable(value):
            wrapped = inspect.getattr_static(value, "__wrapped__", None)
            if wrapped is not None:
                self.feed(wrapped, what, reader)

    def feed_code_within(self, value: Any, what: str, reader: str) -> None:
        """Functions and classes held inside a value (``OPS = {"double": double}``, a registry
        a decorator fills, ``BOX.fn = double``): the value's fingerprint knows them by name
        only, so their code is walked as if the step named them."""
        for held in _code_within(value):
            self.parts.append("h")
            self.feed(held, f"code held by {what}", reader)

    def walk_function(self, func: types.FunctionType, number: int) -> None:
        code = func.__code__
        shape = _shape(code)
        reader = _name_of(func)
        parts = self.parts
        digest = shape.bare_digest if id(func) in self.bare else shape.digest
        parts.append(f"F{number}:{digest}")
        namespace = func.__globals__
        builtins = _builtins_of(namespace)
        chains = shape.chains
        for name in shape.globals:
            parts.append(f"g:{name}")
            value = namespace.get(name, _MISSING)
            if value is _MISSING:
                parts.append("builtin" if name in builtins else "missing")
                continue
            self.feed(value, f"global '{name}'", reader)
            if name in chains:
                self.follow_chains(value, chains[name], reader)
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=True):
            parts.append(f"c:{name}")
            try:
                value = cell.cell_contents
            except ValueError:
                parts.append("empty")
                continue
            self.feed(value, f"closure variable '{name}'", reader)
            if name in chains:
                self.follow_chains(value, chains[name], reader)
        for imported in shape.imports:
            parts.append(f"i:{imported.local}")
            value = _import_value(imported, namespace)
            if isinstance(value, str):
                where = ".".join(filter(None, (imported.module, imported.attr)))
                parts.append(_origin_token(value, where) if value else "missing")
                continue
            self.feed(value, f"name '{imported.local}' imported", reader)
            if imported.local in chains:
                self.follow_chains(value, chains[imported.local], reader)
        if func.__defaults__:
            for position, default in enumerate(func.__defaults__):
                parts.append(f"d:{position}")
                self.feed(default, f"default value #{position}", reader)
        if func.__kwdefaults__:
            for name, default in sorted(func.__kwdefaults__.items()):
                parts.append(f"k:{name}")
                self.feed(default, f"default of parameter '{name}'", reader)

    def follow_chains(self, root: Any, paths: Iterable[tuple[str, ...]], reader: str) -> None:
        """``helpers.scale``: walk what an attribute path through user modules lands on."""
        if not _is_user_module(root):
            return
        for path in paths:
            value = root
            for attr in path:
                try:
                    value = getattr(value, attr)
                except Exception:
                    value = _MISSING
                    break
                if not _is_user_module(value):
                    break
            self.parts.append("a:" + ".".join(path))
            if value is _MISSING:
                self.parts.append("missing")
            else:
                self.feed(value, f"global '{'.'.join(path)}'", reader)

    def walk_class(self, cls: type, number: int) -> None:
        digest = _class_digest(cls)
        reader = _name_of(cls)
        parts = self.parts
        parts.append(f"C{number}:{digest if digest is not None else cls.__qualname__}")
        for base in cls.__bases__:
            self.feed(base, "base class", reader)
        if type(cls) is not type:
            self.feed(type(cls), "metaclass", reader)
        for name, member in sorted(vars(cls).items(), key=lambda item: item[0]):
            if isinstance(member, _CODE_MEMBERS):
                parts.append(f"m:{name}")
                self.feed(member, f"attribute '{name}'", reader)
            elif not name.startswith("_"):
                # By value, not only by source text: ``K = SCALE`` is evaluated when the class
                # is made, so an edit of ``SCALE`` changes it without touching the class.
                parts.append(f"m:{name}")
                self.feed(member, f"class attribute '{name}'", reader)
        if issubclass(cls, enum.Enum):
            parts.append("enum")
            parts.append(self.value([(m.name, m.value) for m in cls], "enum members", reader))
        if issubclass(cls, BaseModel):
            defaults = {
                name: field.default
                for name, field in cls.model_fields.items()
                if field.default is not PydanticUndefined
            }
            parts.append("defaults")
            parts.append(self.value(defaults, "field defaults", reader))


def _name_of(obj: Any) -> str:
    """How an error message names the reader: ``train()``, ``Model.fit()``, ``class Model``."""
    if isinstance(obj, type):
        return f"class {obj.__qualname__}"
    return f"{getattr(obj, '__qualname__', type(obj).__qualname__)}()"


def _value_digest(
    value: Any, what: str, reader: str, secret_key: bytes | None, redact_secrets: bool
) -> str:
    try:
        return fingerprint(value, secret_key=secret_key, redact_secrets=redact_secrets)
    except Exception as exc:
        cls = type(value)
        raise UncachableCodeError(
            f"{what} ({cls.__module__}.{cls.__qualname__}) read by {reader}: {exc}"
        ) from exc


def _builtins_of(namespace: Mapping[str, Any]) -> Mapping[str, Any]:
    builtins = namespace.get("__builtins__", _MISSING)
    if isinstance(builtins, types.ModuleType):
        return vars(builtins)
    if isinstance(builtins, Mapping):
        return builtins
    return vars(sys.modules["builtins"])


def _code_within(value: Any) -> Iterator[Any]:
    """Functions, methods, partials, steps and classes inside plain containers and user objects'
    attributes, breadth first, within :data:`_HELD_CODE_BUDGET` items (a value of a million
    numbers is not searched through)."""
    pending = [value]
    seen = {id(value)}
    budget = _HELD_CODE_BUDGET
    while pending and budget > 0:
        current = pending.pop(0)
        if isinstance(current, Mapping):
            items: Iterable[Any] = [*current.keys(), *current.values()]
        elif isinstance(current, list | tuple | set | frozenset):
            items = current
        elif _class_origin(type(current)) == _USER and hasattr(current, "__dict__"):
            items = vars(current).values()
        else:
            continue
        for item in items:
            budget -= 1
            if budget <= 0:
                break
            if isinstance(item, (*_HELD_CODE, _step_class())):
                yield item
            elif id(item) not in seen and type(item) not in _SCALARS:
                seen.add(id(item))
                pending.append(item)


@functools.cache
def _step_class() -> type:
    """``Step``, imported late: ``flowyml.core.step`` imports this module."""
    from flowyml.core.step import Step

    return Step


# -- Structure of code, computed once per code object ---------------------------------------------


def _shape(code: types.CodeType) -> _Shape:
    entry = _SHAPES.get(id(code))
    if entry is not None and entry[0]() is code:
        return entry[1]
    shape = _build_shape(code)
    key = id(code)

    def forget(ref: weakref.ref[types.CodeType]) -> None:
        if _SHAPES.get(key, (None,))[0] is ref:
            _SHAPES.pop(key, None)

    _SHAPES[key] = (weakref.ref(code, forget), shape)
    return shape


def _build_shape(code: types.CodeType) -> _Shape:
    tree = _parse(code)
    if tree is None:
        digest = bare = _bytecode_digest(code)
    else:
        digest = _tree_digest(tree)
        bare = digest
        if isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef) and tree.decorator_list:
            tree.decorator_list = []
            bare = _tree_digest(tree)
    names: dict[str, None] = {}
    chains: dict[str, dict[tuple[str, ...], None]] = {}
    imports: dict[_Import, None] = {}
    for nested in _code_objects(code):
        _read_instructions(nested, names, chains, imports)
    # Chains from other locals (``self.model.fit``) can never land on a user module.
    roots = {*names, *code.co_freevars, *(imported.local for imported in imports)}
    return _Shape(
        digest=digest,
        bare_digest=bare,
        globals=tuple(names),
        chains={root: tuple(paths) for root, paths in chains.items() if root in roots},
        imports=tuple(imports),
    )


def _parse(obj: types.CodeType | type) -> ast.AST | None:
    """The syntax tree of a function's or class's source, ``None`` when there is no source, or
    when the file no longer holds the code that runs (edited since it was imported)."""
    try:
        lines = _code_lines(obj) if isinstance(obj, types.CodeType) else None
        if lines is not None and not _runs_as_written(obj):
            return None
        source = "".join(lines) if lines is not None else inspect.getsource(obj)
        tree = ast.parse(textwrap.dedent(source))
    except (OSError, TypeError, SyntaxError):
        return None
    return tree.body[0] if tree.body else tree


# How ``inspect.findsource`` finds where the source of a code object starts.
_DEFINITION_LINE = re.compile(r"^(\s*def\s)|(\s*async\s+def\s)|(.*(?<!\w)lambda(:|\s))|^(\s*@)")


def _code_lines(code: types.CodeType) -> list[str] | None:
    """The source lines of ``code`` from its file, as ``inspect.getsource`` finds them, or
    ``None`` where only ``inspect`` can find them (source a module's loader gives, no file).

    ``inspect.getsource`` first looks for a code object's module (a code object does not name
    it) by taking the real path of every module loaded: a third of a second in a process that
    imported Dagster and pandas, paid by every Dagster step process as it rebuilds the job. The
    module only matters for source that is not in a file.
    """
    filename = code.co_filename
    if not os.path.isfile(filename):
        return None
    linecache.checkcache(filename)
    lines = linecache.getlines(filename)
    number = code.co_firstlineno - 1
    if not lines or not 0 <= number < len(lines):
        return None
    while number > 0 and not _DEFINITION_LINE.match(lines[number]):
        number -= 1
    return inspect.getblock(lines[number:])


def _runs_as_written(code: types.CodeType) -> bool:
    """Whether the file of ``code`` compiles, as it is now, to ``code`` (same bytecode, names and
    constants at the same qualified name and first line). A file edited after its module was
    imported does not: its source would key the old code's values by the new code, and a fresh
    process running the new code would then be handed them."""
    compiled = _compiled_file(code.co_filename)
    found = compiled.get((code.co_qualname, code.co_firstlineno)) if compiled else None
    return found is not None and _bytecode_digest(found) == _bytecode_digest(code)


def _compiled_file(filename: str) -> Mapping[tuple[str, int], types.CodeType] | None:
    """Every code object of ``filename``'s source as ``linecache`` holds it now, by qualified name
    and first line (``None`` if it does not compile); compiled once per version of the file."""
    entry = linecache.cache.get(filename)
    if entry is None or len(entry) != 4:
        return None
    size, mtime, lines, _ = entry
    cached = _COMPILED_FILES.get(filename)
    if cached is not None and cached[0] == (size, mtime):
        return cached[1]
    try:
        module = compile("".join(lines), filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        table = None
    else:
        table = {(c.co_qualname, c.co_firstlineno): c for c in _code_objects(module)}
    _COMPILED_FILES[filename] = ((size, mtime), table)
    return table


def _tree_digest(tree: ast.AST) -> str:
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _class_digest(cls: type) -> str | None:
    if cls not in _CLASS_DIGESTS:
        tree = _parse(cls)
        _CLASS_DIGESTS[cls] = None if tree is None else _tree_digest(tree)
    return _CLASS_DIGESTS[cls]


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    """``code`` and every code object nested in it (inner functions, lambdas, comprehensions)."""
    found = [code]
    for current in found:
        found += [const for const in current.co_consts if isinstance(const, types.CodeType)]
    return found


def _read_instructions(
    code: types.CodeType,
    names: dict[str, None],
    chains: dict[str, dict[tuple[str, ...], None]],
    imports: dict[_Import, None],
) -> None:
    """Collect global loads, attribute chains and import bindings from ``code``'s bytecode.

    Bytecode rather than ``co_names``: ``co_names`` also holds every attribute name (``append``),
    which would make ``x.conn`` read an unrelated global ``conn``. Only loads are collected.
    """
    chain: list[str] = []
    consts: list[Any] = [None, None]
    pending: tuple[str, int, tuple[str, ...] | None] | None = None
    attr: str | None = None
    through_from = False
    for instruction in dis.get_instructions(code):
        op = instruction.opname
        arg = instruction.argval
        if op in _ATTR_OPS and chain:
            chain.append(arg)
            continue
        if len(chain) > 1:
            chains.setdefault(chain[0], {})[tuple(chain[1:])] = None
        chain = [arg] if op in _CHAIN_ROOT_OPS else []
        if op in ("LOAD_GLOBAL", "LOAD_NAME"):
            names[arg] = None
        elif op in _CONST_OPS:
            consts = [consts[-1], arg]
        elif op == "IMPORT_NAME":
            pending, attr, through_from = (arg, consts[0], consts[1]), None, False
            continue
        if pending is None:
            continue
        if op == "IMPORT_FROM":
            attr, through_from = arg, True
        elif op in _STORE_OPS:
            module, level, fromlist = pending
            if fromlist:
                imports[_Import(module, level, attr, arg, bind_top=False)] = None
            else:
                imports[_Import(module, level, None, arg, bind_top=not through_from)] = None
                pending = None
        elif op not in _IMPORT_TAIL_OPS:
            pending = None
    if len(chain) > 1:
        chains.setdefault(chain[0], {})[tuple(chain[1:])] = None


def _bytecode_digest(code: types.CodeType) -> str:
    hasher = hashlib.sha256()
    _feed_code(hasher, code)
    return hasher.hexdigest()


def _feed_code(hasher: Any, code: types.CodeType) -> None:
    hasher.update(code.co_code)
    header = (
        code.co_name,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
    )
    hasher.update(repr(header).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(hasher, const)
        else:
            hasher.update(_const_text(const).encode() + b";")


def _const_text(const: Any) -> str:
    """A constant's text, with frozensets sorted: their iteration order depends on the string
    hash seed, which differs between processes."""
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(_const_text(item) for item in const)) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(_const_text(item) for item in const) + ")"
    return repr(const)


# -- Imports inside a function --------------------------------------------------------------------


def _import_value(imported: _Import, namespace: Mapping[str, Any]) -> Any:
    """What an import inside the function binds, or a string: an origin for a package not
    imported yet (it is not imported just to be fingerprinted), ``""`` when nothing resolves."""
    name = imported.module
    if imported.level:
        try:
            name = importlib.util.resolve_name(
                "." * imported.level + name, namespace.get("__package__")
            )
        except (ImportError, ValueError):
            return ""
    module = _load_module(name)
    if not isinstance(module, types.ModuleType):
        return module
    if imported.attr is None:
        if imported.bind_top:
            return sys.modules.get(name.partition(".")[0], module)
        return module
    value = getattr(module, imported.attr, _MISSING)
    if value is _MISSING:
        return _load_module(f"{name}.{imported.attr}")
    return value


def _load_module(name: str) -> types.ModuleType | str:
    """A user module (imported if need be: running the step would import it); for any other
    package its origin, found without importing it, whether or not it is imported already, so
    the fingerprint is the same before and after the step first ran."""
    origin = _unloaded_origin(name.partition(".")[0])
    if origin != _USER:
        return origin
    module = sys.modules.get(name)
    if module is not None:
        return module
    try:
        return importlib.import_module(name)
    except Exception:
        return ""


@functools.lru_cache(maxsize=1024)
def _unloaded_origin(top: str) -> str:
    """Origin of a top-level module that is not imported; ``""`` when it cannot be found."""
    if top in _OWN_PACKAGES:
        return _DIST + top
    if top in sys.stdlib_module_names:
        return _STDLIB
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ""
    if spec is None:
        return ""
    if spec.origin in ("built-in", "frozen"):
        return _STDLIB
    locations = list(spec.submodule_search_locations or ())
    path = spec.origin if spec.has_location else (locations[0] if locations else None)
    return _path_origin(path) if path else _USER


# -- Where code comes from: the user, the standard library or a distribution ----------------------


def _is_user_module(value: Any) -> bool:
    return isinstance(value, types.ModuleType) and _module_origin(value) == _USER


def _module_origin(module: types.ModuleType) -> str:
    return _origin(module.__name__, getattr(module, "__file__", None))


def _function_origin(func: types.FunctionType) -> str:
    """By the file the code was compiled from: a library wrapper made with ``functools.wraps``
    carries the user function's ``__module__`` but lives in the library's file."""
    return _origin(func.__module__, func.__code__.co_filename)


def _class_origin(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    return _origin(cls.__module__, getattr(module, "__file__", None))


def _builtin_origin(func: types.BuiltinFunctionType) -> str:
    name = func.__module__
    if name is None:
        owner = func.__self__
        name = owner.__name__ if isinstance(owner, types.ModuleType) else type(owner).__module__
    module = sys.modules.get(name)
    return _origin(name, getattr(module, "__file__", None))


@functools.lru_cache(maxsize=8192)
def _origin(module_name: str | None, path: str | None) -> str:
    """``"user"``, ``"stdlib"`` or ``"dist:<top-level module>"`` for code of ``module_name``
    compiled from ``path``.

    A real file decides by where it lies. Without one (``<string>``, ``<stdin>``, a frozen
    module, a builtin) the module name decides: flowyml's own packages and the standard library
    by name, then the module's own file if it has one; anything else is user code (a notebook's
    ``__main__``, a ``python -c`` script).
    """
    if path and not path.startswith("<"):
        return _path_origin(path)
    name = module_name or ""
    top = name.partition(".")[0]
    if top in _OWN_PACKAGES:
        return _DIST + top
    if top in sys.stdlib_module_names:
        return _STDLIB
    module_file = getattr(sys.modules.get(name), "__file__", None)
    if module_file and not module_file.startswith("<"):
        return _path_origin(module_file)
    return _USER


@functools.lru_cache(maxsize=8192)
def _path_origin(path: str) -> str:
    """Origin of a source file: the deepest known root containing it decides."""
    real = os.path.normcase(os.path.realpath(path))
    for root, kind in _roots():
        if real.startswith(root + os.sep):
            if kind != "site":
                return kind
            top = real[len(root) + 1 :].split(os.sep, 1)[0].split(".", 1)[0]
            return _DIST + top
    return _USER


@functools.cache
def _roots() -> tuple[tuple[str, str], ...]:
    """Directories that are not user code, deepest first: ``site`` directories (top-level
    packages of distributions), flowyml's own packages, and the standard library."""
    version = f"python{_PYTHON}"
    paths = sysconfig.get_paths()
    site_dirs = {paths["purelib"], paths["platlib"], *site.getsitepackages()}
    if isinstance(user_site := site.getusersitepackages(), str):
        site_dirs.add(user_site)
    stdlib_dirs = {paths["stdlib"], paths["platstdlib"]}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        stdlib_dirs |= {
            os.path.join(prefix, "lib", version),
            os.path.join(prefix, "lib64", version),
            os.path.join(prefix, "Lib"),
        }
    # A path entry holding distributions' metadata is an install target too (``pip install
    # --target``, ``site.addsitedir``): what it holds is installed code, counted by version.
    site_dirs |= {entry for entry in sys.path if _holds_distributions(entry)}
    roots = [(directory, "site") for directory in site_dirs]
    roots += [(directory, _STDLIB) for directory in stdlib_dirs]
    for package in _OWN_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or ()) if spec else ():
            roots.append((location, _DIST + package))
    normalised = {(os.path.normcase(os.path.realpath(root)), kind) for root, kind in roots}
    return tuple(sorted(normalised, key=lambda item: (-len(item[0]), item)))


def _holds_distributions(entry: str) -> bool:
    try:
        return any(name.endswith(".dist-info") for name in os.listdir(entry or "."))
    except OSError:
        return False


@functools.lru_cache(maxsize=1024)
def _versions(top: str) -> str:
    """``name==version`` of the installed distribution(s) that ship top-level module ``top``.

    Only the directory the module is installed in is searched (its distributions'
    ``top_level.txt``, then their file lists), without importing the module: the answer is the
    same whether or not the step has imported it yet, and costs milliseconds, not a scan of every
    installed distribution.
    """
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    location = None
    if spec is not None:
        if spec.submodule_search_locations:
            location = os.path.dirname(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            location = os.path.dirname(spec.origin)
    if location is None:
        return f"{top}==?"
    from importlib.metadata import distributions

    installed = list(distributions(path=[location]))
    found = [d for d in installed if top in (d.read_text("top_level.txt") or "").split()]
    if not found:
        found = [d for d in installed if _ships(d, top)]
    versions = sorted({f"{d.metadata['Name']}=={d.version}" for d in found})
    return ",".join(versions) or f"{top}==?"


def _ships(distribution: importlib.metadata.Distribution, top: str) -> bool:
    """Whether the distribution's ``RECORD`` lists ``top/...`` or ``top.py`` (a plain text
    search: parsing every file list costs a hundred times more)."""
    record = "\n" + (distribution.read_text("RECORD") or "")
    return f"\n{top}/" in record or f"\n{top}.py," in record


def _origin_token(origin: str, name: str) -> str:
    """What a reference to code that is not walked contributes: its name, so that rebinding
    ``serialize = json.dumps`` to ``pickle.dumps`` is seen, and its distribution's version.

    User code that is not walked (a module, a C extension of the user's) counts without its
    name: the fingerprint does not depend on where the user's code lives.
    """
    if origin == _USER:
        return _USER
    if origin.startswith(_DIST):
        return f"{name}@{_versions(origin[len(_DIST) :])}"
    return f"{name}@{origin}"


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', '?')}"
