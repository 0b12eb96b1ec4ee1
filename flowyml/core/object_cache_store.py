"""The step cache on object storage (S3, GCS, Azure ... through fsspec), and why it may trust
what it loads.

Entries are pickles, and loading a pickle runs code. On a local disk ``CacheStore`` trusts an entry
because only the user could have written it; in a bucket anyone with write access could, and its
permissions cannot be checked from here. So every entry is signed: its header is the magic, the
payload's length and SHA-256, and ``HMAC-SHA256(entry key, magic || length || SHA-256(payload) ||
SHA-256(cache key))``. A reader verifies that MAC (``hmac.compare_digest``) from the header alone,
so a forged entry is rejected before any of its payload is downloaded (a planted huge object costs
one small read); the payload is then checked against the signed SHA-256 as it streams into a local
spool file, and only an entry that passes both is unpickled: ``pickle.load`` never sees a byte of
an unverified payload. Anything else is a miss with a warning. The entry key is derived from
``$FLOWYML_CACHE_SECRET``, shared by every machine using the cache and never written anywhere;
binding the cache key in stops a valid entry from being copied under another key.

An entry is uploaded in one request from a complete local spool file (a PUT, or a multipart upload
that the store publishes only when it completes), so a reader never sees a torn entry under the
final key; a read that races a rewrite and mixes the two fails its signature and is a miss. The
store's other HMAC key, for secret params in cache keys, is derived from the same secret under
another label, instead of a key file in the bucket that anyone reading it would learn.

Memory stays bounded both ways: ``put_streamed`` pickles into a local temporary file, ``get``
spools the object to one (small entries stay in memory). Credentials come from fsspec and the
storage library (``AWS_*`` variables, ``~/.aws``, fsspec's config); none is in the location, which
``resolve_cache_location`` checked, so warnings name the location freely.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

from fsspec import AbstractFileSystem
from fsspec.asyn import AsyncFileSystem
from fsspec.core import url_to_fs

from flowyml.core.cache_store import _HELD_BACK_BYTES, _LENGTH, PayloadWriter

logger = logging.getLogger(__name__)

# Another magic than the local store's: an unsigned local entry copied into a bucket is a miss.
# Version 2 signs the header (with the payload's SHA-256) instead of the payload itself, so a
# forgery is caught before its payload is read; a version 1 entry is a miss.
_SIGNED_MAGIC = b"FLOWYML-SIGNED2\n"
_DIGEST_SIZE = hashlib.sha256().digest_size
_MAC_SIZE = hashlib.sha256().digest_size
_SIGNED_HEADER_SIZE = len(_SIGNED_MAGIC) + _LENGTH.size + _DIGEST_SIZE + _MAC_SIZE
# Labels of the keys derived from the shared secret: one signs entries, one keys secret params.
_ENTRY_KEY_LABEL = b"flowyml cache: entry signatures v1"
_PARAMS_KEY_LABEL = b"flowyml cache: secret params v1"
_CHUNK_BYTES = 1 << 20


class ObjectCacheStore:
    """Step outputs in an fsspec location (``s3://bucket/prefix``), one signed object per cache
    key, under the same shard names as ``CacheStore``.

    ``secret`` is ``$FLOWYML_CACHE_SECRET``'s bytes; only keys derived from it are kept. Nothing
    is checked against the storage when the store is made (making one is cheap and offline); a
    storage that cannot be reached shows as warnings and misses.
    """

    def __init__(self, url: str, secret: bytes) -> None:
        self.location = url
        self.writable = True
        self._fs, root = _open_filesystem(url)
        self._fs_pid = os.getpid()
        self._root = root.rstrip("/")
        self._entry_key = hmac.digest(secret, _ENTRY_KEY_LABEL, "sha256")
        self._params_key = hmac.digest(secret, _PARAMS_KEY_LABEL, "sha256")

    @property
    def _filesystem(self) -> AbstractFileSystem:
        """The store's fsspec filesystem, made again in a forked child (a step's ``timeout``
        runs it in one): an async filesystem of the parent refuses to work after a fork."""
        if self._fs_pid != os.getpid():
            self._fs = _open_filesystem(self.location)[0]
            self._fs_pid = os.getpid()
        return self._fs

    @property
    def secret_key(self) -> bytes:
        """The HMAC key for secret params in cache keys, derived from the shared secret, so
        every worker of this cache takes the same keys and hits."""
        return self._params_key

    def path_for(self, key: str) -> str:
        """The object of ``key``'s entry, as a path of the store's filesystem."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self._root}/{digest[:2]}/{digest}.pkl"

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, outputs)`` on a hit; ``(False, None)`` on a miss, or (with a warning) for an
        entry that is damaged, unsigned or signed with another key, or cannot be read."""
        path = self.path_for(key)
        with tempfile.SpooledTemporaryFile(max_size=_HELD_BACK_BYTES) as spool:
            try:
                with _open_for_reading(self._filesystem, path) as remote:
                    problem = _copy_verified(remote, spool, self._header_mac(key))
            except FileNotFoundError:
                return False, None
            except Exception as exc:  # the storage library's errors are not all OSErrors
                logger.warning(
                    "flowyml cache: cannot read %s (%s); treated as a miss",
                    self._url(path),
                    type(exc).__name__,
                )
                return False, None
            if problem is not None:
                logger.warning(
                    "flowyml cache: entry %s %s; treated as a miss, not loaded",
                    self._url(path),
                    problem,
                )
                return False, None
            spool.seek(0)
            try:
                return True, pickle.load(spool)
            except Exception as exc:  # MemoryError included: a miss, not a failed run
                logger.warning(
                    "flowyml cache: cannot load %s (%s: %s); treated as a miss",
                    self._url(path),
                    type(exc).__name__,
                    exc,
                )
                return False, None

    def get_pinned(self, key: str, min_bytes: int | None) -> tuple[bool, Any, None]:
        """:meth:`get`; an object is never held for a run (its values stay in memory)."""
        hit, outputs = self.get(key)
        return hit, outputs, None

    def put(self, key: str, payload: bytes) -> bool:
        """Store pickled outputs under ``key``; ``False`` (with a warning) if it cannot."""
        return self.put_streamed(key, lambda file: file.write(payload))

    def put_pinned(
        self, key: str, dump: Callable[[PayloadWriter], object], min_bytes: int | None
    ) -> tuple[bool, None]:
        """:meth:`put_streamed`; an object is never held for a run."""
        return self.put_streamed(key, dump), None

    def put_streamed(self, key: str, dump: Callable[[PayloadWriter], object]) -> bool:
        """Store under ``key`` the pickle ``dump`` writes, signed; ``False`` (with a warning) if
        the storage refuses it.

        ``dump`` writes into a local temporary file (the signature taken as the bytes go by),
        which is then uploaded whole: the object appears complete or not at all. What ``dump``
        raises goes to the caller, as with ``CacheStore``.
        """
        path = self.path_for(key)
        try:
            spool = tempfile.NamedTemporaryFile(prefix="flowyml-cache-")  # noqa: SIM115
        except OSError as exc:
            return self._not_cached(path, exc)
        with spool:
            writer = PayloadWriter(
                spool, magic=_SIGNED_MAGIC, seal=self._header_mac(key), seal_size=_MAC_SIZE
            )
            try:
                dump(writer)
            except BaseException as exc:
                if writer.error is None or not isinstance(exc, Exception):
                    raise  # the caller's own error (a value that cannot be pickled)
                return self._not_cached(path, writer.error)
            try:
                writer.finish()
                spool.flush()
                fs = self._filesystem
                fs.put_file(spool.name, path, **_upload_deadline(fs, spool.tell()))
            except Exception as exc:  # the storage library's errors are not all OSErrors
                return self._not_cached(path, exc)
        return True

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)`` held in the store now, whoever wrote them; nothing is loaded."""
        try:
            found = self._filesystem.find(self._root, detail=True)
        except Exception as exc:
            logger.warning("flowyml cache: cannot list %s (%s)", self.location, type(exc).__name__)
            return 0, 0
        finally:
            # A listing is cached by fsspec, and would hide entries written after it from get.
            self._filesystem.invalidate_cache(self._root)
        sizes = [
            int(info.get("size") or 0)
            for name, info in found.items()
            if name.endswith(".pkl") and info.get("type") == "file"
        ]
        return len(sizes), sum(sizes)

    def _not_cached(self, path: str, exc: BaseException) -> bool:
        logger.warning(
            "flowyml cache: cannot write %s (%s: %s); result not cached",
            self._url(path),
            type(exc).__name__,
            exc,
        )
        return False

    def _header_mac(self, key: str) -> Callable[[bytes], bytes]:
        """The MAC of a header (magic, length, payload SHA-256) of ``key``'s entry: it signs the
        payload through its SHA-256, and binds the entry to its cache key."""
        bound = hashlib.sha256(key.encode()).digest()

        def mac(header: bytes) -> bytes:
            return hmac.digest(self._entry_key, header + bound, "sha256")

        return mac

    def _url(self, path: str) -> str:
        return self.location + path[len(self._root) :]


