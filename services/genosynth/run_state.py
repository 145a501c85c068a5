"""Typed run state: the records one step writes for others, read and written only here.

``prep/batches.json`` is the plan of the synthesis fan-out: the SNP batches (contiguous within a
chromosome, with context on each side) and the phenotype column groups. :class:`BatchPlan` is its only
reader and writer, and it validates what it reads, so a damaged or foreign file is one clear error naming
the file instead of a ``KeyError`` deep inside a step. The generated calls of each batch
(``generate/batch-NNNNN/``) are read and written through :func:`write_generated` / :func:`read_generated`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genosynth import run_layout, storage
from genosynth.errors import InputError
from genosynth.genetics.dosages import calls_to_dosages, hard_calls
from genosynth.models.arrays import read_arrays, write_arrays

BATCH_PLAN_SCHEMA = 1
GENERATED_CALLS = "calls.arrays.z"


@dataclass(frozen=True)
class SnpBatch:
    """One SNP batch of ``prep/train``: its own SNPs ``start:stop`` and the context a model may see.

    Attributes
    ----------
    batch : int
        The batch number (its index in the plan).
    chr : str
        The chromosome of every SNP of the batch.
    start, stop : int
        The batch's own SNPs, as indices into the training dataset's variants.
    context_start, context_stop : int
        The wider range (clipped to the run) a model sees, so LD continues across the batch's edges.
    run_start : int
        The first SNP of the contiguous chromosome run holding the batch (where a path model restarts).
    positioned : bool
        Whether the run's SNPs have base-pair positions.
    """

    batch: int
    chr: str
    start: int
    stop: int
    context_start: int
    context_stop: int
    run_start: int
    positioned: bool

    @property
    def n_snps(self) -> int:
        return self.stop - self.start

    def __post_init__(self) -> None:
        if not self.run_start <= self.context_start <= self.start < self.stop <= self.context_stop:
            raise ValueError(
                f"batch {self.batch}: expected run_start <= context_start <= start < stop <= context_stop, "
                f"found {self.run_start}, {self.context_start}, {self.start}, {self.stop}, "
                f"{self.context_stop}"
            )


@dataclass(frozen=True)
class BatchPlan:
    """The SNP batches of a run, in batch order, and its phenotype column groups."""

    batches: tuple[SnpBatch, ...]
    phenotype_groups: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def build(cls, batches: Iterable[Mapping[str, Any]], phenotype_groups: Sequence[Sequence[str]] = ()
              ) -> BatchPlan:
        return cls(tuple(SnpBatch(**dict(b)) for b in batches),
                   tuple(tuple(group) for group in phenotype_groups))

    def __post_init__(self) -> None:
        numbers = [b.batch for b in self.batches]
        if numbers != list(range(len(numbers))):
            raise ValueError(f"batches must be numbered 0..{len(numbers) - 1} in order, found {numbers[:10]}")

    @property
    def numbers(self) -> list[int]:
        return [b.batch for b in self.batches]

    def batch(self, number: int | None, *, source: str = "batch plan") -> SnpBatch:
        """Batch ``number``; an :class:`InputError` naming ``source`` when the plan has no such batch."""
        if number is None or not 0 <= number < len(self.batches):
            raise InputError(source, f"batch {number!r} out of range: the run has batches "
                                     f"0..{len(self.batches) - 1}")
        return self.batches[number]

    def in_genome_order(self) -> list[SnpBatch]:
        return sorted(self.batches, key=lambda b: b.start)

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": BATCH_PLAN_SCHEMA, "batches": [asdict(b) for b in self.batches],
                "phenotype_groups": [list(g) for g in self.phenotype_groups]}

    def write(self, run_url: str) -> None:
        storage.write_json(plan_url(run_url), self.to_json())

    @classmethod
    def read(cls, run_url: str) -> BatchPlan:
        """The run's plan; an :class:`InputError` naming the file when it is missing or malformed."""
        url = plan_url(run_url)
        if not storage.exists(url):
            raise InputError(url, "no batch plan: the prep step has not committed yet")
        document = storage.read_json(url)
        try:
            # Plans written before the schema was versioned are version 1.
            version = document.get("schema_version", BATCH_PLAN_SCHEMA)
            if version != BATCH_PLAN_SCHEMA:
                raise ValueError(f"schema_version {BATCH_PLAN_SCHEMA} expected, found {version!r}")
            return cls.build(document["batches"], document.get("phenotype_groups", []))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(url, f"not a batch plan: {exc}") from exc


def plan_url(run_url: str) -> str:
    return run_layout.url(run_url, run_layout.PREP_BATCHES)


def generated_url(run_url: str, batch: int) -> str:
    """Where generate writes the synthetic calls of one batch."""
    return run_layout.url(run_url, run_layout.batch_key(run_layout.GENERATE, batch))


def write_generated(run_url: str, batch: int, dosages: np.ndarray) -> None:
    """Store one batch's synthetic dosages ``(n_synthetic, n_snps)`` as int8 calls (``-1`` missing)."""
    write_arrays(storage.join(generated_url(run_url, batch), GENERATED_CALLS), {"calls": hard_calls(dosages)})


def read_generated(run_url: str, batch: int) -> np.ndarray:
    """Synthetic dosages of one generated batch, ``(n_synthetic, stop - start)`` float32 with NaN."""
    calls = read_arrays(storage.join(generated_url(run_url, batch), GENERATED_CALLS))["calls"]
    return calls_to_dosages(calls)
