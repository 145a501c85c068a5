"""Object storage behind fsspec URLs: local paths, ``file://``, ``memory://`` and ``gs://``.

Every step reads and writes through this module. Outputs are committed atomically the object-store way:
data objects are written under their final keys first and a small marker object is written last, and
readers trust an output only once its marker exists. Transient errors are retried with backoff.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec

T = TypeVar("T")

MARKER_NAME = "_COMMITTED"
_TRANSIENT = (ConnectionError, TimeoutError, OSError)
_RETRY_ATTEMPTS = 5


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


def with_retries(action: Callable[[], T], *, what: str, attempts: int = _RETRY_ATTEMPTS) -> T:
    """Run ``action``, retrying transient storage errors with jittered exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except FileNotFoundError:
            raise
        except _TRANSIENT:
            if attempt == attempts:
                raise
            time.sleep(min(8.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random()))
    raise AssertionError(f"unreachable: {what}")


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return with_retries(lambda: fs.exists(path), what=f"exists {url}")


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return with_retries(lambda: fs.cat_file(path), what=f"read {url}")


def write_bytes(url: str, data: bytes) -> None:
    """Write one object. Parent folders are created where the filesystem has them."""
    fs, path = filesystem(url)

    def _write() -> None:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and is_local(fs):
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as handle:
            handle.write(data)

    with_retries(_write, what=f"write {url}")


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
    return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)


def remove(url: str) -> None:
    """Remove an object or a folder of objects; missing is fine."""
    fs, path = filesystem(url)
    with contextlib.suppress(FileNotFoundError):
        with_retries(lambda: fs.rm(path, recursive=True), what=f"remove {url}")


def marker_url(output_url: str) -> str:
    return join(output_url, MARKER_NAME)


def is_committed(output_url: str) -> bool:
    """True once the output under ``output_url`` has been committed (its marker exists)."""
    return exists(marker_url(output_url))


def commit(output_url: str, manifest: dict[str, Any] | None = None) -> None:
    """Mark the output under ``output_url`` complete. Call only after every data object is written."""
    write_json(marker_url(output_url), {"committed_at": time.time(), **(manifest or {})})


def read_manifest(output_url: str) -> dict[str, Any]:
    return read_json(marker_url(output_url))


def uncommit(output_url: str) -> None:
    """Remove the marker first, then the data: a reader never sees a committed partial output."""
    remove(marker_url(output_url))
    remove(output_url)


def open_input(url: str, mode: str = "rb") -> io.IOBase:
    """Open a file for streaming reads (handles ``.gz`` by extension)."""
    compression = "infer"
    return fsspec.open(url, mode, compression=compression).open()
