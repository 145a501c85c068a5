"""Typed records of the compare step's outputs, read and written only here.

- ``compare/metrics.json``: :class:`CompareMetrics` (cohort sizes, association per trait, genetic
  structure, phenotypes, privacy), schema version :data:`METRICS_SCHEMA`;
- ``compare/gate.json``: :class:`GateVerdict`, the privacy gate's checks and thresholds;
- ``compare/release.json``: :class:`Release`, the release decision of the synthetic cohort.

The compare step writes them with :func:`write_metrics`, :func:`write_gate` and :func:`write_release`;
the report, ``genosynth run`` and ``genosynth status`` read them with :func:`read_metrics`,
:func:`read_gate` and :func:`read_release`. This module sits beside ``run_state`` (the batch plan), below
the steps, so that readers depend on the records and not on the compare step's code.

In memory an unmeasurable number is NaN; in the files it is ``null`` (strict JSON), and floats are rounded
to 7 significant digits so that reruns write identical bytes. A file of another schema version, or one
that does not match its record, is an :class:`~genosynth.errors.InputError` naming the file and the field.

Adding a metric is one line: a field in the record that holds it (``name: Real`` for a float that may be
unmeasurable); give it a default (``= math.nan``) if files written before it must still read. A key that
the compare code writes but no record declares is refused when the step writes it, never dropped.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_serializer

from genosynth import run_layout, storage
from genosynth.errors import InputError

METRICS_SCHEMA = 1
GATE_SCHEMA = 1
SIGNIFICANT_DIGITS = 7


def clean_json(value: Any) -> Any:
    """JSON-ready copy: numpy to Python, NaN / inf to null, floats to 7 significant digits.

    Rounding hides last-bit differences of floating-point sums, so reruns write identical bytes.
    """
    if isinstance(value, BaseModel):
        return clean_json(value.model_dump(by_alias=True))
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else None
    return value


def _null_is_nan(value: Any) -> Any:
    return math.nan if value is None else value


#: A float that may be unmeasurable: NaN in memory, ``null`` in the file.
Real = Annotated[float, BeforeValidator(_null_is_nan)]


class Record(BaseModel):
    """Base of every record: unknown keys are refused, values are checked against their types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- metrics.json: cohorts ---------------------------------------------------------------------------
class Cohorts(Record):
    train_samples: int
    holdout_samples: int
    synthetic_samples: int
    snps: int
    snps_subsampled: int
    samples_cap: int
    traits: list[str]
    privacy_snps: int = 0


# --- metrics.json: association (compare/association.py) ----------------------------------------------
class HitAgreement(Record):
    """SNP- and locus-level agreement of one trait's hits at one threshold (``hit_agreement``)."""

    p_threshold: float
    hits_real: int
    hits_synthetic: int
    true_positives: int
    precision: Real
    recall: Real
    f1: Real
    loci_real: int
    loci_synthetic: int
    loci_synthetic_real: int
    loci_real_recovered: int
    locus_precision: Real
    locus_recall: Real
    beta_slope: Real
    sign_agreement: Real


class ChromosomeLambda(Record):
    real: Real
    synthetic: Real
    delta: Real


class TraitAssociation(Record):
    """Every association metric of one trait (``trait_agreement``)."""

    n_snps: int
    neglog10p_correlation: Real
    top_neglog10p_real: Real
    top_neglog10p_synthetic: Real
    top_neglog10p_ratio: Real
    lambda_gc_real: Real
    lambda_gc_synthetic: Real
    lambda_gc_delta: Real
    lambda_gc_by_chromosome: dict[str, ChromosomeLambda]
    effect_slope_real_hits: Real
    effect_sign_agreement_real_hits: Real
    thresholds: dict[str, HitAgreement]

    def thresholds_by_p(self) -> list[tuple[str, HitAgreement]]:
        """The per-threshold rows, strictest threshold first."""
        return sorted(self.thresholds.items(), key=lambda item: item[1].p_threshold)


# --- metrics.json: structure (compare/structure.py) --------------------------------------------------
class AlleleFrequency(Record):
    correlation: Real
    mean_abs_difference: Real
    max_abs_difference: Real


class LdCurve(Record):
    bin_left: list[float]
    bin_right: list[float]
    mean_r2: list[Real]
    pairs: list[int]


class LdDecay(Record):
    real: LdCurve
    synthetic: LdCurve
    mean_abs_difference: Real
    max_abs_difference: Real
    snps_per_chromosome: int


