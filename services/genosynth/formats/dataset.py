"""The internal dataset: what every step reads and writes, real or synthetic.

Layout under a dataset URL::

    dataset.json          descriptor: schema version, counts, traits, covariates, column kinds,
                          provenance, checksums (written last: it is the commit marker)
    samples.parquet       id + phenotype and covariate columns, one row per individual
    variants.parquet      id chr pos ref alt quality af, one row per SNP, in genome order
    genotypes/NNNNN.npy.z SNP-major chunks of ``chunk_size`` SNPs, zlib-compressed sequence of three
                          ``.npy`` arrays: ``calls`` int8 (k, n) with ``-1`` for missing, then the exact
                          values of non-integer dosages as a sparse correction (``fix_index`` int64 into
                          the flat (k, n) block, ``fix_value`` float32; empty when all calls are hard).
                          Byte-for-byte deterministic, so reruns reproduce identical objects.

One SNP batch is read by fetching only the chunks that overlap it.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.errors import InputError

SCHEMA_VERSION = 1
DEFAULT_CHUNK_SIZE = 2048
MISSING_CALL = -1
DESCRIPTOR = "dataset.json"
VARIANT_COLUMNS = ["id", "chr", "pos", "ref", "alt", "quality", "af"]
DATASET_KEYS = (DESCRIPTOR, "samples.parquet", "variants.parquet", "genotypes")
#: Keys that mark a run URL (see ``genosynth.run_layout``): a dataset is never written into a run.
RUN_KEYS = ("config.json", "_markers", "_lease.json")
COLUMN_KINDS = ("numeric", "binary", "categorical")


def infer_column_kind(values: pd.Series) -> str:
    """``numeric`` for real-valued columns, ``binary`` for two-valued numeric ones, else ``categorical``."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = pd.unique(values.dropna())
        if len(distinct) <= 2 and set(np.asarray(distinct, dtype=float)) <= {0.0, 1.0}:
            return "binary"
        return "numeric"
    if pd.api.types.is_bool_dtype(values):
        return "binary"
    return "categorical"


