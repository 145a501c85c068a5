"""One ``genosynth run`` per run URL: a lease object ``RUN/_lease.json`` with heartbeat and expiry.

The lease is created only if absent (:func:`genosynth.storage.create`: ``O_EXCL`` locally,
``ifGenerationMatch=0`` on GCS), so of two runs started on one URL exactly one holds it. The holder
rewrites ``heartbeat_at`` every ``ttl / 4`` seconds from a background thread and removes the lease when it
ends. A lease is stale, and may be taken over, when its heartbeat is older than its ``ttl_seconds``, or at
once when its holder was a process of this host that no longer exists (a run killed with SIGKILL is
resumed without waiting for the expiry). A second run finding a live lease waits up to ``wait`` seconds
for it and then exits with :class:`RunBusyError` naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from genosynth import run_layout, storage

DEFAULT_TTL_SECONDS = 60.0
POLL_SECONDS = 1.0


class RunBusyError(RuntimeError):
    """Another ``genosynth run`` holds the run URL's lease."""

    exit_code = 5


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_stale(document: dict[str, Any], *, now: float, host: str) -> bool:
    """True when the lease ``document`` no longer protects a live run (see the module notes)."""
    try:
        heartbeat = float(document["heartbeat_at"])
        ttl = float(document["ttl_seconds"])
    except (KeyError, TypeError, ValueError):
        return True  # not a lease genosynth wrote
    if now - heartbeat > ttl:
        return True
    return document.get("host") == host and _process_gone(int(document.get("pid", -1)))


@dataclass
class Lease:
    """A held lease; :meth:`release` it (or use it as a context manager)."""

    run_url: str
    owner: str
    ttl: float
    document: dict[str, Any]
    lost: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return run_layout.url(self.run_url, run_layout.LEASE)

    def alive(self) -> bool:
        return not self.lost.is_set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                current = storage.read_json(self.url)
            except (FileNotFoundError, ValueError):
                current = {}
            if current.get("owner") != self.owner:
                self.lost.set()  # taken over (we missed heartbeats for a whole ttl) or removed
                return
            self.document = {**self.document, "heartbeat_at": time.time()}
            try:
                storage.write_json(self.url, self.document)
            except OSError:
                continue  # the next beat tries again; expiry is ttl, four beats away

    def start(self) -> Lease:
        self._thread = threading.Thread(target=self._heartbeat, name="genosynth-lease", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            if storage.read_json(self.url).get("owner") == self.owner:
                storage.remove(self.url)
        except (FileNotFoundError, ValueError):
            pass

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire(run_url: str, *, wait: float = 0.0, ttl: float = DEFAULT_TTL_SECONDS) -> Lease:
    """Take the run URL's lease, waiting up to ``wait`` seconds for a live holder to finish.

    Raises
    ------
    RunBusyError
        A live lease is still held after ``wait`` seconds; the message names its host, pid and heartbeat.
    """
    url = run_layout.url(run_url, run_layout.LEASE)
    host = socket.gethostname()
    owner = f"{host}:{os.getpid()}:{uuid.uuid4().hex}"
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        now = time.time()
        document = {"owner": owner, "host": host, "pid": os.getpid(), "acquired_at": now,
                    "heartbeat_at": now, "ttl_seconds": ttl}
        if storage.create(url, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()):
            # Read back: a store that ignored the create-only precondition would let a racer overwrite.
            if storage.read_json(url).get("owner") == owner:
                return Lease(run_url, owner, ttl, document).start()
            continue
        try:
            holder = storage.read_json(url)
        except FileNotFoundError:
            continue  # released in between: try again
        except ValueError:
            holder = {}
        if is_stale(holder, now=time.time(), host=host):
            _break(url, holder)
            continue
        if time.monotonic() >= deadline:
            age = time.time() - float(holder.get("heartbeat_at", 0.0))
            raise RunBusyError(
                f"{run_url}: another `genosynth run` is running on this run URL (host {holder.get('host')}, "
                f"pid {holder.get('pid')}, last heartbeat {age:.0f} s ago); wait for it to finish, or pass "
                f"--wait SECONDS to queue behind it"
            )
        time.sleep(POLL_SECONDS)


def _break(url: str, stale: dict[str, Any]) -> None:
    """Remove a stale lease unless someone replaced it meanwhile (then the caller retries)."""
    try:
        if storage.read_json(url).get("owner") != stale.get("owner"):
            return
    except FileNotFoundError:
        return
    except ValueError:
        pass
    fs, path = storage.filesystem(url)
    if storage.is_local(fs):
        # Rename is atomic: of two runs breaking the same stale lease, one moves it and the other fails.
        aside = f"{path}.stale-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, encoding="utf-8") as handle:
                moved = json.loads(handle.read())
        except ValueError:
            moved = {}
        if moved.get("owner") != stale.get("owner"):
            # A racer broke the stale lease first and took a fresh one: put theirs back.
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        os.remove(aside)
    else:
        storage.remove(url)
