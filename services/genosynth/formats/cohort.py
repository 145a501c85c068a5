"""A parsed cohort held in memory between an importer's parse and its write.

Importers parse and validate everything first (so bad input raises before anything is written), build a
:class:`ParsedCohort`, then :func:`write_cohort` streams it into an internal dataset with the
descriptor written last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.formats.dataset import DEFAULT_CHUNK_SIZE, Dataset, DatasetWriter

INT8_MISSING = -127


@dataclass
class ParsedCohort:
    """Samples, variants and SNP-major genotypes of one cohort.

    Attributes
    ----------
    samples : DataFrame, n rows; ``id`` then phenotype/covariate columns.
    variants : DataFrame, m rows; ``id chr pos ref alt`` (+ ``quality`` and extra columns).
    snp_major : (m, n) dosages of ``alt``: float32 with NaN for missing calls, or int8 hard calls with
        ``INT8_MISSING`` (-127, bed-reader's code) for missing; may be a transposed view of an (n, m) array.
    """

    samples: pd.DataFrame
    variants: pd.DataFrame
    snp_major: np.ndarray
    traits: list[str]
    covariates: list[str] = field(default_factory=list)
    column_kinds: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def take_samples(self, index: np.ndarray) -> ParsedCohort:
        """The cohort restricted to samples ``index`` (genotype order)."""
        return ParsedCohort(
            samples=self.samples.iloc[index].reset_index(drop=True),
            variants=self.variants,
            snp_major=np.ascontiguousarray(self.snp_major[:, index]),
            traits=self.traits,
            covariates=self.covariates,
            column_kinds=self.column_kinds,
            provenance=self.provenance,
        )


def write_cohort(cohort: ParsedCohort, out_url: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Dataset:
    """Write ``cohort`` as an internal dataset at ``out_url`` (descriptor last; cleaned up on failure)."""
    n_samples = len(cohort.samples)
    with storage.staged_output(out_url):
        writer = DatasetWriter(out_url, n_samples=n_samples, chunk_size=chunk_size)
        for start in range(0, cohort.snp_major.shape[0], chunk_size):
            writer.add(as_dosages(cohort.snp_major[start : start + chunk_size].T))
        return writer.commit(
            cohort.samples,
            cohort.variants,
            traits=cohort.traits,
            covariates=cohort.covariates,
            column_kinds=cohort.column_kinds or None,
            provenance=cohort.provenance,
        )


def as_dosages(block: np.ndarray) -> np.ndarray:
    """float32 dosages of a block; int8 hard calls get NaN where they hold ``INT8_MISSING``."""
    if block.dtype == np.int8:
        out = block.astype(np.float32)
        out[block == INT8_MISSING] = np.nan
        return out
    return np.asarray(block, dtype=np.float32)
