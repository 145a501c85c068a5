"""Names the cost modules share: ledger record keys, Pushgateway grouping labels, the environment.

Kept apart from :mod:`genosynth.cost.ledger` and :mod:`genosynth.cost.metrics` so that neither imports
the other for a name: the ledger is the source of truth, the metrics are derived from it, and
:mod:`genosynth.cost.publish` is the one place that connects the two.
"""

from __future__ import annotations

#: The Pushgateway base URL; unset means no metrics are pushed (the ledger is still written).
PUSHGATEWAY_ENV = "GENOSYNTH_PUSHGATEWAY"
#: The step whose succeeded attempts complete a SNP batch.
TRAIN_STEP = "train"
#: The on-exit step that marks a run finished.
FINALIZE_STEP = "finalize"


def batch_tag(batch: int | None) -> str:
    """The batch part of a record key and of the Pushgateway grouping key (``none`` for whole-run steps)."""
    return "none" if batch is None else f"{batch:05d}"


def group_prefix(step: str, batch: int | None) -> str:
    """The key prefix of every ledger record of one (step, batch) task."""
    # Step names never contain dots, so the prefix of one (step, batch) cannot match another's keys.
    return f"{step}.{batch_tag(batch)}."
