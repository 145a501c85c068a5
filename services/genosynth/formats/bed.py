"""PLINK 1 ``.bed`` (SNP-major) streamed by SNP block from any fsspec URL (local, ``file://``, ``gs://``).

A ``.bed`` is 3 magic bytes ``6c 1b 01`` then one record of ``ceil(n / 4)`` bytes per SNP; each byte
holds 4 samples, 2 bits each, lowest bits first. With A1 counted (PLINK's and GEMMA's dosage) the codes
are ``00`` -> 2, ``01`` -> missing, ``10`` -> 1, ``11`` -> 0. Padding bits after the last sample are 0.

Reading SNPs ``start:stop`` is one ranged read of ``(stop - start) * ceil(n / 4)`` bytes, so memory is
that block's, whatever the file's size; writing appends one block of records at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from genosynth import storage
from genosynth.errors import InputError

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
MISSING = -1
# Dosage of A1 for each 2-bit code (00, 01, 10, 11).
_CODE_TO_DOSAGE = np.array([2, MISSING, 1, 0], dtype=np.int8)
# 2-bit code of each dosage 0, 1, 2 and of a missing call (index 3).
_DOSAGE_TO_CODE = np.array([3, 2, 0, 1], dtype=np.uint8)
# Every byte decoded once: (256, 4) dosages of its 4 samples.
_BYTE_TABLE = _CODE_TO_DOSAGE[(np.arange(256)[:, None] >> (2 * np.arange(4))[None, :]) & 3]


def record_bytes(n_samples: int) -> int:
    """Bytes per SNP record of a ``.bed`` with ``n_samples`` samples."""
    return (n_samples + 3) // 4


def decode(records: np.ndarray, n_samples: int) -> np.ndarray:
    """SNP records to dosages.

    Parameters
    ----------
    records : (m, ceil(n / 4)) uint8, one ``.bed`` record per SNP
    n_samples : n

    Returns
    -------
    (m, n) int8 count of A1, ``-1`` for a missing call
    """
    return _BYTE_TABLE[records].reshape(records.shape[0], -1)[:, :n_samples]


def encode(snp_major: np.ndarray) -> np.ndarray:
    """Dosages to SNP records (padding bits 0).

    Parameters
    ----------
    snp_major : (m, n) hard calls 0/1/2 (any numeric dtype); NaN or negative values are missing

    Returns
    -------
    (m, ceil(n / 4)) uint8
    """
    m, n = snp_major.shape
    values = np.asarray(snp_major, dtype=np.float32)
    index = np.where(np.isnan(values) | (values < 0), 3, np.clip(np.rint(np.nan_to_num(values)), 0, 2))
    codes = _DOSAGE_TO_CODE[index.astype(np.int64)]
    width = record_bytes(n)
    padded = np.zeros((m, width * 4), dtype=np.uint8)
    padded[:, :n] = codes  # the padding stays code 00: PLINK writes zero bits there
    quads = padded.reshape(m, width, 4)
    packed = quads[..., 0] | (quads[..., 1] << 2) | (quads[..., 2] << 4) | (quads[..., 3] << 6)
    return packed.astype(np.uint8)


class BedReader:
    """Ranged reads of SNP blocks from a ``.bed`` at a local path or fsspec URL.

    Checks the magic bytes and the exact size ``3 + m * ceil(n / 4)`` on open; the padding bits of the
    last byte of every record are checked block by block as they are read (set padding means the
    ``.bed`` holds more samples than the ``.fam`` lists).
    """

    def __init__(self, url: str, n_samples: int, n_snps: int, *, fam: str = ".fam"):
        self.url, self.n_samples, self.n_snps, self.fam = url, n_samples, n_snps, fam
        self.width = record_bytes(n_samples)
        if not storage.exists(url):
            raise InputError(url, "file not found")
        fs, path = storage.filesystem(url)
        self._fs, self._path = fs, path
        found = int(fs.size(path))
        self._handle: IO[bytes] = fs.open(path, "rb")
        magic = self._handle.read(3)
        if magic != BED_MAGIC:
            self.close()
            raise InputError(url, f"not a SNP-major PLINK 1 .bed (expected magic bytes 6c 1b 01, found "
                             f"{magic.hex(' ') or 'nothing'})")
        expected = 3 + n_snps * self.width
        if found != expected:
            self.close()
            state = "truncated" if found < expected else "too long"
            raise InputError(url, f"{state}: expected {expected} bytes for {n_samples} samples x {n_snps} "
                             f"SNPs, found {found}")

    def records(self, start: int, stop: int) -> np.ndarray:
        """Raw records of SNPs ``start:stop``, (stop - start, ceil(n / 4)) uint8."""
        self._handle.seek(3 + start * self.width)
        raw = self._handle.read((stop - start) * self.width)
        block = np.frombuffer(raw, dtype=np.uint8).reshape(stop - start, self.width)
        used = self.n_samples % 4
        if used and len(block):
            padded = int(np.count_nonzero(block[:, -1] & np.uint8((0xFF << (2 * used)) & 0xFF)))
            if padded:
                raise InputError(self.url, f"padding bits are set in {padded} of {stop - start} SNPs (SNPs "
                                 f"{start + 1} to {stop} of {self.n_snps}): the .bed holds more samples than "
                                 f"the {self.n_samples} rows of {self.fam} (expected zero padding after the "
                                 "last sample of each SNP)")
        return block

    def read(self, start: int, stop: int) -> np.ndarray:
        """Dosages of SNPs ``start:stop``: (stop - start, n) int8, ``-1`` missing."""
        return decode(self.records(start, stop), self.n_samples)

    def blocks(self, size: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, (k, n) int8 dosages)`` over all SNPs."""
        for start in range(0, self.n_snps, size):
            yield start, self.read(start, min(start + size, self.n_snps))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> BedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BedWriter:
    """Append SNP blocks to a new ``.bed`` at a local path or fsspec URL.

    Used as a context manager: the file is published whole when the block ends and not at all when it
    raises (:func:`genosynth.storage.open_output`), so no reader sees a torn ``.bed``.
    """

    def __init__(self, url: str, n_samples: int):
        self.url, self.n_samples, self.n_snps = url, n_samples, 0
        self._output = storage.open_output(url)
        self._handle: IO[bytes] = self._output.__enter__()
        self._handle.write(BED_MAGIC)

    def add(self, snp_major: np.ndarray) -> None:
        """Append (k, n) hard calls (NaN or negative: missing)."""
        if snp_major.ndim != 2 or snp_major.shape[1] != self.n_samples:
            raise ValueError(f"block shape {snp_major.shape}, expected (k, {self.n_samples})")
        self._handle.write(encode(snp_major).tobytes())
        self.n_snps += snp_major.shape[0]

    def __enter__(self) -> BedWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._output.__exit__(*exc)