class KinshipQuantiles(Record):
    quantiles: list[float]
    real: list[Real]
    synthetic: list[Real]
    mean_abs_difference: Real


class KinshipSpectrum(Record):
    real: list[Real]
    synthetic: list[Real]


class PcaComparison(Record):
    components: int
    variance_explained: list[Real]
    score_sd_ratio: list[Real]
    wasserstein_sd: list[Real]
    mean_wasserstein_sd: Real
    centroid_distance_sd: Real


class StructureSampling(Record):
    """Which individuals and SNPs the structure metrics saw; the jackknife SEs when they are a sample."""

    samples_real: int
    samples_synthetic: int
    snps: int
    subsampled: bool
    jackknife_groups: int
    standard_error: dict[str, Real]


class Structure(Record):
    allele_frequency: AlleleFrequency
    ld_decay: LdDecay
    kinship_king: KinshipQuantiles
    kinship_centred: KinshipQuantiles
    kinship_spectrum: KinshipSpectrum
    pca: PcaComparison
    sampling: StructureSampling | None = None


# --- metrics.json: phenotypes (compare/phenotypes.py) ------------------------------------------------
class PhenotypeColumn(Record):
    """One samples column: missingness, and mean / sd (numeric, binary) or total variation (categorical).

    The fields of the other kind are absent from the file (``None`` here).
    """

    kind: str
    missing_real: Real
    missing_synthetic: Real
    mean_real: Real | None = None
    mean_synthetic: Real | None = None
    sd_real: Real | None = None
    sd_synthetic: Real | None = None
    total_variation: Real | None = None

    @model_serializer(mode="wrap")
    def _only_given_fields(self, handler: Any) -> dict[str, Any]:
        # The file holds the fields of the column's kind only, as the compare step gave them.
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class Phenotypes(Record):
    columns: dict[str, PhenotypeColumn]
    correlation_mean_abs_difference: Real
    correlation_max_abs_difference: Real


# --- metrics.json: privacy (compare/privacy.py) ------------------------------------------------------
class DistanceQuantiles(Record):
    """Quantiles of nearest-neighbour distances, keyed ``q0 q0.01 q0.05 q0.5 q0.95`` in the file."""

    q0: Real
    q0_01: Real = Field(alias="q0.01")
    q0_05: Real = Field(alias="q0.05")
    q0_5: Real = Field(alias="q0.5")
    q0_95: Real = Field(alias="q0.95")


#: Relationship levels of the KING shares, as they appear in the privacy keys, closest last.
RELATIVE_LEVELS = ("second_degree", "first_degree", "duplicate")


class Privacy(Record):
    """The privacy metrics (``privacy_metrics``); docs/compare.md defines each."""

    identical_genomes: int
    identical_genomes_holdout: int
    dcr_synthetic_to_train: DistanceQuantiles
    dcr_holdout_to_train: DistanceQuantiles
    dcr_train_to_train: DistanceQuantiles
    dcr_real_p1: Real
    fraction_closer_than_real_p1: Real
    fraction_holdout_closer_than_real_p1: Real
    fraction_closer_than_real_p1_beyond_noise: Real
    aats: Real
    aats_holdout: Real
    aats_train_matched: Real
    privacy_loss: Real
    membership_auc: Real
    membership_auc_beyond_noise: Real
    max_king_kinship: Real
    max_king_kinship_holdout: Real
    fraction_synthetic_second_degree_or_closer: Real
    fraction_holdout_second_degree_or_closer: Real
    excess_second_degree_or_closer: Real
    excess_second_degree_or_closer_beyond_noise: Real
    fraction_synthetic_first_degree_or_closer: Real
    fraction_holdout_first_degree_or_closer: Real
    excess_first_degree_or_closer: Real
    excess_first_degree_or_closer_beyond_noise: Real
    fraction_synthetic_duplicate_or_closer: Real
    fraction_holdout_duplicate_or_closer: Real
    excess_duplicate_or_closer: Real
    excess_duplicate_or_closer_beyond_noise: Real
    snps_used: int

    def relative_shares(self, level: str) -> tuple[float, float]:
        """Shares of synthetic and of holdout genomes with a training relative at ``level`` or closer."""
        return (getattr(self, f"fraction_synthetic_{level}_or_closer"),
                getattr(self, f"fraction_holdout_{level}_or_closer"))

    def value(self, metric: str) -> float:
        """A gated metric by its key (NaN when it is not a number): what the gate's checks name."""
        raw = getattr(self, metric, None) if metric in type(self).model_fields else None
        return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan


