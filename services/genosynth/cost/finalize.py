"""The ``finalize`` step (Argo onExit): the run's final cost summary and final gauges.

Writes ``RUN/cost.json`` (the ledger totals of every attempt accounted so far; finalize's own attempt is
accounted by the runner after this returns) and marks the run finished on the Pushgateway so that the
"training stalled" and "projected overrun" alerts stop considering it.
"""

from __future__ import annotations

from genosynth import run_layout, storage
from genosynth.cost import ledger, publish

COST_SUMMARY = run_layout.COST_SUMMARY


def run(run_url: str, batch: int | None = None) -> None:
    """Write ``RUN/cost.json`` and push the run's final gauges (when ``GENOSYNTH_PUSHGATEWAY`` is set)."""
    summary = ledger.summary(run_url)
    storage.write_json(storage.join(run_url, COST_SUMMARY), summary)
    publish.run_finished(run_url, summary)
