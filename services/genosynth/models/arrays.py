"""Byte-deterministic storage of named arrays (``.npy`` streams, zlib-compressed) for fitted models.

``np.savez`` stamps the current time into its zip entries, so a rerun would not reproduce identical
bytes; this format does.
"""

from __future__ import annotations

import io
import zlib

import numpy as np

from genosynth import storage


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise ``arrays`` (name -> array) into one compressed, deterministic payload."""
    buffer = io.BytesIO()
    names = sorted(arrays)
    np.save(buffer, np.array(names, dtype=np.str_), allow_pickle=False)
    for name in names:
        np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 6)


def decode_arrays(payload: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(zlib.decompress(payload))
    names = [str(n) for n in np.load(stream, allow_pickle=False)]
    return {name: np.load(stream, allow_pickle=False) for name in names}


def write_arrays(url: str, arrays: dict[str, np.ndarray]) -> None:
    storage.write_bytes(url, encode_arrays(arrays))


def read_arrays(url: str) -> dict[str, np.ndarray]:
    return decode_arrays(storage.read_bytes(url))

