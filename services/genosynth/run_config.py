"""The run configuration: written once to ``RUN_URL/config.json`` and read by every step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from genosynth import storage
from genosynth.errors import InputError
from genosynth.run_layout import CONFIG


@dataclass
class RunConfig:
    """Everything a run needs; defaults are the documented safe choices.

    ``model`` names a genotype model family (see ``genosynth.models``); ``privacy`` holds gate thresholds
    (see ``genosynth.compare.gate``); ``prices`` and ``budget_dollars`` drive the cost ledger and gate.
    """

    dataset_url: str
    traits: list[str] = field(default_factory=list)      # empty: all traits of the dataset
    covariates: list[str] = field(default_factory=list)  # empty: the dataset's covariates
    seed: int = 0
    model: str = "mosaic"
    batch_snps: int = 2000
    holdout_fraction: float = 0.2
    gwas_model: str = "lmm"
    loco: bool = True
    qc: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=dict)
    allow_privacy_failure: bool = False
    budget_dollars: float = 1440.0
    prices: dict[str, float] = field(default_factory=dict)
    max_parallel: int = 2

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            known_keys = ", ".join(sorted(known))
            raise InputError(source, f"unknown config key {unknown[0]!r}; known keys: {known_keys}")
        if "dataset_url" not in data:
            raise InputError(source, "missing required key 'dataset_url'")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str, **overrides: Any) -> RunConfig:
        """Read a YAML or JSON config file; ``overrides`` (non-None) win over the file."""
        try:
            data = yaml.safe_load(storage.read_text(path)) or {}
        except FileNotFoundError as exc:
            raise InputError(path, "config file not found") from exc
        except yaml.YAMLError as exc:
            raise InputError(path, f"not valid YAML/JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(path, "expected a mapping of config keys")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, run_url: str) -> None:
        storage.write_json(storage.join(run_url, CONFIG), self.to_dict())

    @classmethod
    def load(cls, run_url: str) -> RunConfig:
        url = storage.join(run_url, CONFIG)
        if not storage.exists(url):
            raise InputError(run_url, f"no {CONFIG}: not a genosynth run (start one with `genosynth run`)")
        return cls.from_dict(storage.read_json(url), source=url)
