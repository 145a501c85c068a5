"""Validate Argo manifests against Argo's own CRD schemas, made strict.

The CRDs let unknown fields through (Kubernetes prunes them silently), so a misspelled field would pass
and then be dropped by the API server. :func:`strict_schema` sets ``additionalProperties: false`` on every
object schema that lists ``properties`` and does not carry ``x-kubernetes-preserve-unknown-fields``.

The schemas are not shipped with the package: pass the folder holding ``argoproj.io_<plural>.yaml``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PLURALS = {"Workflow": "workflows", "WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}


def make_strict(schema: Any) -> Any:
    """Return a copy of an OpenAPI v3 schema where every object with ``properties`` is closed."""
    if isinstance(schema, list):
        return [make_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: make_strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if "properties" in schema:
        # Property names are data, not schema keywords: only their values are schemas.
        out["properties"] = {name: make_strict(value) for name, value in schema["properties"].items()}
    return out


@functools.lru_cache(maxsize=8)
def strict_schema(schema_dir: str, kind: str, cache_dir: str | None = None) -> dict[str, Any]:
    """The strict openAPIV3Schema of ``kind`` from ``schema_dir/argoproj.io_<plural>.yaml``.

    Parsing a CRD takes seconds; with ``cache_dir`` the strict schema is kept there as JSON, keyed by a
    hash of the CRD file, so later calls (e.g. later test runs) load it in a fraction of that.
    """
    raw = (Path(schema_dir) / f"argoproj.io_{PLURALS[kind]}.yaml").read_bytes()
    cached = Path(cache_dir) / f"{kind}-{hashlib.sha256(raw).hexdigest()[:16]}.json" if cache_dir else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    crd = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    versions = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = make_strict(versions[0]["schema"]["openAPIV3Schema"])
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_text(json.dumps(schema))
        partial.replace(cached)  # atomic: a concurrent reader never sees half a file
    return schema


def validation_errors(
    manifest: dict[str, Any], schema_dir: str | Path, *, cache_dir: str | Path | None = None
) -> list[str]:
    """Every schema violation of ``manifest`` as ``path: message`` lines (empty when valid)."""
    kind = manifest.get("kind")
    if kind not in PLURALS:
        return [f"kind: expected one of {sorted(PLURALS)}, found {kind!r}"]
    schema = strict_schema(str(schema_dir), kind, str(cache_dir) if cache_dir else None)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