def _copy_verified(
    remote: IO[bytes], spool: IO[bytes], header_mac: Callable[[bytes], bytes]
) -> str | None:
    """Copy the payload of the entry open in ``remote`` into ``spool``; why it is not a valid
    signed entry, else ``None``.

    The header's MAC is verified before any payload is read (a forged entry costs one read of
    its header, however large the object), then the object's size against the header's length
    (a padded object is not downloaded), then the payload's SHA-256 while it is copied, stopping
    at that length.
    """
    header = remote.read(_SIGNED_HEADER_SIZE)
    if len(header) < _SIGNED_HEADER_SIZE or not header.startswith(_SIGNED_MAGIC):
        return f"is not a signed entry (no {_SIGNED_MAGIC.strip().decode()} header)"
    signed, mac = header[:-_MAC_SIZE], header[-_MAC_SIZE:]
    if not hmac.compare_digest(header_mac(signed), mac):
        return (
            "has a signature that does not verify (written without this cache's "
            "FLOWYML_CACHE_SECRET, or altered); its payload was not read"
        )
    (length,) = _LENGTH.unpack_from(header, len(_SIGNED_MAGIC))
    size = getattr(remote, "size", None)
    if size is not None and size != _SIGNED_HEADER_SIZE + length:
        return f"is damaged ({size} bytes; its header says {_SIGNED_HEADER_SIZE + length})"
    digest = hashlib.sha256()
    remaining = length
    while remaining:
        chunk = remote.read(min(remaining, _CHUNK_BYTES))
        if not chunk:
            return f"is damaged (truncated: {length - remaining} of {length} payload bytes)"
        digest.update(chunk)
        spool.write(chunk)
        remaining -= len(chunk)
    if remote.read(1):
        return "is damaged (longer than its header says)"
    if not hmac.compare_digest(digest.digest(), signed[-_DIGEST_SIZE:]):
        return "is damaged or altered (its payload does not match its signed checksum)"
    return None


