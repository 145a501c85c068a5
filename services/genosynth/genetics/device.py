"""The torch device that array work runs on."""

from __future__ import annotations

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