class CompareMetrics(Record):
    """``compare/metrics.json``."""

    schema_version: int = METRICS_SCHEMA
    cohorts: Cohorts
    association: dict[str, TraitAssociation]
    structure: Structure
    phenotypes: Phenotypes
    privacy: Privacy

    @classmethod
    def from_values(cls, values: dict[str, Any], *, source: str = "compare metrics") -> CompareMetrics:
        """The record of freshly computed metrics (numpy values welcome); a mismatch names the field."""
        return _validate(cls, {"schema_version": METRICS_SCHEMA, **clean_json(values)}, source)


# --- gate.json and release.json ------------------------------------------------------------------------
class GateCheck(Record):
    """One privacy check: ``value op threshold`` must hold."""

    name: str
    metric: str
    value: Real
    op: str
    threshold: int | float
    passed: bool


class GateVerdict(Record):
    """``compare/gate.json``; ``failures`` holds one readable line per failed check."""

    schema_version: int = GATE_SCHEMA
    passed: bool
    failures: list[str] = []
    checks: list[GateCheck] = []
    thresholds: dict[str, int | float | None] = {}


class Release(Record):
    """``compare/release.json``: the synthetic cohort is released only when the privacy gate passed."""

    schema_version: int = GATE_SCHEMA
    released: bool
    dataset: str = run_layout.SYNTHETIC
    gate: str = run_layout.COMPARE_GATE
    failures: list[str] = []


# --- reading and writing ---------------------------------------------------------------------------------
def _validate(record: type[Record], document: Any, source: str) -> Any:
    try:
        return record.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            raise InputError(source, f"a key that no field of the {record.__name__} record declares (a new "
                             "metric is declared in genosynth/compare_records.py)", column=where) from None
        found = error.get("input")
        found_text = f", found {found!r}" if not isinstance(found, dict | list) else ""
        raise InputError(source, f"not a {record.__name__} record: {error['msg'].lower()}{found_text}",
                         column=where) from None


def _read(record: type[Record], run_url: str, key: str, schema: int, *, versioned_since_start: bool,
          missing: str) -> Any:
    url = run_layout.url(run_url, key)
    if not storage.exists(url):
        raise InputError(url, missing)
    try:
        document = storage.read_json(url)
    except ValueError as exc:
        raise InputError(url, f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InputError(url, f"expected a JSON object, found {type(document).__name__}")
    # metrics.json has carried its version from the start; gate and release files written before they
    # were versioned are version 1.
    version = document.get("schema_version", None if versioned_since_start else schema)
    if version != schema:
        raise InputError(url, f"schema_version {schema} expected, found {version!r}: written by another "
                         "genosynth version; rerun the compare step", column="schema_version")
    return _validate(record, document, url)


def _write(run_url: str, key: str, record: Record) -> None:
    storage.write_json(run_layout.url(run_url, key), clean_json(record))


def write_metrics(run_url: str, metrics: CompareMetrics) -> None:
    _write(run_url, run_layout.COMPARE_METRICS, metrics)


def read_metrics(run_url: str) -> CompareMetrics:
    """The run's compare metrics; an :class:`InputError` when missing, of another version or malformed."""
    return _read(CompareMetrics, run_url, run_layout.COMPARE_METRICS, METRICS_SCHEMA,
                 versioned_since_start=True, missing="not found: run the compare step first")


def write_gate(run_url: str, verdict: GateVerdict) -> None:
    _write(run_url, run_layout.COMPARE_GATE, verdict)


def read_gate(run_url: str) -> GateVerdict:
    """The verdict the compare step wrote; missing means compare has not run."""
    return _read(GateVerdict, run_url, run_layout.COMPARE_GATE, GATE_SCHEMA, versioned_since_start=False,
                 missing="not found: the compare step has not run")


def write_release(run_url: str, release: Release) -> None:
    _write(run_url, run_layout.COMPARE_RELEASE, release)


def read_release(run_url: str) -> Release | None:
    """The release decision; ``None`` while compare has not decided."""
    if not storage.exists(run_layout.url(run_url, run_layout.COMPARE_RELEASE)):
        return None
    return _read(Release, run_url, run_layout.COMPARE_RELEASE, GATE_SCHEMA, versioned_since_start=False,
                 missing="not found")


def is_released(run_url: str) -> bool | None:
    """Whether the run's synthetic cohort is released; ``None`` while compare has not decided."""
    release = read_release(run_url)
    return None if release is None else release.released
