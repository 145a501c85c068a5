"""The genotype model interface: every family fits on one SNP batch and samples synthetic genotypes.

A family is one module with a :class:`GenotypeModel` subclass registered in :mod:`genosynth.models`.
The pipeline calls, in order:

- :meth:`GenotypeModel.plan` once in ``prep`` (whole-cohort choices shared by all batches, e.g. a
  switch rate calibrated on the held-out split), saved to ``prep/plan.json``;
- :meth:`GenotypeModel.fit` per batch in ``train`` on the training dosages of the batch with its context;
- :meth:`GenotypeModel.sample` per batch in ``generate``; batches never read each other's outputs, so
  they run in parallel, and continuity across batch edges comes from the shared plan and context.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from genosynth import storage
from genosynth.formats.dataset import Dataset
from genosynth.models.arrays import write_arrays

if TYPE_CHECKING:
    from collections.abc import Sequence

    from genosynth.run_state import SnpBatch

STATE_META = "model.json"
STATE_ARRAYS = "model.arrays.z"


class GenotypeModel(ABC):
    """A fitted genotype model of one SNP batch.

    ``batch`` is a :class:`genosynth.run_state.SnpBatch` of the run's plan: ``start``/``stop`` index the
    SNPs of the batch in ``prep/train``; ``context_start``/``context_stop`` the wider range the model may
    see; ``run_start`` the first SNP of the contiguous chromosome run holding the batch.
    """

    family: ClassVar[str] = ""

    @classmethod
    def plan(
        cls, train: Dataset, holdout: Dataset, batches: Sequence[SnpBatch], *, seed: int,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """Cohort-wide settings shared by all batches (default: only the synthetic cohort size).

        The synthetic cohort has the whole real cohort's size (training + held-out), so its p-values are on
        the real study's scale; ``model_options.n_synthetic`` overrides.
        """
        return {"n_synthetic": int(options.get("n_synthetic", train.n_samples + holdout.n_samples))}

    @classmethod
    @abstractmethod
    def fit(
        cls, dosages: np.ndarray, *, batch: SnpBatch, plan: dict[str, Any], seed: int,
        options: dict[str, Any], device: torch.device,
    ) -> GenotypeModel:
        """Fit on training dosages ``(n_train, context_stop - context_start)`` float, NaN missing."""

    @abstractmethod
    def sample(
        self, n: int, *, batch: SnpBatch, plan: dict[str, Any], seed: int, device: torch.device,
    ) -> np.ndarray:
        """Synthetic dosages ``(n, stop - start)`` float32 (NaN missing) of the batch's own SNPs."""

    @abstractmethod
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able settings and named arrays that :meth:`from_state` rebuilds the model from."""

    @classmethod
    @abstractmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> GenotypeModel:
        """Rebuild a fitted model from :meth:`state`."""

    def save(self, url: str) -> None:
        """Write the arrays, then the JSON settings (read last: it says which family loads them)."""
        meta, arrays = self.state()
        write_arrays(storage.join(url, STATE_ARRAYS), arrays)
        storage.write_text(storage.join(url, STATE_META),
                           json.dumps({"family": self.family, **meta}, indent=2, sort_keys=True) + "\n")


def batch_seed(seed: int, batch: int, stream: int) -> int:
    """A per-batch, per-purpose seed derived from the run seed (stable across machines)."""
    return int(np.random.SeedSequence([seed, batch, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)
