"""Object storage behind fsspec URLs: local paths, ``file://``, ``memory://`` and ``gs://``.

Every step reads and writes through this module. Outputs are committed atomically the object-store way
(the commit protocol, :func:`commit`): data objects are written under their final keys first and a small
marker object is written last, and readers trust an output only once its marker exists.

- Every object is written whole or not at all: object stores publish an upload only when it completes;
  on a local filesystem the bytes go to a hidden temporary file beside the key (``.<name>.tmp-<id>``)
  that is renamed onto the key once flushed, so a kill between open and write never leaves a torn
  object under a key a reader trusts.
- :func:`create` writes an object only if the key is free (``O_EXCL`` locally, ``ifGenerationMatch=0`` on
  GCS): the primitive behind the run lease and the attempt records.
- Transient errors (timeouts, connection resets, HTTP 429 and 5xx) are retried with jittered exponential
  backoff (tenacity); anything else, a ``PermissionError``, ``FileNotFoundError`` or
  ``NotADirectoryError`` included, fails at once.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, TypeVar

import fsspec
import tenacity

T = TypeVar("T")

TEMP_TAG = ".tmp-"  # hidden temporary files of local writes: ``.<name>.tmp-<id>``
_RETRY_ATTEMPTS = 5
_TRANSIENT_ERRNOS = frozenset({errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED,
                               errno.EPIPE, errno.EAGAIN, errno.ENETUNREACH, errno.EHOSTUNREACH})
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})


def _configure_gcs() -> None:
    # gcsfs probes each bucket's hierarchical-namespace layout over gRPC; emulators do not serve it and
    # the probe would stall for a minute per bucket.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def join(url: str, *parts: str) -> str:
    """Join ``url`` with key parts using ``/`` (works for local paths and object-store URLs alike)."""
    out = url.rstrip("/")
    for part in parts:
        part = str(part).strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the fsspec filesystem for ``url`` and the path inside it."""
    if url.startswith("gs://") or url.startswith("gcs://"):
        _configure_gcs()
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: timeouts, connection resets, HTTP 408/429/5xx.

    Permission, not-found, not-a-directory and every other error are permanent: retrying cannot help.
    """
    if isinstance(error, (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                          FileExistsError)):
        return False
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    code = getattr(error, "code", None) or getattr(error, "status", None)
    if isinstance(code, int) and code in _TRANSIENT_HTTP:
        return True
    if type(error).__name__ in ("ClientConnectionError", "ServerDisconnectedError", "ClientOSError"):
        return True  # aiohttp (gcsfs) connection failures
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS


def with_retries(action: Callable[[], T], *, what: str, attempts: int = _RETRY_ATTEMPTS) -> T:
    """Run ``action``, retrying transient storage errors (:func:`is_transient`) with jittered backoff."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=0.2, max=8.0),
        reraise=True,
    )
    return retrying(action)


def check_writable(url: str, *, what: str = "--out") -> None:
    """Refuse, before anything is written, an output URL that cannot be a folder of objects.

    Locally: the nearest existing ancestor must be a writable folder (an ``--out`` under a regular file,
    or in a read-only place, is refused); an existing ``url`` must be a folder. Object stores have no such
    cases; their permission errors surface (at once, without retries) on the first write.
    """
    from genosynth.errors import InputError

    fs, path = filesystem(url)
    if not is_local(fs):
        return
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(url, f"{what} is a file; expected a folder (or a path that does not exist yet)")
    ancestor = path
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise InputError(url, f"{what} is under {ancestor}, which is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(url, f"{what}: {ancestor} is not writable")


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return with_retries(lambda: fs.exists(path), what=f"exists {url}")


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return with_retries(lambda: fs.cat_file(path), what=f"read {url}")


def write_bytes(url: str, data: bytes) -> None:
    """Write one object whole (see the module notes). Parent folders are created where the filesystem
    has them."""
    fs, path = filesystem(url)
    if is_local(fs):
        with_retries(lambda: _write_local(path, data, exclusive=False), what=f"write {url}")
    else:
        with_retries(lambda: fs.pipe_file(path, data), what=f"write {url}")


def create(url: str, data: bytes) -> bool:
    """Write ``url`` only if no object is there; False (nothing written) when one already is.

    Locally the whole object is written to a temporary file and linked onto the key (``link`` fails when
    the key exists); on GCS the upload carries ``ifGenerationMatch=0``. Readers never see a partial object.
    """
    fs, path = filesystem(url)
    if is_local(fs):
        return with_retries(lambda: _write_local(path, data, exclusive=True), what=f"create {url}")
    if fs.exists(path):
        return False
    try:
        with_retries(lambda: fs.pipe_file(path, data, mode="create"), what=f"create {url}")
    except FileExistsError:
        return False
    except OSError as error:
        if getattr(error, "code", None) == 412 or "412" in str(error):  # precondition failed: taken
            return False
        raise
    return True


def _local_temp(path: str) -> str:
    """A fresh hidden temporary path beside ``path`` (its folder created)."""
    parent, _, name = path.rpartition("/")
    if parent:
        os.makedirs(parent, exist_ok=True)
    return f"{parent}/.{name}{TEMP_TAG}{uuid.uuid4().hex[:12]}" if parent else f".{name}{TEMP_TAG}x"


@contextlib.contextmanager
def open_output(url: str) -> Iterator[IO[bytes]]:
    """Stream one object to ``url``, published whole when the block ends and not at all when it raises
    (locally: a temporary file renamed onto the key; object stores: the upload is discarded)."""
    fs, path = filesystem(url)
    if is_local(fs):
        temp = _local_temp(path)
        try:
            with open(temp, "wb") as handle:
                yield handle
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)
        return
    existed = fs.exists(path)
    handle = fs.open(path, "wb")
    try:
        yield handle
    except BaseException:
        discard = getattr(handle, "discard", None)
        if discard is not None:
            discard()
        # A filesystem that publishes at open (fsspec's memory://) leaves the partial object: remove it
        # unless an object was there before.
        if not existed and fs.exists(path):
            fs.rm(path)
        raise
    handle.close()


