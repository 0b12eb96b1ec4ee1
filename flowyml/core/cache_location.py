"""Where the step cache lives, and which store keeps it there.

A location is a local path or an fsspec URL. A local path (or a ``file://`` URL) is kept by
``CacheStore``, whose trust comes from the folder's ownership and modes. The other supported
protocols (``s3://``, ``gs://``, ``az://`` ..., see ``SUPPORTED_PROTOCOLS``) are kept by
``ObjectCacheStore``: who may write in a bucket
cannot be checked from here, so its entries are signed with ``$FLOWYML_CACHE_SECRET`` and an entry
whose signature does not verify is never unpickled.

A location that cannot be used safely is refused with a ``CacheLocationError`` as soon as a
``Pipeline`` or the Dagster cache resource is built, never turned into something else (a local
folder named ``s3:``). Credentials come from the storage library's usual chain (``AWS_*``
variables, ``~/.aws``, fsspec's config), never from the URL: a URL is printed in warnings and shown
in Dagster, so one with a secret in it is refused, without echoing it.

fsspec is imported only for a URL, so ``import flowyml`` stays fast and a local cache never needs
it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from flowyml.core.cache_store import CACHE_DIR_ENV, CacheStore, default_cache_dir
from flowyml.core.errors import CacheLocationError

if TYPE_CHECKING:
    from flowyml.core.cache_store import PayloadWriter, PinnedEntry

CACHE_SECRET_ENV = "FLOWYML_CACHE_SECRET"
# 32 characters of a random string carry enough entropy for an HMAC key whatever the alphabet
# (hex: 128 bits); ``secrets.token_urlsafe(32)`` gives 43.
MIN_SECRET_LENGTH = 32
# Even 32 characters of a random hex string hold 16 different ones, or as good as.
MIN_SECRET_DISTINCT = 8

_PROTOCOL = re.compile(r"[a-z][a-z0-9+.-]*")
# ``s3:bucket``: a protocol of two letters or more (``C:`` is a Windows drive), then ``:``.
_PROTOCOL_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
# Writable object and file stores. Others fsspec knows (zip, tar, http, ftp, reference,
# filecache ...) pass for a URL yet are read-only, chained or no place for a shared cache.
SUPPORTED_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "file", "local", "memory")
_SUPPORTED_TEXT = ", ".join(f"{protocol}://" for protocol in SUPPORTED_PROTOCOLS)
_AZURE_PROTOCOLS = ("az", "abfs", "abfss")
_AZURE_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
_SECRET_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class StepCache(Protocol):
    """What steps need of a cache, whichever store keeps it.

    ``location`` names it in warnings and metadata (never with credentials); ``secret_key`` keys
    secret params into cache keys; ``get``/``put``/``put_streamed`` never raise for a cache
    problem (a problem costs time, never a run); ``usage`` is ``(entries, bytes)``. The
    ``_pinned`` variants also return the entry held open where the store can (an entry of
    ``min_bytes`` or more on a local disk; ``None`` elsewhere), for the caller to use and close.
    """

    location: str
    writable: bool

    @property
    def secret_key(self) -> bytes: ...

    def get(self, key: str) -> tuple[bool, Any]: ...

    def get_pinned(
        self, key: str, min_bytes: int | None
    ) -> tuple[bool, Any, PinnedEntry | None]: ...

    def put(self, key: str, payload: bytes) -> bool: ...

    def put_streamed(self, key: str, dump: Callable[[PayloadWriter], object]) -> bool: ...

    def put_pinned(
        self, key: str, dump: Callable[[PayloadWriter], object], min_bytes: int | None
    ) -> tuple[bool, PinnedEntry | None]: ...

    def usage(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class CacheLocation:
    """A checked location: a local ``path``, or the ``url`` of an object store (no credentials)."""

    path: Path | None = None
    url: str | None = None

    def __str__(self) -> str:
        return self.url if self.url is not None else str(self.path)


def resolve_cache_location(cache_dir: str | os.PathLike[str] | None = None) -> CacheLocation:
    """``cache_dir``, else ``$FLOWYML_CACHE_DIR``, else the user's cache directory, checked.

    Raises ``CacheLocationError`` for a location that cannot be used: control characters or
    surrounding whitespace in it, a protocol without ``//`` (``s3:bucket``), a URL with
    credentials, a query or a chain in it, a protocol that is not a storage flowyml keeps a cache
    in (see ``SUPPORTED_PROTOCOLS``), a protocol whose fsspec package is not installed (with
    fsspec's own install hint), or a remote location without a usable ``$FLOWYML_CACHE_SECRET``.
    """
    given = os.fspath(cache_dir) if cache_dir is not None else os.environ.get(CACHE_DIR_ENV, "")
    _check_text(given)
    if "://" not in given:
        _refuse_protocol_without_slashes(given)
        local = Path(given).expanduser() if given else default_cache_dir()
        return CacheLocation(path=local.absolute())
    protocol, _, rest = given.partition("://")
    protocol = protocol.lower()
    if not _PROTOCOL.fullmatch(protocol) or "::" in rest:
        raise CacheLocationError(
            f"cache location '{protocol.partition('::')[0]}://...' is not a URL flowyml can use: "
            "give a local path or one storage URL such as s3://bucket/prefix (chained fsspec "
            "URLs, with '::', are not supported)"
        )
    if protocol not in SUPPORTED_PROTOCOLS:
        raise CacheLocationError(
            f"cache location protocol '{protocol}://' is not a storage flowyml can keep a cache "
            f"in; supported: {_SUPPORTED_TEXT}, or a local path"
        )
    if "@" in rest and not _is_azure_account_form(protocol, rest):
        # Not parsed for user and password: an AWS secret may hold "/" and split anywhere, and
        # a token may follow the last "@" as well, so nothing of the location is echoed.
        raise CacheLocationError(
            f"cache location {protocol}://<hidden> has credentials in it (an '@'); a cache "
            "location is shown in logs and in Dagster, so it must not carry them: give the "
            f"location without them and the credentials {_credential_hint(protocol)}"
        )
    parts = urlsplit(f"{protocol}://{rest}")
    if parts.query or parts.fragment:
        raise CacheLocationError(
            f"cache location {protocol}://{parts.netloc}{parts.path} has a query or fragment; "
            "give storage options through fsspec's configuration, not the URL"
        )
    if protocol in ("file", "local"):
        if parts.netloc not in ("", "localhost"):
            raise CacheLocationError(
                f"cache location {protocol}://{parts.netloc}{parts.path} names another host"
            )
        return CacheLocation(path=Path(unquote(parts.path)).expanduser().absolute())
    url = f"{protocol}://{parts.netloc}{parts.path}".rstrip("/")
    if not (parts.netloc + parts.path).strip("/"):
        raise CacheLocationError(f"cache location {url} names no bucket or folder")
    _check_protocol(protocol)
    cache_secret(url)
    return CacheLocation(url=url)


def _check_text(given: str) -> None:
    """Refuse control characters and surrounding whitespace: dropping them silently could make
    two workers given slightly different text use two different caches. Nothing is echoed."""
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in given):
        raise CacheLocationError(
            "cache location has a control character in it (a newline, a tab ...); give the "
            "location without it"
        )
    if given != given.strip():
        raise CacheLocationError(
            "cache location has leading or trailing whitespace; give the location without it"
        )


def _refuse_protocol_without_slashes(given: str) -> None:
    """``s3:bucket`` or ``s3:/bucket/x`` would become a local folder named ``s3:``: a prefix
    that is a storage protocol, without ``//``, is refused. fsspec is imported only then."""
    match = _PROTOCOL_PREFIX.match(given)
    if match is None:
        return
    protocol = match.group(1).lower()
    known = protocol in SUPPORTED_PROTOCOLS
    if not known:
        try:
            from fsspec.registry import known_implementations
        except ImportError:
            return
        known = protocol in known_implementations
    if known:
        rest = given[match.end() :].lstrip("/")
        shown = "<hidden>" if "@" in rest else rest
        raise CacheLocationError(
            f"cache location '{protocol}:...' looks like a storage URL without '//', which "
            f"would become a local folder named '{protocol}:'; did you mean "
            f"{protocol}://{shown}?"
        )


def _is_azure_account_form(protocol: str, rest: str) -> bool:
    """``abfs://container@account.dfs.core.windows.net/path``: Azure's own form, where the
    ``@`` names the storage account, not a user."""
    if protocol not in _AZURE_PROTOCOLS:
        return False
    netloc, _, path = rest.partition("/")
    container, _, account = netloc.partition("@")
    return (
        "@" not in path
        and _AZURE_CONTAINER.fullmatch(container) is not None
        and _HOST_NAME.fullmatch(account) is not None
    )


def _credential_hint(protocol: str) -> str:
    if protocol in ("s3", "s3a"):
        return (
            "the usual way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, an instance "
            "role, or fsspec's configuration)"
        )
    if protocol in ("gs", "gcs"):
        return (
            "the usual way (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default "
            "credentials, or fsspec's configuration)"
        )
    if protocol in _AZURE_PROTOCOLS:
        return (
            "the usual way (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or "
            "AZURE_STORAGE_CONNECTION_STRING, Azure's default credential chain, or fsspec's "
            "configuration)"
        )
    return "through fsspec's configuration"


def open_cache_store(cache_dir: str | os.PathLike[str] | None = None) -> StepCache:
    """The store for ``cache_dir`` (see :func:`resolve_cache_location`, whose errors it raises)."""
    location = resolve_cache_location(cache_dir)
    if location.url is None:
        return CacheStore(location.path)
    from flowyml.core.object_cache_store import ObjectCacheStore

    return ObjectCacheStore(location.url, cache_secret(location.url))


def cache_secret(url: str) -> bytes:
    """``$FLOWYML_CACHE_SECRET``, which a cache at ``url`` needs to sign and verify its entries.

    Refused, naming the variable and never echoing it: unset, shorter than
    ``MIN_SECRET_LENGTH``, with leading or trailing whitespace (a mounted secret file's trailing
    newline on only some workers would make them sign with another key, so every read a miss;
    it is not stripped, since a worker that got it without would disagree), or with fewer than
    ``MIN_SECRET_DISTINCT`` different characters (``"a" * 40`` is no random string).
    """
    secret = os.environ.get(CACHE_SECRET_ENV, "")
    if not secret:
        problem = "is not set"
    elif secret != secret.strip():
        problem = (
            "has leading or trailing whitespace (a trailing newline from a mounted secret "
            "file?), which is part of the key and is not stripped: every worker must use the "
            "same bytes. Remove it"
        )
    elif len(secret) < MIN_SECRET_LENGTH:
        problem = f"is shorter than {MIN_SECRET_LENGTH} characters"
    elif len(set(secret)) < MIN_SECRET_DISTINCT:
        problem = f"has fewer than {MIN_SECRET_DISTINCT} different characters"
    else:
        return secret.encode()
    raise CacheLocationError(
        f"{CACHE_SECRET_ENV} {problem}: the cache at {url} signs its entries with it, so "
        "that nobody who can write to the storage can make a worker unpickle their code. Set "
        f"it to the same random string of at least {MIN_SECRET_LENGTH} characters wherever "
        f"this cache is used, e.g. from: {_SECRET_HINT}"
    )


def _check_protocol(protocol: str) -> None:
    """fsspec knows ``protocol`` and its package is installed; else say what to install, in
    fsspec's own words."""
    try:
        import fsspec
        from fsspec.registry import known_implementations
    except ImportError:
        raise CacheLocationError(
            f"a cache at a {protocol}:// URL needs fsspec: pip install 'flowyml-dagster[deploy]'"
        ) from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise CacheLocationError(
            f"cache location protocol '{protocol}://' is unknown to the installed fsspec "
            f"(version {fsspec.__version__}); supported: {_SUPPORTED_TEXT}"
        ) from None
    except ImportError:
        known = known_implementations.get(protocol, {})
        package = str(known.get("class", protocol)).partition(".")[0]
        hint = known.get("err") or f"Install {package}"
        raise CacheLocationError(
            f"a cache at a {protocol}:// URL needs the package {package}, which is not "
            f"installed: {hint}"
        ) from None