# How long one S3 request may wait on a server that accepts it and never answers, and how many
# times botocore tries it. s3fs's own retry loop is turned off (``retries = 1``): it would repeat
# botocore's whole retry budget up to 5 times, and 5 x 5 attempts x a 30 s read timeout is over
# twelve minutes on one request, more than a test's 300 s and more than a cache is worth.
S3_CONNECT_TIMEOUT_SECONDS = 5
S3_READ_TIMEOUT_SECONDS = 15
S3_ATTEMPTS = 3
# The most one request costs against a server that stopped answering: every attempt's read
# timeout, plus botocore's "standard" backoff between attempts (at most 1 s, then 2 s).
S3_DEAD_SERVER_SECONDS = S3_ATTEMPTS * S3_READ_TIMEOUT_SECONDS + 3
# An upload or a read is abandoned (the entry not written, or a miss) once it runs below this
# rate, on top of the dead-server bound: the read timeout bounds each wait for the next bytes,
# so a server that stops *reading* a large body, or sends one byte every few seconds, is not
# caught by it. 128 KiB/s is 1 Mbit/s.
_MIN_TRANSFER_BYTES_PER_SECOND = 128 * 1024


def _open_filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem and root path of ``url``, a private instance for S3.

    Private (``skip_instance_cache``): the bounded retries and the session below are set on the
    instance, and must neither leak into other code's filesystem of the same options nor be
    undone by it. In a forked child fsspec's loop and instances of the parent cannot be used; a
    new one is made there (``ObjectCacheStore._filesystem``).
    """
    fs, root = url_to_fs(url, **_client_options(url))
    if _is_s3(url):
        fs.retries = 1  # botocore retries (S3_ATTEMPTS); see S3_DEAD_SERVER_SECONDS
    return fs, root


def _is_s3(url: str) -> bool:
    return url.split("://", 1)[0] in {"s3", "s3a"}


def _client_options(url: str) -> dict[str, Any]:
    """S3 requests bounded in time: a server that stops answering fails each request within
    ``S3_DEAD_SERVER_SECONDS`` (a miss, or an entry not written, with a warning), since a cache
    problem may cost a run time, never the run. Botocore's "standard" retry mode retries
    throttling, 5xx answers and timeouts with backoff, up to ``S3_ATTEMPTS`` tries in all."""
    if not _is_s3(url):
        return {}
    return {
        "skip_instance_cache": True,
        "session": _session_without_expect_continue(),
        "config_kwargs": {
            "connect_timeout": S3_CONNECT_TIMEOUT_SECONDS,
            "read_timeout": S3_READ_TIMEOUT_SECONDS,
            "retries": {"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
        },
    }


def _session_without_expect_continue() -> Any:
    """An aiobotocore session whose S3 uploads do not send ``Expect: 100-continue``.

    Botocore adds that header to every PutObject and UploadPart; aiohttp then sends the headers
    and waits for the server's ``100 Continue`` before the body, and that wait has no timeout:
    its read timeout is armed only once the body is sent. A server that never answers the
    headers (hung, overloaded, or a connection it lost track of) held ``put_file`` for ever
    (the 300 s test timeout in CI, with fsspec's IO loop idle). Without the header the body
    follows at once and the read timeout bounds the wait for the answer.
    """
    from aiobotocore.session import AioSession  # s3fs's dependency: only for s3:// locations

    session = AioSession()
    # Registered after botocore's own handler (at session creation), so it runs after it.
    session.register("before-call.s3", _drop_expect_continue)
    return session


def _drop_expect_continue(params: dict[str, Any], **_: Any) -> None:
    params.get("headers", {}).pop("Expect", None)


def _open_for_reading(fs: AbstractFileSystem, path: str) -> AbstractContextManager[Any]:
    """``path`` open for ``_copy_verified``: an async filesystem's object through
    ``_DeadlineReader``, another's as a file read in blocks of ``_CHUNK_BYTES`` (reading the
    header must not fetch s3fs's default 50 MiB)."""
    if isinstance(fs, AsyncFileSystem):
        return nullcontext(_DeadlineReader(fs, path))
    return fs.open(path, "rb", block_size=_CHUNK_BYTES)


class _DeadlineReader:
    """An object read by byte ranges, all of them within one deadline: the dead-server bound,
    plus the object's size at the slowest rate worth waiting for, as an upload has.

    The read timeout bounds each wait for the next bytes, not a whole request: a server that
    sends one byte every few seconds would hold a file-like read of s3fs for ever. Here each
    request gets the time left before the deadline (fsspec cancels it after that), and a read
    past it raises ``TimeoutError``: the entry is a miss with a warning.
    """

    def __init__(self, fs: AbstractFileSystem, path: str) -> None:
        started = time.monotonic()
        self._fs = fs
        self._path = path
        self.size: int = fs.info(path, timeout=S3_DEAD_SERVER_SECONDS)["size"]
        self._deadline = started + _transfer_seconds(self.size)
        self._position = 0

    def read(self, count: int) -> bytes:
        end = min(self._position + count, self.size)
        if end <= self._position:
            return b""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"reading {self._path} took longer than its deadline")
        data = self._fs.cat_file(self._path, start=self._position, end=end, timeout=left)
        self._position += len(data)
        return data


def _upload_deadline(fs: AbstractFileSystem, size: int) -> dict[str, float]:
    """``put_file``'s ``timeout``, for an async filesystem (fsspec's ``sync`` takes it and
    cancels the upload): the dead-server bound, plus the time the upload takes at the slowest
    rate worth waiting for. Other filesystems take no such argument."""
    if not isinstance(fs, AsyncFileSystem):
        return {}
    return {"timeout": _transfer_seconds(size)}


def _transfer_seconds(size: int) -> float:
    """The longest a read or an upload of ``size`` bytes may take: the dead-server bound plus
    the size at the slowest rate worth waiting for."""
    return S3_DEAD_SERVER_SECONDS + size / _MIN_TRANSFER_BYTES_PER_SECOND