def _write_local(path: str, data: bytes, *, exclusive: bool) -> bool:
    temp = _local_temp(path)
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        if not exclusive:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


def read_json(url: str) -> Any:
    return json.loads(read_text(url))


def write_json(url: str, obj: Any) -> None:
    write_text(url, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def list_keys(url: str) -> list[str]:
    """Names directly under ``url`` (empty when it does not exist)."""
    fs, path = filesystem(url)
    try:
        entries = with_retries(lambda: fs.ls(path, detail=False), what=f"list {url}")
    except FileNotFoundError:
        return []
    names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
    return sorted(n for n in names if not (n.startswith(".") and TEMP_TAG in n))


def remove(url: str) -> None:
    """Remove an object or a folder of objects; missing is fine."""
    fs, path = filesystem(url)
    with contextlib.suppress(FileNotFoundError):
        with_retries(lambda: fs.rm(path, recursive=True), what=f"remove {url}")


# --- the commit protocol ----------------------------------------------------------------------------
# One protocol for every output, a step's or a dataset's: the data objects are written first, under their
# final keys, and one marker object last (:func:`commit`); a reader trusts the output only once the marker
# exists (:func:`is_committed`); replacing an output removes the marker first (:func:`uncommit`), so no
# reader ever sees a committed partial output. Each kind of output names its marker: a pipeline step's is
# ``RUN/_markers/<step>[-NNNNN].json`` (``pipeline.marker_url``), a dataset's is its descriptor
# ``dataset.json``. :func:`staged_output` guards a new output against a writer that fails part-way.
def commit(marker: str, record: Mapping[str, Any]) -> None:
    """Commit an output whose data objects are all written: write its marker ``record`` (JSON) last.

    Keys keep the caller's order (a dataset descriptor reads top-down); the bytes depend only on
    ``record``, so a deterministic record commits identical bytes on every rerun.
    """
    write_text(marker, json.dumps(dict(record), indent=2, default=_json_default) + "\n")


def is_committed(marker: str) -> bool:
    """True once the output whose marker is ``marker`` has been committed."""
    return exists(marker)


def read_commit(marker: str) -> dict[str, Any]:
    """The record a committed output's marker holds."""
    return read_json(marker)


def uncommit(marker: str, *data: str) -> None:
    """Withdraw an output: remove its marker first, then its data objects (missing ones are fine)."""
    remove(marker)
    for url in data:
        remove(url)


@contextlib.contextmanager
def staged_output(url: str) -> Iterator[None]:
    """Guard a new output folder: if writing fails part-way, remove what this writer created.

    Importers parse and validate their inputs before entering this block, so a failure here is rare
    (storage errors); the guard keeps the promise that a failed command leaves nothing under ``--out``.
    Content that was at ``url`` before is left alone.
    """
    existed = exists(url) and bool(list_keys(url))
    try:
        yield
    except BaseException:
        if not existed:
            remove(url)
        raise


def open_input(url: str, mode: str = "rb") -> io.IOBase:
    """Open a file for streaming reads (handles ``.gz`` by extension)."""
    compression = "infer"
    return fsspec.open(url, mode, compression=compression).open()
