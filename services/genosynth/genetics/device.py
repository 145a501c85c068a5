"""The torch device that array work runs on, and the CPU threads this process may use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The requested device, else CUDA when torch sees one, else the CPU.

    Parameters
    ----------
    requested : a torch device or its name (``"cpu"``, ``"cuda:0"``); ``None`` or ``""`` picks.
    """
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
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_threads() -> int:
    """The process's share of the cores: ``OMP_NUM_THREADS`` when set (the local runner sets it per
    worker), else the cores this process may run on."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
