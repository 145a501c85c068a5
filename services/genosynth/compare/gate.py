"""The privacy gate: the synthetic cohort is released only when every privacy check passes.

Thresholds come from ``RunConfig.privacy`` (keys of :data:`DEFAULT_THRESHOLDS`; ``null`` disables a
check) over safe defaults. The compare step writes ``compare/gate.json``::

    {"passed": bool, "failures": [str, ...],
     "checks": [{"name", "metric", "value", "op", "threshold", "passed"}, ...], "thresholds": {...}}

and then its release decision in its own object ``compare/release.json`` (``{"released": bool, "dataset":
"synthetic", "gate": "compare/gate.json"}``). Committed outputs are never rewritten: assemble's
``synthetic/dataset.json`` stays as assemble wrote it, and every reader of the release decision (the
report, ``genosynth status``, ``genosynth run``'s exit status) consults :func:`read_release`.
``genosynth run`` reads the verdict with :func:`read_gate` and exits 3 on failure unless overridden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from genosynth import run_layout, storage
from genosynth.errors import InputError

GATE = run_layout.COMPARE_GATE
RELEASE = run_layout.COMPARE_RELEASE

# Why these defaults (docs/compare.md has the long form). Relatedness and closeness are judged against the
# holdout: a fresh real genome of the same cohort is the yardstick of what is natural (in outbred colonies
# such as hs1940 nearly every unseen mouse has a first-degree relative among the training mice).
# - no synthetic genome may equal a training genome;
# - an ideal generator is as close to training genomes as fresh real genomes are, so about 1% of its
#   genomes fall below the real 1st-percentile distance by construction; the share, less 1.96 binomial
#   standard errors, may reach 2% (unseen real hs1940 mice score 2.1% before the noise discount);
# - at most 2 points more synthetic than holdout genomes (beyond 1.96 standard errors of sampling noise)
#   may have a first-degree (KING > 0.177) or duplicate-level (> 0.354) relative among the training genomes;
# - an absolute KING ceiling is off by default; set it to 0.177 for cohorts without relatives (humans);
# - membership inference at AUC 0.6 is a real but weak attack: above it, membership is guessable; the AUC
#   less 1.96 standard errors is checked, as the holdout is small;
# - AATS below 0.4 means synthetic genomes sit closer to training genomes than those do to each other
#   (above 0.5 is a fidelity concern, reported but not gated by default);
# - privacy loss (holdout AATS minus train AATS) above 0.1 means the generator treats its training genomes
#   differently from unseen ones, i.e. memorises.
DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "max_identical_genomes": 0,
    "max_fraction_closer_than_real_p1": 0.02,
    "max_excess_first_degree": 0.02,
    "max_excess_duplicates": 0.02,
    "max_king_kinship": None,
    "max_membership_auc": 0.6,
    "min_aats": 0.4,
    "max_aats": None,
    "max_privacy_loss": 0.1,
}

# threshold key -> (check name, metric key in metrics["privacy"], comparison)
_CHECKS: dict[str, tuple[str, str, str]] = {
    "max_identical_genomes": ("identical genomes", "identical_genomes", "<="),
    "max_fraction_closer_than_real_p1": (
        "share of synthetic genomes closer to a training genome than the real 1st-percentile distance, "
        "beyond noise", "fraction_closer_than_real_p1_beyond_noise", "<="),
    "max_excess_first_degree": (
        "synthetic minus holdout share with a first-degree (or closer) training relative, beyond noise",
        "excess_first_degree_or_closer_beyond_noise", "<="),
    "max_excess_duplicates": (
        "synthetic minus holdout share with a duplicate-level training relative, beyond noise",
        "excess_duplicate_or_closer_beyond_noise", "<="),
    "max_king_kinship": ("largest KING kinship to a training genome", "max_king_kinship", "<"),
    "max_membership_auc": ("membership-inference AUC, beyond noise", "membership_auc_beyond_noise", "<="),
    "min_aats": ("nearest-neighbour adversarial accuracy (AATS), lower bound", "aats", ">="),
    "max_aats": ("nearest-neighbour adversarial accuracy (AATS), upper bound", "aats", "<="),
    "max_privacy_loss": ("privacy loss (AATS holdout - AATS train)", "privacy_loss", "<="),
}


@dataclass
class GateResult:
    """The gate verdict; ``failures`` holds one readable line per failed check."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)


