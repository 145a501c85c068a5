"""Publishing the ledger to Prometheus: the one module that joins the ledger and the metrics.

The runner calls :func:`account` after every step attempt and the finalize step calls :func:`run_finished`.
Pushing is best effort: the ledger record is the truth and is written first, so a monitoring outage never
fails or loses a paid-for step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from genosynth.cost import ledger, metrics
from genosynth.cost.keys import FINALIZE_STEP, PUSHGATEWAY_ENV
from genosynth.run_config import RunConfig

log = logging.getLogger(__name__)


def gateway() -> str | None:
    """The Pushgateway URL from ``GENOSYNTH_PUSHGATEWAY``, or None when metrics are not pushed."""
    return os.environ.get(PUSHGATEWAY_ENV) or None


def account(run_url: str, **attempt: Any) -> dict[str, Any]:
    """Append the ledger record of one step attempt (see :func:`ledger.account_step`), then push its task.

    Returns the record. The task's group is recomputed from all its records, and the run's gauges are
    refreshed: the finalize step marks the run finished, any later step (a resumed run) marks it running.
    """
    record = ledger.account_step(run_url, **attempt)
    url = gateway()
    if url:
        step, batch = record["step"], record["batch"]
        try:
            records = ledger.read_records(run_url, step=step, batch=batch)
            metrics.push_group(url, run_url, step, batch, records)
            budget = RunConfig.load(run_url).budget_dollars
            metrics.push_run(url, run_url, budget_dollars=budget, batches_total=ledger.batches_total(run_url),
                             finished=step == FINALIZE_STEP)
        except OSError as exc:
            log.warning("could not push cost metrics to %s: %s", url, exc)
    return record


def run_finished(run_url: str, summary: dict[str, Any]) -> None:
    """Push the run's final gauges from its ledger ``summary`` (when a Pushgateway is configured)."""
    url = gateway()
    if not url:
        return
    try:
        metrics.push_run(url, run_url, budget_dollars=summary["budget_dollars"],
                         batches_total=summary["batches_total"], finished=True)
    except OSError as exc:
        log.warning("could not push final cost gauges to %s: %s", url, exc)


def forget(run_url: str) -> int:
    """Delete every Pushgateway group of the run; return how many (``GENOSYNTH_PUSHGATEWAY`` must be set)."""
    url = gateway()
    if not url:
        from genosynth.errors import InputError

        raise InputError(PUSHGATEWAY_ENV, "not set: --forget-metrics needs the Pushgateway URL")
    return metrics.forget_run(url, run_url, ledger.read_records(run_url))