@dataclass
class Dataset:
    """A committed internal dataset at ``url``.

    Genotypes come back as dosages ``(n_samples, n_snps)`` float32 in [0, 2] with NaN for missing calls.
    """

    url: str
    descriptor: dict[str, Any]
    _chunk_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, url: str) -> Dataset:
        """Open a committed dataset; an uncommitted or missing one is an :class:`InputError`."""
        descriptor_url = storage.join(url, DESCRIPTOR)
        if not storage.is_committed(descriptor_url):
            raise InputError(url, f"not a genosynth dataset (no committed {DESCRIPTOR})")
        descriptor = storage.read_json(descriptor_url)
        if descriptor.get("schema_version") != SCHEMA_VERSION:
            raise InputError(descriptor_url, f"schema_version {descriptor.get('schema_version')!r}, "
                             f"expected {SCHEMA_VERSION}")
        return cls(url=url, descriptor=descriptor)

    # --- metadata -----------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.descriptor["n_samples"])

    @property
    def n_variants(self) -> int:
        return int(self.descriptor["n_variants"])

    @property
    def traits(self) -> list[str]:
        return list(self.descriptor["traits"])

    @property
    def covariates(self) -> list[str]:
        return list(self.descriptor["covariates"])

    @property
    def column_kinds(self) -> dict[str, str]:
        return dict(self.descriptor["column_kinds"])

    @property
    def chunk_size(self) -> int:
        return int(self.descriptor["chunk_size"])

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.descriptor.get("provenance", {}))

    @cached_property
    def samples(self) -> pd.DataFrame:
        return _read_parquet(storage.join(self.url, "samples.parquet"))

    @cached_property
    def variants(self) -> pd.DataFrame:
        return _read_parquet(storage.join(self.url, "variants.parquet"))

    @property
    def sample_ids(self) -> np.ndarray:
        return self.samples["id"].astype(str).to_numpy()

    def chromosome_slices(self) -> dict[str, slice]:
        """Contiguous SNP index range of each chromosome, in file order."""
        chrom = self.variants["chr"].astype(str).to_numpy()
        out: dict[str, slice] = {}
        start = 0
        for i in range(1, len(chrom) + 1):
            if i == len(chrom) or chrom[i] != chrom[start]:
                out.setdefault(chrom[start], slice(start, i))
                start = i
        return out

    # --- genotypes ----------------------------------------------------------------------------
    def _chunk(self, index: int) -> np.ndarray:
        """Dosages of one stored chunk, SNP-major ``(k, n)`` float32."""
        cached = self._chunk_cache.get(index)
        if cached is not None:
            return cached
        raw = storage.read_bytes(storage.join(self.url, "genotypes", f"{index:05d}.npy.z"))
        stream = io.BytesIO(zlib.decompress(raw))
        calls, fix_index, fix_value = (np.load(stream, allow_pickle=False) for _ in range(3))
        block = calls.astype(np.float32)
        block[calls == MISSING_CALL] = np.nan
        block.reshape(-1)[fix_index] = fix_value
        self._chunk_cache.clear()  # keep memory flat: only the latest chunk is cached
        self._chunk_cache[index] = block
        return block

    def dosages(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Dosages of SNPs ``start:stop`` for all samples, shape ``(n_samples, stop - start)``."""
        stop = self.n_variants if stop is None else min(stop, self.n_variants)
        if not 0 <= start <= stop:
            raise ValueError(f"bad SNP range {start}:{stop} of {self.n_variants}")
        out = np.empty((self.n_samples, stop - start), dtype=np.float32)
        size = self.chunk_size
        for index in range(start // size, (stop - 1) // size + 1 if stop > start else start // size):
            lo, hi = index * size, (index + 1) * size
            block = self._chunk(index)
            a, b = max(lo, start), min(hi, stop)
            out[:, a - start : b - start] = block[a - lo : b - lo].T
        return out

    def iter_dosages(self, batch_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, dosages)`` over all SNPs in batches (default: one stored chunk)."""
        step = batch_size or self.chunk_size
        for start in range(0, self.n_variants, step):
            yield start, self.dosages(start, start + step)

    def phenotypes(self, columns: Sequence[str]) -> pd.DataFrame:
        """The named sample columns; an unknown name is an :class:`InputError`."""
        missing = [c for c in columns if c not in self.samples.columns]
        if missing:
            known = ", ".join(c for c in self.samples.columns if c != "id")
            raise InputError(self.url, f"unknown column {missing[0]!r}; the dataset has: {known}")
        return self.samples[list(columns)]


def check_destination(url: str, *, force: bool = False) -> None:
    """Refuse an output URL a new dataset must not be written to (before anything is written).

    Refused: a path under a regular file or unwritable; a genosynth run folder (always); an existing
    dataset (unless ``force``: it is then replaced whole, old genotype chunks included); a folder holding
    other files (unless ``force``). Leftovers of an import that was killed before its commit are fine.
    """
    storage.check_writable(url)
    keys = set(storage.list_keys(url))
    run_keys = sorted(keys & set(RUN_KEYS))
    if run_keys:
        raise InputError(url, f"is a genosynth run (it holds {run_keys[0]}); a dataset is never written "
                         "into a run: choose another --out")
    if force:
        return
    if DESCRIPTOR in keys:
        raise InputError(url, "a dataset already exists here; pass --force to replace it, or choose "
                         "another --out")
    other = sorted(keys - set(DATASET_KEYS))
    if other:
        raise InputError(url, f"not empty (it holds {other[0]!r}) and not a genosynth dataset; choose an "
                         "empty --out, or pass --force to write the dataset beside those files")


def _read_parquet(url: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(storage.read_bytes(url)))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class DatasetWriter:
    """Stream genotypes into a new dataset, then commit it.

    Feed dosage blocks ``(n_samples, k)`` in SNP order with :meth:`add`; any block width works, chunks
    are re-cut to ``chunk_size``. :meth:`commit` writes the tables and, last, the descriptor. Memory stays
    flat in the number of SNPs.
    """

    def __init__(self, url: str, n_samples: int, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.url = url
        self.n_samples = n_samples
        self.chunk_size = chunk_size
        self._pending: list[np.ndarray] = []
        self._pending_snps = 0
        self._chunks_written = 0
        self._n_variants = 0
        self._has_dosages = False
        self._allele_sum: list[np.ndarray] = []
        self._checksums: dict[str, str] = {}
        # Withdraw any older dataset here, descriptor (its marker) first: a replaced dataset leaves none of
        # its genotype chunks behind.
        storage.uncommit(storage.join(url, DESCRIPTOR), *(storage.join(url, key) for key in DATASET_KEYS
                                                          if key != DESCRIPTOR))

    def add(self, dosages: np.ndarray) -> None:
        dosages = np.asarray(dosages, dtype=np.float32)
        if dosages.ndim != 2 or dosages.shape[0] != self.n_samples:
            raise ValueError(f"dosage block shape {dosages.shape}, expected ({self.n_samples}, k)")
        self._pending.append(dosages)
        self._pending_snps += dosages.shape[1]
        while self._pending_snps >= self.chunk_size:
            self._flush(self.chunk_size)

    def _flush(self, width: int) -> None:
        merged = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
        block, rest = merged[:, :width], merged[:, width:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_snps = rest.shape[1]
        self._write_chunk(np.ascontiguousarray(block.T))

    def _write_chunk(self, snp_major: np.ndarray) -> None:
        missing = np.isnan(snp_major)
        calls = np.where(missing, MISSING_CALL, np.rint(snp_major)).astype(np.int8)
        off = ~missing & (snp_major != calls)
        fix_index = np.flatnonzero(off.reshape(-1)).astype(np.int64)
        fix_value = snp_major.reshape(-1)[fix_index].astype(np.float32)
        self._has_dosages = self._has_dosages or bool(fix_index.size)
        with np.errstate(invalid="ignore"):
            observed = (~missing).sum(axis=1)
            self._allele_sum.append(
                np.where(observed > 0, np.nansum(snp_major, axis=1) / np.maximum(observed, 1) / 2, np.nan)
            )
        buffer = io.BytesIO()
        for array in (calls, fix_index, fix_value):
            np.save(buffer, array, allow_pickle=False)
        key = f"genotypes/{self._chunks_written:05d}.npy.z"
        payload = zlib.compress(buffer.getvalue(), 6)
        storage.write_bytes(storage.join(self.url, key), payload)
        self._checksums[key] = hashlib.sha256(payload).hexdigest()
        self._chunks_written += 1
        self._n_variants += snp_major.shape[0]

    def commit(
        self,
        samples: pd.DataFrame,
        variants: pd.DataFrame,
        *,
        traits: Sequence[str],
        covariates: Sequence[str] = (),
        column_kinds: dict[str, str] | None = None,
        provenance: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Dataset:
        """Write the samples and variants tables, then commit: the descriptor is the marker, written last."""
        if self._pending_snps:
            self._flush(self._pending_snps)
        if len(samples) != self.n_samples:
            raise ValueError(f"{len(samples)} sample rows for {self.n_samples} genotyped samples")
        if len(variants) != self._n_variants:
            raise ValueError(f"{len(variants)} variant rows for {self._n_variants} genotyped SNPs")
        samples = samples.reset_index(drop=True).copy()
        samples["id"] = samples["id"].astype(str)
        variants = _normalise_variants(variants)
        af = np.concatenate(self._allele_sum) if self._allele_sum else np.zeros(0)
        variants["af"] = af.astype(np.float64)
        kinds = dict(column_kinds or {})
        for column in samples.columns:
            if column != "id" and column not in kinds:
                kinds[column] = infer_column_kind(samples[column])
        for name in [*traits, *covariates]:
            if name not in samples.columns:
                raise ValueError(f"trait/covariate {name!r} is not a sample column")
        for key, frame in (("samples.parquet", samples), ("variants.parquet", variants)):
            payload = _parquet_bytes(frame)
            storage.write_bytes(storage.join(self.url, key), payload)
            self._checksums[key] = hashlib.sha256(payload).hexdigest()
        descriptor = {
            "schema_version": SCHEMA_VERSION,
            "n_samples": self.n_samples,
            "n_variants": self._n_variants,
            "chunk_size": self.chunk_size,
            "has_dosages": self._has_dosages,
            "traits": list(traits),
            "covariates": list(covariates),
            "column_kinds": kinds,
            "provenance": provenance or {},
            "checksums": self._checksums,
            **(extra or {}),
        }
        storage.commit(storage.join(self.url, DESCRIPTOR), descriptor)
        return Dataset(url=self.url, descriptor=descriptor)


def _normalise_variants(variants: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"id": variants["id"].astype(str).to_numpy()})
    out["chr"] = variants["chr"].astype(str).to_numpy()
    out["pos"] = pd.array(variants["pos"], dtype="Int64")
    for column in ("ref", "alt"):
        out[column] = variants[column].astype(str).to_numpy() if column in variants else "N"
    out["quality"] = np.asarray(variants["quality"], dtype=np.float64) if "quality" in variants else np.nan
    extra = [c for c in variants.columns if c not in VARIANT_COLUMNS]
    for column in extra:
        out[column] = variants[column].to_numpy()
    return out


def write_dataset(
    url: str,
    samples: pd.DataFrame,
    variants: pd.DataFrame,
    dosages: np.ndarray | Iterable[np.ndarray],
    *,
    traits: Sequence[str],
    covariates: Sequence[str] = (),
    column_kinds: dict[str, str] | None = None,
    provenance: dict[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    extra: dict[str, Any] | None = None,
) -> Dataset:
    """Write a whole dataset: ``dosages`` is ``(n_samples, n_snps)`` or an iterable of SNP blocks."""
    writer = DatasetWriter(url, n_samples=len(samples), chunk_size=chunk_size)
    blocks = [dosages] if isinstance(dosages, np.ndarray) else dosages
    for block in blocks:
        writer.add(block)
    return writer.commit(
        samples, variants, traits=traits, covariates=covariates, column_kinds=column_kinds,
        provenance=provenance, extra=extra,
    )
