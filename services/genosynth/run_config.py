"""The run configuration: written once to ``RUN_URL/config.json`` and read by every step.

The config is a typed pydantic model: a wrong type or an out-of-range value is an
:class:`~genosynth.errors.InputError` naming the key and what was expected (``config.yaml, column
'seed': expected an integer, found 'abc'``), raised before anything is written. :func:`validate_request`
then checks the settings against the dataset (traits, covariates), the model registry (model name and
``model_options`` keys) and the privacy thresholds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genosynth import storage
from genosynth.errors import InputError
from genosynth.run_layout import CONFIG

if TYPE_CHECKING:
    from genosynth.formats.dataset import Dataset

#: QC options (keyword arguments of ``genosynth.prep.qc.run_qc``) and their types.
QC_KEYS: dict[str, type] = {
    "maf": float, "max_missing": float, "min_quality": float, "drop_monomorphic": bool,
    "drop_discarded": bool, "batch_size": int,
}


class RunConfig(BaseModel):
    """Everything a run needs; defaults are the documented safe choices.

    ``model`` names a genotype model family (see ``genosynth.models``); ``privacy`` holds gate thresholds
    (see ``genosynth.compare.gate``); ``prices`` and ``budget_dollars`` drive the cost ledger and gate.
    ``traits`` and ``covariates`` take a list of names (a single string is one name, or a comma-separated
    list of names).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset_url: str
    traits: list[str] = Field(default_factory=list)      # empty: all traits of the dataset
    covariates: list[str] = Field(default_factory=list)  # empty: the dataset's covariates
    seed: int = Field(0, ge=0)
    model: str = "mosaic"
    batch_snps: int = Field(2000, gt=0)
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    gwas_model: Literal["lmm", "lm", "wgr", "auto"] = "lmm"  # auto: gwas/models.py
    loco: bool = True
    qc: dict[str, Any] = Field(default_factory=dict)
    model_options: dict[str, Any] = Field(default_factory=dict)
    privacy: dict[str, Any] = Field(default_factory=dict)
    allow_privacy_failure: bool = False
    budget_dollars: float = Field(1440.0, ge=0.0)
    prices: dict[str, float] = Field(default_factory=dict)
    max_parallel: int = Field(2, ge=1)

    @field_validator("traits", "covariates", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        # ``traits: glucose`` in YAML is one name, not the letters g, l, u, ...
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("qc")
    @classmethod
    def _qc(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            expected = QC_KEYS.get(key)
            if expected is None:
                raise ValueError(f"unknown QC option {key!r}; expected one of {', '.join(QC_KEYS)}")
            numeric = isinstance(item, int | float) and not isinstance(item, bool)
            integer = isinstance(item, int) and not isinstance(item, bool)
            if (expected is bool and not isinstance(item, bool)) or (expected is int and not integer) or (
                    expected is float and not numeric):
                raise ValueError(f"QC option {key!r}: expected {_TYPE_WORDS[expected]}, found {item!r}")
        return value

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> RunConfig:
        """Validate ``data``; the first problem is an :class:`InputError` naming the key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _input_error(exc, source) from None

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
            raise InputError(path, f"expected a mapping of config keys, found {type(data).__name__}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def save(self, run_url: str) -> None:
        storage.write_json(storage.join(run_url, CONFIG), self.to_dict())

    @classmethod
    def load(cls, run_url: str) -> RunConfig:
        url = storage.join(run_url, CONFIG)
        if not storage.exists(url):
            raise InputError(run_url, f"no {CONFIG}: not a genosynth run (start one with `genosynth run`)")
        try:
            data = storage.read_json(url)
        except ValueError as exc:
            raise InputError(url, f"not valid JSON ({exc}); remove the run and start again") from None
        return cls.from_dict(data, source=url)


_TYPE_WORDS: dict[Any, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_ERROR_WORDS = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "a string", "dict_type": "a mapping of keys to values",
    "list_type": "a list of names", "literal_error": None, "missing": None, "extra_forbidden": None,
}


def _input_error(exc: ValidationError, source: str) -> InputError:
    error = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error["loc"])
    kind, found = error["type"], error.get("input")
    if kind == "extra_forbidden":
        known = ", ".join(RunConfig.model_fields)
        return InputError(source, f"unknown config key {location!r}; known keys: {known}")
    if kind == "missing":
        return InputError(source, f"missing required key {location!r}")
    expected = _ERROR_WORDS.get(kind)
    if expected is None:
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        expected = message[0].lower() + message[1:] if message[1:2].islower() else message
        text = expected if kind == "value_error" else f"{expected}, found {found!r}"
    else:
        text = f"expected {expected}, found {found!r}"
    return InputError(source, text, column=location)


def validate_request(config: RunConfig, dataset: Dataset, *, source: str = "config") -> None:
    """Check ``config`` against the dataset and the registries; nothing is read beyond the descriptor.

    Raises
    ------
    InputError
        An unknown trait or covariate (naming the dataset's columns), a non-numeric trait, an unknown
        model family or ``model_options`` key, an unknown privacy threshold, a negative price.
    """
    from genosynth import models
    from genosynth.compare.gate import thresholds_from_config

    kinds = dataset.column_kinds
    for key, names in (("traits", config.traits), ("covariates", config.covariates)):
        for name in names:
            if name not in kinds:
                known = ", ".join(kinds) or "no sample columns"
                raise InputError(source, f"{name!r} is not a sample column of {dataset.url} "
                                 f"(it has: {known})", column=key)
    for name in config.traits:
        if kinds[name] == "categorical":
            raise InputError(source, f"trait {name!r} is categorical; a trait must be numeric or binary",
                             column="traits")
    if config.model not in models.families():
        raise InputError(source, f"unknown model {config.model!r}; expected one of "
                         f"{', '.join(models.families())}", column="model")
    allowed = models.option_keys(config.model)
    for key in config.model_options:
        if key not in allowed:
            raise InputError(source, f"unknown option {key!r} of model {config.model!r}; expected one of "
                             f"{', '.join(sorted(allowed))}", column=f"model_options.{key}")
    thresholds_from_config(config.privacy, source=source)
    from genosynth.cost.prices import price_table

    price_table(config.prices)
