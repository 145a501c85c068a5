"""The torch device that array work runs on, and the CPU threads this process may use.

torch is imported when a function needs it, so that :func:`cpu_threads` costs nothing to import (the
local runner uses it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The requested device, else CUDA when torch sees one, else the CPU.

    Parameters
    ----------
    requested : a torch device or its name (``"cpu"``, ``"cuda:0"``); ``None`` or ``""`` picks.
    """
    import torch

    if requested is not None and requested != "":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def torch_threads(count: int, device: torch.device) -> Iterator[None]:
    """Run CPU torch work on ``count`` threads (nothing changes on another device).

    Searches made of many small element-wise steps (the REML fits) gain nothing from a second thread and
    lose a lot when the cores are shared: idle threads spin.
    """
    if device.type != "cpu":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_threads() -> int:
    """The process's share of the cores: ``OMP_NUM_THREADS`` when set (the local runner sets it for each
    task it runs), else the cores this process may run on."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def fixed_threads(count: int) -> Iterator[None]:
    """BLAS (every library threadpoolctl sees) and torch on ``count`` threads, and :func:`cpu_threads`
    answering ``count``, restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    before, variable = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(count)
    os.environ["OMP_NUM_THREADS"] = str(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)
        if variable is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = variable


def side_by_side(function: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[function(item) for item in items]``, up to ``threads`` at once on threads of this process.

    numpy and LAPACK release the GIL, so independent array work runs in parallel this way. BLAS is held
    to one thread (process-wide, around the whole map) while they run, so the cores are not
    oversubscribed and each call gives the same bits as alone on one thread.
    """
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(function, items))
