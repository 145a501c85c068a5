"""Writing a GWAS result: the table (Parquet or TSV) and its log beside it, log last."""

from __future__ import annotations

import io
import json

import pandas as pd

from genosynth import storage
from genosynth.errors import InputError
from genosynth.gwas.engine import GwasResult

FORMATS = (".parquet", ".tsv")


def table_format(url: str) -> str:
    """``.parquet`` or ``.tsv`` from the output name; anything else is an :class:`InputError`."""
    for suffix in FORMATS:
        if url.endswith(suffix):
            return suffix
    raise InputError(url, "output name must end in .parquet or .tsv")


def table_bytes(table: pd.DataFrame, suffix: str) -> bytes:
    if suffix == ".parquet":
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        return buffer.getvalue()
    # Missing positions print as NA, floats with full precision.
    return table.to_csv(sep="\t", index=False, na_rep="NA", float_format="%.10g").encode()


def log_url(url: str) -> str:
    return f"{url}.log.json"


def write_result(result: GwasResult, url: str) -> None:
    """Write the table, then ``URL.log.json`` (a reader that finds the log finds a complete table)."""
    suffix = table_format(url)
    storage.remove(log_url(url))
    storage.write_bytes(url, table_bytes(result.table, suffix))
    storage.write_text(log_url(url), json.dumps(result.log, indent=2, sort_keys=True) + "\n")


def read_table(url: str) -> pd.DataFrame:
    """Read a table written by :func:`write_result`."""
    data = storage.read_bytes(url)
    if table_format(url) == ".parquet":
        return pd.read_parquet(io.BytesIO(data))
    return pd.read_csv(io.BytesIO(data), sep="\t", dtype={"chr": str, "snp": str, "trait": str},
                       na_values=["NA"], keep_default_na=False).astype({"pos": "Int64"})
