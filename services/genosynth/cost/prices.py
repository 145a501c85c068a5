"""Hourly prices per device kind, and what one step attempt costs.

Charging follows OpenCost: a workload pays for the devices it *requested* x wall-clock hours x the
device's hourly rate. GPU steps are charged per GPU-hour (the accelerator only; the host VM's CPU and
memory are billed through the CPU rate of the steps that run there), CPU steps per core-hour.

Device kinds are the values of GKE's ``cloud.google.com/gke-accelerator`` node label for GPUs
(``nvidia-tesla-t4``), and ``cpu`` for CPU cores; a ``-spot`` suffix names the Spot VM price. A run's
``RunConfig.prices`` overrides or extends these defaults (e.g. ``{"nvidia-tesla-t4": 0.14}`` to charge
a pool that only runs Spot T4s).
"""

from __future__ import annotations

from collections.abc import Mapping

from genosynth.errors import InputError

#: Documented defaults in US dollars per device-hour (GKE, us-central1, late 2026 list prices):
#: T4 on demand and Spot (GPU only), and one vCPU of an n1-standard machine with its 3.75 GB of memory.
DEFAULT_PRICES: dict[str, float] = {
    "nvidia-tesla-t4": 0.35,
    "nvidia-tesla-t4-spot": 0.14,
    "cpu": 0.0475,
    "cpu-spot": 0.01,
    # Any accelerator without a price of its own (e.g. a workstation GPU of a local run) is charged at
    # this rate rather than refused after its work is done; set a kind's own price in the run config.
    "gpu": 0.35,
}
FALLBACK_GPU_KIND = "gpu"

#: Reference budget: what the reference study's synthesis cost (80 T4 GPUs x 36 h at ~$0.50/h).
DEFAULT_BUDGET_DOLLARS = 1440.0

CPU_KINDS = frozenset({"cpu", "cpu-spot"})


def is_gpu(device_kind: str) -> bool:
    """True for accelerator kinds (charged per GPU-hour), False for CPU cores."""
    return device_kind not in CPU_KINDS


def price_table(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The defaults with a run's ``prices`` applied on top; every price must be a number >= 0."""
    table = dict(DEFAULT_PRICES)
    for kind, price in (overrides or {}).items():
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise InputError("config.json", f"price must be a number >= 0 dollars per hour, found {price!r}",
                             column=f"prices.{kind}")
        table[str(kind)] = float(price)
    return table


def price_per_hour(device_kind: str, overrides: Mapping[str, float] | None = None) -> float:
    """Dollars per device-hour of ``device_kind``; unlisted accelerators pay the ``gpu`` fallback rate.

    Never zero by omission: an unpriced device would let a run overspend unnoticed.
    """
    table = price_table(overrides)
    return table[price_key(device_kind, table)]


def price_key(device_kind: str, table: Mapping[str, float]) -> str:
    """The key of ``table`` whose price applies to ``device_kind``."""
    if device_kind in table:
        return device_kind
    if not device_kind or device_kind in CPU_KINDS:
        raise InputError("config.json", f"no price for device kind {device_kind!r}; known kinds: "
                         f"{', '.join(sorted(table))}", column="prices")
    return FALLBACK_GPU_KIND


def dollars(seconds: float, device_count: int, price_per_device_hour: float) -> float:
    """Cost of holding ``device_count`` devices for ``seconds`` at ``price_per_device_hour``."""
    return device_count * (seconds / 3600.0) * price_per_device_hour
