"""The privacy gate: the synthetic cohort is released only when every privacy check passes.

Thresholds come from ``RunConfig.privacy`` (keys of :data:`DEFAULT_THRESHOLDS`; ``null`` disables a
check) over safe defaults. The compare step writes ``compare/gate.json`` (a
:class:`~genosynth.compare_records.GateVerdict`)::

    {"schema_version": 1, "passed": bool, "failures": [str, ...],
     "checks": [{"name", "metric", "value", "op", "threshold", "passed"}, ...], "thresholds": {...}}

and then its release decision in its own object ``compare/release.json`` (a
:class:`~genosynth.compare_records.Release`: ``{"schema_version": 1, "released": bool, "dataset":
"synthetic", "gate": "compare/gate.json", "failures": [...]}``). Committed outputs are never
rewritten: assemble's ``synthetic/dataset.json`` stays as assemble wrote it, and every reader of the
release decision (the report, ``genosynth status``, ``genosynth run``'s exit status) consults
``compare_records.read_release``. ``genosynth run`` reads the verdict with ``compare_records.read_gate``
and exits 3 on failure unless overridden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from genosynth import compare_records, run_layout
from genosynth.compare_records import GateCheck, GateVerdict, Privacy, Release
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


def evaluate(privacy: Privacy | Mapping[str, Any], thresholds: Mapping[str, float | None]) -> GateVerdict:
    """Check every enabled threshold against the privacy metrics (a record, or a mapping of its keys)."""
    value_of = privacy.value if isinstance(privacy, Privacy) else lambda metric: _number(privacy.get(metric))
    checks, failures = [], []
    for key, (name, metric, op) in _CHECKS.items():
        threshold = thresholds.get(key)
        if threshold is None:
            continue
        value = value_of(metric)
        passed = _holds(value, op, float(threshold))
        checks.append(GateCheck(name=name, metric=metric, value=value, op=op, threshold=threshold,
                                passed=passed))
        if not passed:
            failures.append(f"{name}: {value:.4g} (required {op} {threshold:g})")
    return GateVerdict(passed=not failures, failures=failures, checks=checks, thresholds=dict(thresholds))


def _number(raw: Any) -> float:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan


def release_of(verdict: GateVerdict) -> Release:
    """The release decision of the synthetic cohort: released only when the privacy gate passed."""
    return Release(released=verdict.passed, failures=verdict.failures)


def apply(run_url: str) -> GateVerdict:
    """Judge the run's ``compare/metrics.json`` with the thresholds of its config; write ``compare/gate.json``
    and then ``compare/release.json``.

    Cheap (no genotypes are read), so a run can be re-judged after its privacy thresholds change.
    """
    from genosynth.run_config import RunConfig

    config = RunConfig.load(run_url)
    thresholds = thresholds_from_config(config.privacy, source=run_layout.url(run_url, run_layout.CONFIG))
    verdict = evaluate(compare_records.read_metrics(run_url).privacy, thresholds)
    compare_records.write_gate(run_url, verdict)
    compare_records.write_release(run_url, release_of(verdict))
    return verdict
