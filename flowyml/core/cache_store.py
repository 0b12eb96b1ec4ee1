"""The on-disk store of step outputs, and why it may trust what it loads.

Entries are pickles, and loading a pickle runs code, so this store is a security boundary: it
loads an entry only if nobody but the user (or root) could have written it. Ownership and modes
decide that, the way OpenSSH's ``StrictModes`` decides whether to trust ``authorized_keys``:

* the cache root and every folder in it are real directories (not symlinks), owned by the
  effective user and not writable by group or others;
* every folder above the root is owned by root or the user and not writable by group or others,
  unless it has the sticky bit (``/tmp``: others may add names there, but not rename ours);
* an entry is opened without following a symlink and read only if it is a regular file owned by
  the user and not writable by group or others.

A store that fails a check is not used at all: one warning names the path and the problem, and
steps run uncached. A cache problem costs time, never a run, so neither ``get`` nor ``put``
raises (``put_streamed`` passes on only what the caller's own pickling raises).

Each entry carries its payload's length and SHA-256. The checksum is unkeyed: it detects a
truncated or corrupted entry (a killed writer, a full disk, a crash before the data reached the
disk), not a forged one, since whoever can write an entry can write a matching checksum. Forgery
is kept out by the ownership and mode checks above.

POSIX only: the checks rely on uids, ``O_NOFOLLOW`` and ``dir_fd``. A cache on object storage
(``s3://...``) cannot be judged by ownership and is ``ObjectCacheStore``'s job, with signed
entries; ``open_cache_store`` picks the store for a location, and this one refuses a URL.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import pickle
import secrets
import stat
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flowyml.core.errors import CacheEntryError, CacheLocationError

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "FLOWYML_CACHE_DIR"

# A temporary file this old was left by a writer that was killed between creating and renaming
# it (an active writer keeps its mtime fresh, and renames within a moment of the last write).
STALE_TEMP_SECONDS = 3600.0

SECRET_KEY_FILE = ".secret-key"
SECRET_KEY_SIZE = 32

_TEMP_PREFIX = ".tmp-"

# Entry layout: magic, payload length (8 bytes, big-endian), SHA-256 of the payload, payload (a
# pickle). The magic carries the format version, so an entry of another layout is a miss. The
# length lets a truncated or padded entry be rejected from its size alone, before any hashing.
_MAGIC = b"FLOWYML-CACHE-2\n"
_LENGTH = struct.Struct(">Q")
_DIGEST_SIZE = hashlib.sha256().digest_size
_HEADER_SIZE = len(_MAGIC) + _LENGTH.size + _DIGEST_SIZE
# A payload up to this size is held in memory and written with its header in one go; a larger
# one streams into the file behind a placeholder header (see ``PayloadWriter``).
_HELD_BACK_BYTES = 1 << 20
# The plain runner holds an entry open for a run (``PinnedEntry``) from this size: a smaller value
# costs less to copy than to read back, and an open file per small value would not be worth it.
PIN_MIN_BYTES = 16 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted at an entry's path returns at once instead of waiting for a
# writer; fstat then shows it is not a regular file.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

# The secret key of a store that cannot keep one: its entries are never read, so a key that
# lives only as long as the process loses nothing.
_PROCESS_KEY = secrets.token_bytes(SECRET_KEY_SIZE)

_GROUP_OR_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


class _UnsafeError(Exception):
    """A path of the store that someone other than the user could have changed; the message is
    ``"<path> <why>"``."""


def default_cache_dir() -> Path:
    """``$FLOWYML_CACHE_DIR``, else the user's cache directory (``$XDG_CACHE_HOME/flowyml``)."""
    if override := os.environ.get(CACHE_DIR_ENV):
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flowyml"


