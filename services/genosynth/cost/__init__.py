"""Cost governance: the GPU-hour ledger, prices, Prometheus metrics, the budget gate and finalize.

``publish.account`` (the ledger record, then its metrics) is called by the runner after every step
attempt; ``gate.run`` and ``finalize.run`` are pipeline steps (``budget-gate`` before the training
fan-out, ``finalize`` on exit). Imports run one way: keys <- ledger <- metrics <- publish.
"""