def thresholds_from_config(
    privacy: dict[str, Any] | None, *, source: str = "config.json"
) -> dict[str, float | None]:
    """Defaults overridden by ``privacy`` (from ``RunConfig.privacy``); unknown keys and non-numbers are
    :class:`InputError`.
    """
    thresholds = dict(DEFAULT_THRESHOLDS)
    for key, value in (privacy or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise InputError(source, f"unknown privacy threshold {key!r}; expected one of "
                             f"{', '.join(DEFAULT_THRESHOLDS)}", column=f"privacy.{key}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(source, f"expected a number or null, found {value!r}", column=f"privacy.{key}")
        thresholds[key] = value
    return thresholds


def _holds(value: float, op: str, threshold: float) -> bool:
    if not math.isfinite(value):
        return False  # an unmeasurable privacy metric never passes
    return {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold}[op]


def evaluate(privacy_metrics: dict[str, Any], thresholds: dict[str, float | None]) -> GateResult:
    """Check every enabled threshold against the privacy metrics."""
    checks, failures = [], []
    for key, (name, metric, op) in _CHECKS.items():
        threshold = thresholds.get(key)
        if threshold is None:
            continue
        raw = privacy_metrics.get(metric)
        value = float(raw) if isinstance(raw, int | float) else math.nan
        passed = _holds(value, op, float(threshold))
        checks.append({"name": name, "metric": metric, "value": value, "op": op,
                       "threshold": threshold, "passed": passed})
        if not passed:
            failures.append(f"{name}: {value:.4g} (required {op} {threshold:g})")
    return GateResult(passed=not failures, failures=failures, checks=checks)


def gate_document(result: GateResult, thresholds: dict[str, float | None]) -> dict[str, Any]:
    return {"passed": result.passed, "failures": result.failures, "checks": result.checks,
            "thresholds": thresholds}


def release_document(result: GateResult) -> dict[str, Any]:
    """The release decision of the synthetic cohort: released only when the privacy gate passed."""
    return {"released": result.passed, "dataset": run_layout.SYNTHETIC, "gate": GATE,
            "failures": result.failures}


def apply(run_url: str) -> GateResult:
    """Judge the run's ``compare/metrics.json`` with the thresholds of its config; write ``compare/gate.json``
    and then ``compare/release.json``.

    Cheap (no genotypes are read), so a run can be re-judged after its privacy thresholds change.
    """
    from genosynth.run_config import RunConfig

    config = RunConfig.load(run_url)
    thresholds = thresholds_from_config(config.privacy, source=run_layout.url(run_url, run_layout.CONFIG))
    metrics_url = run_layout.url(run_url, run_layout.COMPARE_METRICS)
    if not storage.exists(metrics_url):
        raise InputError(metrics_url, "not found: the compare metrics have not been computed")
    verdict = evaluate(storage.read_json(metrics_url)["privacy"], thresholds)
    storage.write_json(run_layout.url(run_url, GATE), _finite(gate_document(verdict, thresholds)))
    storage.write_json(run_layout.url(run_url, RELEASE), release_document(verdict))
    return verdict


def _finite(value: Any) -> Any:
    """NaN / inf (an unmeasurable metric) become null so that the file stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_gate(run_url: str) -> GateResult:
    """The verdict the compare step wrote under ``run_url``; missing means compare has not run."""
    url = run_layout.url(run_url, GATE)
    if not storage.exists(url):
        raise InputError(run_url, f"no {GATE}: the compare step has not run")
    doc = storage.read_json(url)
    return GateResult(passed=bool(doc["passed"]), failures=list(doc.get("failures", [])),
                      checks=list(doc.get("checks", [])))


def read_release(run_url: str) -> bool | None:
    """Whether the run's synthetic cohort is released; ``None`` while compare has not decided."""
    url = run_layout.url(run_url, RELEASE)
    if not storage.exists(url):
        return None
    return bool(storage.read_json(url)["released"])