class PayloadDigest(Protocol):
    """What an entry's payload is digested with: ``hashlib.sha256()`` here, an HMAC for a signed
    entry of ``ObjectCacheStore``."""

    digest_size: int

    def update(self, data: memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


class CacheStore:
    """Step outputs on disk, one file per cache key, written atomically, in 256 shard folders
    (the first two hex digits of the SHA-256 of the key) so no folder grows huge.

    ``writable`` is ``False`` when entries cannot be written (with a warning saying why); a store
    that fails the ownership and mode checks of the module docstring is neither read nor written.
    Bad entries are misses with a warning: a cache problem costs time, never a run. An entry's
    checksum is unkeyed, so it only tells a damaged entry from an intact one; what keeps forged
    entries out is that nobody else can write in the store.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        given_text = os.fspath(root) if root is not None else os.environ.get(CACHE_DIR_ENV, "")
        if "://" in given_text:
            # A URL taken as a path would become a local folder named "s3:"; open_cache_store
            # gives a URL its own store. Only the protocol is named: the rest may hold a secret.
            raise CacheLocationError(
                f"CacheStore keeps a local directory, not a {given_text.split('://')[0]}:// URL; "
                "flowyml.core.cache_location.open_cache_store opens a store for any location"
            )
        # Absolute, so a later chdir cannot point the checked store somewhere else.
        given = Path(root).expanduser() if root is not None else default_cache_dir()
        self.root = given.absolute()
        self.location = str(self.root)
        self.writable = False
        self._trusted = False
        self._secret_key: bytes | None = None
        self._swept: set[Path] = set()
        self._prepare()

    def path_for(self, key: str) -> Path:
        """Where the entry of ``key`` lives (whether or not it exists)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.pkl"

    @property
    def secret_key(self) -> bytes:
        """This store's HMAC key for secret params in cache keys: 32 random bytes in
        ``<root>/.secret-key`` (0600).

        A cache key may be published (Dagster's event log shows it); keyed with a secret nobody
        else can read, it does not let anyone test guesses of a secret param. Every process using
        this root reads the same key, so such steps still hit across processes. A store that is
        not used, or cannot keep a key, gets a random key of this process instead.
        """
        if self._secret_key is None:
            self._secret_key = self._load_secret_key()
        return self._secret_key

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, outputs)`` on a hit, ``(False, None)`` on a miss or an unusable entry."""
        hit, outputs, _ = self.get_pinned(key, None)
        return hit, outputs

    def get_pinned(self, key: str, min_bytes: int | None) -> tuple[bool, Any, PinnedEntry | None]:
        """:meth:`get`, and on a hit of ``min_bytes`` or more (``None``: never) the entry held
        open (the caller closes it), so the outputs can be loaded again later in the run."""
        if not self._trusted:
            return False, None, None
        path = self.path_for(key)
        try:
            with self._open_shard(path.parent.name, create=False) as shard_fd:
                return self._read(shard_fd, path, min_bytes)
        except FileNotFoundError:
            return False, None, None
        except _UnsafeError as exc:
            self._refuse(str(exc))
        except OSError as exc:
            logger.warning("flowyml cache: cannot read %s (%s); treated as a miss", path, exc)
        return False, None, None

    def put(self, key: str, payload: bytes) -> bool:
        """Store pickled outputs under ``key``; ``False`` (with a warning) if it cannot.

        The bytes of an existing pickle; :meth:`put_streamed` writes a pickle as it is made.
        """
        return self.put_streamed(key, lambda file: file.write(payload))

    def put_streamed(self, key: str, dump: Callable[[PayloadWriter], object]) -> bool:
        """Store under ``key`` the pickle ``dump`` writes into the file it is given; ``False``
        (with a warning) if the store cannot, and then ``dump`` may not have been called.

        ``dump`` writes straight into the entry's temporary file, so the payload is never held in
        memory whole: pickled with protocol 5, a large numpy array goes out from its own buffer.
        The length and SHA-256 are taken as the bytes go by, and written into the header, in
        front of the payload, last. The file then replaces the old entry in one rename, so a
        reader sees the old entry or the new one, never a mix. No fsync: a crash can leave a
        renamed entry whose data never reached the disk, and its length and checksum turn that
        into a miss; durability is not worth a disk flush per step for a cache.

        What ``dump`` raises (a value that cannot be pickled) is not a cache problem: the
        temporary file is removed and the exception goes to the caller. A failing write of the
        file itself is one, whatever ``dump`` made of it: a warning and ``False``.
        """
        stored, _ = self.put_pinned(key, dump, None)
        return stored

    def put_pinned(
        self, key: str, dump: Callable[[PayloadWriter], object], min_bytes: int | None
    ) -> tuple[bool, PinnedEntry | None]:
        """:meth:`put_streamed`, and for an entry of ``min_bytes`` or more (``None``: never) the
        file just written, held open (the caller closes it): whoever replaces or removes the
        entry meanwhile, the run can load these outputs again."""
        if not self.writable:
            return False, None
        path = self.path_for(key)
        failure: BaseException | None = None
        pinned: PinnedEntry | None = None
        try:
            with self._open_shard(path.parent.name, create=True) as shard_fd:
                self._sweep(shard_fd, path.parent)
                temp, failure = _write_temp_entry(shard_fd, dump)
                if temp is not None:
                    try:
                        if min_bytes is not None:  # before the rename: nobody else names it
                            pinned = _pin(
                                lambda: os.open(temp, _READ_FLAGS, dir_fd=shard_fd), path, min_bytes
                            )
                        os.replace(temp, path.name, src_dir_fd=shard_fd, dst_dir_fd=shard_fd)
                    except OSError:
                        _unlink_quietly(temp, shard_fd)
                        if pinned is not None:
                            pinned.close()
                        raise
        except _UnsafeError as exc:
            self._refuse(str(exc))
            return False, None
        except OSError as exc:
            logger.warning("flowyml cache: cannot write %s (%s); result not cached", path, exc)
            return False, None
        if failure is not None:
            raise failure  # outside the handlers above: the caller's error, not the store's
        return True, pinned

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)`` held in the store now, whoever wrote them; nothing is loaded."""
        entries = size = 0
        with suppress(OSError), os.scandir(self.root) as shards:
            for shard in shards:
                if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                    continue
                with suppress(OSError), os.scandir(shard.path) as files:
                    for entry in files:
                        if entry.name.endswith(".pkl") and entry.is_file(follow_symlinks=False):
                            entries += 1
                            size += entry.stat(follow_symlinks=False).st_size
        return entries, size

    def _prepare(self) -> None:
        """Create the root if missing, then decide whether the store may be read and written."""
        try:
            _make_private_dirs(self.root)
        except OSError as exc:
            logger.warning("flowyml cache disabled: %s is not writable (%s)", self.root, exc)
            return
        self._trusted = True  # until a check below refuses it, with its one warning
        try:
            _check_ancestors(self.root)
            root_fd = _open_private_dir(self.root)
            try:
                _check_contents(root_fd, self.root)
                self.writable = _probe_writable(root_fd, self.root)
                if self.writable:
                    self._sweep(root_fd, self.root)
            finally:
                os.close(root_fd)
        except _UnsafeError as exc:
            self._refuse(str(exc))
        except OSError as exc:
            self._trusted = False
            logger.warning("flowyml cache disabled: cannot read %s (%s)", self.root, exc)

    def _refuse(self, problem: str) -> None:
        """Stop using the store, with one warning that says what is wrong and what it risks."""
        if not self._trusted:
            return
        self._trusted = self.writable = False
        logger.warning(
            "flowyml cache at %s disabled, steps run uncached: %s. Whoever can write there can "
            "plant a pickle that runs code as you when it is loaded. Fix that path's owner or "
            "mode, or point %s at a directory of your own.",
            self.root,
            problem,
            CACHE_DIR_ENV,
        )

    @contextmanager
    def _open_shard(self, name: str, *, create: bool) -> Iterator[int]:
        """The shard folder ``name`` of the root, opened and checked (``FileNotFoundError`` if
        missing and not ``create``). Working through checked file descriptors means the folder
        that was checked is the one used, whatever happens to the paths meanwhile."""
        root_fd = _open_private_dir(self.root)
        try:
            created = False
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=root_fd)
                    created = True
            shard_fd = _open_private_dir(self.root / name, root_fd, make_private=created)
        finally:
            os.close(root_fd)
        try:
            yield shard_fd
        finally:
            os.close(shard_fd)

    def _read(
        self, shard_fd: int, path: Path, min_bytes: int | None
    ) -> tuple[bool, Any, PinnedEntry | None]:
        """Load the entry at ``path`` if it is the user's own regular file and intact; one of
        ``min_bytes`` or more stays open (see :meth:`get_pinned`).

        The checksum is verified by streaming the file, and the pickle is loaded from the file,
        so no step needs the whole entry in memory twice; an entry too large to load is a miss.
        """
        try:
            fd = os.open(path.name, _READ_FLAGS, dir_fd=shard_fd)
        except FileNotFoundError:
            return False, None, None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EMLINK):  # EMLINK: O_NOFOLLOW on FreeBSD
                raise
            logger.warning("flowyml cache: entry %s is a symlink; treated as a miss", path)
            return False, None, None
        info = os.fstat(fd)
        problem = _file_problem(info, _GROUP_OR_OTHER_WRITE)
        if problem is not None:
            os.close(fd)
            logger.warning("flowyml cache: entry %s %s; treated as a miss", path, problem)
            return False, None, None
        pinned = _pin(lambda: os.dup(fd), path, min_bytes) if min_bytes is not None else None
        try:
            with os.fdopen(fd, "rb") as file:
                outputs = _load_entry(file, info.st_size, path)
        except _EntryError as exc:
            logger.warning("flowyml cache: %s; treated as a miss", exc)
            if pinned is not None:
                pinned.close()
            return False, None, None
        return True, outputs, pinned

    def _sweep(self, dir_fd: int, folder: Path) -> None:
        """Remove the temporary files killed writers left in ``folder`` (older than
        ``STALE_TEMP_SECONDS``). Once per folder per store: a put lists at most its own shard,
        and only the first time."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        cutoff = time.time() - STALE_TEMP_SECONDS
        with suppress(OSError), os.scandir(dir_fd) as listing:
            for entry in listing:
                if not entry.name.startswith(_TEMP_PREFIX) or entry.is_dir(follow_symlinks=False):
                    continue
                with suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.name, dir_fd=dir_fd)

    def _load_secret_key(self) -> bytes:
        if not self._trusted:
            return _PROCESS_KEY
        try:
            root_fd = _open_private_dir(self.root)
            try:
                key = _read_secret_key(root_fd, self.root)
                if key is None and self.writable:
                    _create_secret_key(root_fd)
                    key = _read_secret_key(root_fd, self.root)
            finally:
                os.close(root_fd)
        except _UnsafeError as exc:
            self._refuse(str(exc))
            return _PROCESS_KEY
        except OSError as exc:
            logger.warning(
                "flowyml cache: cannot keep a secret key in %s (%s); steps with secret params "
                "hit the cache only within this process",
                self.root,
                exc,
            )
            return _PROCESS_KEY
        return key if key is not None else _PROCESS_KEY


def _make_private_dirs(root: Path) -> None:
    """Create ``root`` and its missing parents 0700, whatever the umask.

    ``mkdir -p`` would create the parents ``0777 & ~umask``, world-writable under umask 0. The
    process umask is left alone (it is process-wide, and other threads create files): ``mkdir``
    with 0700 can only come out stricter, and ``fchmod`` then sets exactly 0700.
    """
    missing: list[Path] = []
    folder = root
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # created meanwhile by another process: the checks judge it
        fd = os.open(folder, _DIR_FLAGS)  # the folder just made, not a symlink swapped in
        try:
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)


def _open_private_dir(path: Path, dir_fd: int | None = None, *, make_private: bool = False) -> int:
    """Open the folder ``path`` (``path.name`` relative to ``dir_fd`` when given) without
    following a symlink, and check it is the user's and not writable by group or others.

    ``make_private`` sets mode 0700 first, for a folder this process has just created.
    """
    name = path.name if dir_fd is not None else path
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # Linux reports a symlink opened with O_DIRECTORY | O_NOFOLLOW as ENOTDIR.
        if exc.errno != errno.ENOENT and stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            raise _UnsafeError(f"{path} is a symlink") from None
        raise
    try:
        if make_private:
            os.fchmod(fd, 0o700)
        problem = _owner_problem(os.fstat(fd), _GROUP_OR_OTHER_WRITE)
        if problem is not None:
            raise _UnsafeError(f"{path} {problem}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_ancestors(root: Path) -> None:
    """Every folder above ``root`` is owned by root or the user and is not writable by group or
    others unless sticky; a symlink on the way is owned by root or the user.

    Whoever can change a folder above the root can swap the root for a folder of their own. The
    folders are those of the path as given and those of its real path (a symlink on the way
    leads through folders the given path does not name), as OpenSSH's ``StrictModes`` does.
    """
    uid = os.geteuid()
    real_parent = Path(os.path.realpath(root.parent))
    checked: set[Path] = set()
    for folder in [*root.parents, real_parent, *real_parent.parents]:
        if folder in checked:
            continue
        checked.add(folder)
        link = os.lstat(folder)
        if stat.S_ISLNK(link.st_mode) and link.st_uid not in (0, uid):
            raise _UnsafeError(
                f"{folder}, above it, is a symlink owned by uid {link.st_uid}, "
                f"neither root nor you (uid {uid})"
            )
        info = os.stat(folder)
        if info.st_uid not in (0, uid):
            raise _UnsafeError(
                f"{folder}, above it, is owned by uid {info.st_uid}, neither root nor you "
                f"(uid {uid})"
            )
        if info.st_mode & _GROUP_OR_OTHER_WRITE and not info.st_mode & stat.S_ISVTX:
            raise _UnsafeError(
                f"{folder}, above it, is writable by group or others and not sticky "
                f"(mode {stat.S_IMODE(info.st_mode):04o})"
            )


def _check_contents(root_fd: int, root: Path) -> None:
    """Every folder in the root is the user's and not writable by group or others, nothing in it
    is a symlink (the store makes none), and the secret key file, if any, is private."""
    with os.scandir(root_fd) as listing:
        for entry in listing:
            path = root / entry.name
            if entry.is_symlink():
                raise _UnsafeError(f"{path} is a symlink")
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # another process's temporary file, gone since listed
                continue
            if entry.is_dir(follow_symlinks=False):
                problem = _owner_problem(info, _GROUP_OR_OTHER_WRITE)
            elif entry.name == SECRET_KEY_FILE:
                problem = _secret_key_problem(info)
            else:
                continue
            if problem is not None:
                raise _UnsafeError(f"{path} {problem}")


def _probe_writable(root_fd: int, root: Path) -> bool:
    """Whether a file can be created in the root: for root, the mode bits do not tell."""
    try:
        _unlink_quietly(_write_temp(root_fd, []), root_fd)
    except OSError as exc:
        logger.warning(
            "flowyml cache: %s is not writable (%s); entries are read, none are written", root, exc
        )
        return False
    return True


def _owner_problem(info: os.stat_result, forbidden_mode: int) -> str | None:
    """Why a file or folder of the store cannot be trusted: its owner or its mode, else None."""
    uid = os.geteuid()
    if info.st_uid != uid:
        return f"is owned by uid {info.st_uid}, not by you (uid {uid})"
    if exposed := info.st_mode & forbidden_mode:
        how = "writable" if exposed & _GROUP_OR_OTHER_WRITE else "readable"
        return f"is {how} by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _file_problem(info: os.stat_result, forbidden_mode: int) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    return _owner_problem(info, forbidden_mode)


def _secret_key_problem(info: os.stat_result) -> str | None:
    """A key file that others can read is no secret; one of another size is not ours."""
    problem = _file_problem(info, stat.S_IRWXG | stat.S_IRWXO)
    if problem is None and info.st_size != SECRET_KEY_SIZE:
        problem = f"is {info.st_size} bytes, not {SECRET_KEY_SIZE} (remove it for a new key)"
    return problem


def _corruption(file: io.BufferedReader, size: int) -> str | None:
    """Why the entry open in ``file`` (``size`` bytes) is not intact, else None.

    The size is checked against the header's length first, so a truncated or padded file (a
    sparse 8 GiB one included) is rejected without reading it; the checksum is then computed by
    streaming, never by holding the file in memory.
    """
    header = file.read(_HEADER_SIZE)
    if len(header) < _HEADER_SIZE or not header.startswith(_MAGIC):
        return f"is corrupt (no {_MAGIC.strip().decode()} header)"
    (length,) = _LENGTH.unpack_from(header, len(_MAGIC))
    if size != _HEADER_SIZE + length:
        return f"is corrupt ({size} bytes; its header says {_HEADER_SIZE + length})"
    if hashlib.file_digest(file, "sha256").digest() != header[-_DIGEST_SIZE:]:
        return "is corrupt (checksum mismatch)"
    return None


class _EntryError(Exception):
    """An entry that cannot be loaded; the message is ``"<what> <why>"``."""


def _load_entry(file: io.BufferedReader, size: int, path: Path) -> Any:
    """The outputs in the entry at ``path``, open in ``file`` (``size`` bytes), checksum verified
    first; ``_EntryError`` if it is damaged or cannot be loaded (``MemoryError`` included)."""
    what = f"entry {path}"
    problem = _corruption(file, size)
    if problem is not None:
        raise _EntryError(f"{what} {problem}")
    file.seek(_HEADER_SIZE)
    try:
        return pickle.load(file)
    except Exception as exc:
        raise _EntryError(f"cannot load {what} ({type(exc).__name__}: {exc})") from None


class PinnedEntry:
    """A cache entry held open for the rest of a run, to load its outputs again from it.

    An open file keeps its data whatever happens to its name, so the outputs stay available when
    another process replaces the entry or the cache is cleared meanwhile; the plain runner lets
    go of a large value between its takers and loads it from here (one copy in memory, not two).
    Only entries of a store that passed the ownership checks are pinned, right after this
    process wrote the file or verified its checksum, so a load checks only that the file kept
    its size: changing it in place takes the user's own write access to their private file, and
    hashing it again would cost more than the copy this saves.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self._file = os.fdopen(fd, "rb")
        self.size = os.fstat(fd).st_size

    def load(self) -> Any:
        """A fresh copy of the outputs; ``CacheEntryError`` if they cannot be loaded."""
        size = os.fstat(self._file.fileno()).st_size
        if size != self.size:
            raise CacheEntryError(
                f"flowyml cache: entry {self.path} changed while the run held it "
                f"({size} bytes, was {self.size})"
            )
        self._file.seek(_HEADER_SIZE)
        try:
            return pickle.load(self._file)
        except Exception as exc:  # MemoryError included
            raise CacheEntryError(
                f"flowyml cache: cannot load entry {self.path} ({type(exc).__name__}: {exc})"
            ) from None

    def link(self, path: str | os.PathLike[str]) -> None:
        """Give the entry's file the new name ``path`` (on the same filesystem): its outputs
        stored a second time without being serialised or copied again; read them from there
        with :func:`read_linked_outputs`. ``OSError`` when it cannot (another filesystem, no
        ``/proc``, the entry removed meanwhile)."""
        # ``os.link`` calls ``linkat`` (which can follow the ``/proc`` link to the open file)
        # only when given a folder descriptor; plain ``link`` would try to link the symlink.
        folder, name = os.path.split(os.fspath(path))
        folder_fd = os.open(folder or ".", _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            source = f"/proc/self/fd/{self._file.fileno()}"
            os.link(source, name, dst_dir_fd=folder_fd, follow_symlinks=True)
        finally:
            os.close(folder_fd)

    def close(self) -> None:
        self._file.close()


def read_linked_outputs(file: BinaryIO) -> Any:
    """The outputs in an entry linked elsewhere by :meth:`PinnedEntry.link`, open in ``file``
    at its start; ``None`` when the file is not such an entry (``file`` is then back at its
    start). The place it was linked to vouches for it, as for any file stored there."""
    if file.read(len(_MAGIC)) != _MAGIC:
        file.seek(0)
        return None
    file.seek(_HEADER_SIZE)
    return pickle.load(file)


def _pin(open_fd: Callable[[], int], path: Path, min_bytes: int) -> PinnedEntry | None:
    """The entry ``open_fd`` opens, held as a :class:`PinnedEntry` if its payload has
    ``min_bytes``; ``None`` if it is smaller or cannot be opened (out of file descriptors, say):
    pinning saves memory, and its failure must not cost the entry itself."""
    try:
        fd = open_fd()
    except OSError as exc:
        logger.debug("flowyml cache: cannot hold %s open (%s)", path, exc)
        return None
    if os.fstat(fd).st_size < min_bytes + _HEADER_SIZE:
        os.close(fd)
        return None
    return PinnedEntry(fd, path)


def _read_secret_key(root_fd: int, root: Path) -> bytes | None:
    """The key in the root, ``None`` if there is none; ``_UnsafeError`` if the file is not the
    user's private 32-byte regular file."""
    path = root / SECRET_KEY_FILE
    try:
        fd = os.open(SECRET_KEY_FILE, _READ_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise _UnsafeError(f"{path} is a symlink") from None
        raise
    try:
        problem = _secret_key_problem(os.fstat(fd))
        if problem is not None:
            raise _UnsafeError(f"{path} {problem}")
        key = os.read(fd, SECRET_KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(key) != SECRET_KEY_SIZE:  # changed between fstat and read: only the user can do that
        raise _UnsafeError(f"{path} changed while being read")
    return key


def _create_secret_key(root_fd: int) -> None:
    """Create the key file unless it exists, never overwriting it.

    The key is written to a temporary file and hard-linked into place: the link fails if the
    key exists, and makes the name appear with all 32 bytes, so of processes racing to create
    it, one wins and the others read its key, never a half-written one. fsync'd first: a key
    lost in a crash would leave an empty key file that refuses the store.
    """
    temp = _write_temp(root_fd, [secrets.token_bytes(SECRET_KEY_SIZE)], durable=True)
    try:
        os.link(temp, SECRET_KEY_FILE, src_dir_fd=root_fd, dst_dir_fd=root_fd)
    except FileExistsError:
        pass  # another process won the race: its key is the key
    finally:
        _unlink_quietly(temp, root_fd)


def _write_temp(dir_fd: int, chunks: Iterable[bytes], *, durable: bool = False) -> str:
    """A new temporary file (0600) in ``dir_fd`` holding ``chunks``; its name. Removed again if
    writing fails."""
    name = f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            if durable:
                file.flush()
                os.fsync(fd)
    except BaseException:
        _unlink_quietly(name, dir_fd)
        raise
    return name


class PayloadWriter:
    """The file :meth:`CacheStore.put_streamed` hands its ``dump``: what is written goes to the
    entry's temporary file and into the payload's length and digest (SHA-256), and, for a signed
    entry of ``ObjectCacheStore`` (its own ``magic``), a ``seal``: the header's MAC.

    ``write`` takes any contiguous buffer (``bytes``, a ``memoryview``, the ``PickleBuffer`` of a
    Fortran-ordered array). The first ``_HELD_BACK_BYTES`` are held back, so a small entry is
    written header and all in one go, as before streaming; past that, the file gets a
    placeholder for the header and then every buffer as it comes, copying none of it.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        magic: bytes = _MAGIC,
        digest: PayloadDigest | None = None,
        seal: Callable[[bytes], bytes] | None = None,
        seal_size: int = 0,
    ) -> None:
        self._file = file
        self._magic = magic
        self._digest: PayloadDigest = digest if digest is not None else hashlib.sha256()
        # ``seal`` gets the header (magic, length, digest) and returns ``seal_size`` bytes that
        # end it: the MAC of a signed entry's header, checked before its payload is read.
        self._seal = seal
        self._header_size = len(magic) + _LENGTH.size + self._digest.digest_size + seal_size
        self.length = 0
        self._held: bytearray | None = bytearray()  # None once streaming
        # The file's own failure, told apart from an error of ``dump`` that it turned into
        # another exception (the pickler's error naming the output, say).
        self.error: OSError | None = None

    def write(self, data: bytes | bytearray | memoryview | pickle.PickleBuffer) -> int:
        view = pickle.PickleBuffer(data).raw()  # one flat byte view, in C or Fortran order
        self._digest.update(view)
        self.length += view.nbytes
        if self._held is not None and len(self._held) + view.nbytes <= _HELD_BACK_BYTES:
            self._held += view
            return view.nbytes
        try:
            if self._held is not None:
                self._file.write(bytes(self._header_size))  # the header's place, filled in last
                self._file.write(self._held)
                self._held = None
            self._file.write(view)
        except OSError as exc:
            self.error = exc
            raise
        return view.nbytes

    def finish(self) -> None:
        """Write the header, now that the payload's length and checksum are known."""
        header = self._magic + _LENGTH.pack(self.length) + self._digest.digest()
        if self._seal is not None:
            header += self._seal(header)
        if len(header) != self._header_size:
            raise ValueError(f"a header of {len(header)} bytes, not {self._header_size}")
        if self._held is not None:
            self._file.write(header + self._held)
        else:
            self._file.seek(0)
            self._file.write(header)


def _write_temp_entry(
    dir_fd: int, dump: Callable[[PayloadWriter], object]
) -> tuple[str | None, BaseException | None]:
    """A new temporary file (0600) in ``dir_fd`` holding an entry whose payload ``dump`` writes:
    ``(name, None)``. If ``dump`` raises, ``(None, its exception)``; if writing the file fails,
    the ``OSError``. Either way the file is removed again."""
    name = f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    failure: BaseException | None = None
    try:
        with os.fdopen(fd, "wb") as file:
            writer = PayloadWriter(file)
            try:
                dump(writer)
            except BaseException as exc:
                if writer.error is not None and isinstance(exc, Exception):
                    raise writer.error from exc  # not a KeyboardInterrupt: that goes on
                failure = exc
            else:
                writer.finish()
    except BaseException:
        _unlink_quietly(name, dir_fd)
        raise
    if failure is not None:
        _unlink_quietly(name, dir_fd)
        return None, failure
    return name, None


def _unlink_quietly(name: str, dir_fd: int) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)
