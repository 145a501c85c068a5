"""What the tasks of the pipeline ask of a node, and the requests of the per-batch steps.

The DAG (``pipeline.STEPS``) gives every step its :class:`Resources`; the per-batch steps' requests are
defined here, below the steps, because the budget gate (a step itself) prices them before they run.

Example
-------
>>> PER_BATCH["train"].gpus_for("mosaic"), PER_BATCH["train"].gpus_for("autoregressive")
(0, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """What one task of a step asks of a node (Kubernetes quantities).

    ``gpu`` is the number of ``nvidia.com/gpu`` devices the task requests on a cluster; the local runner
    runs every step on whatever the machine has. ``gpu_models`` narrows that to the model families
    (``RunConfig.model``) whose code uses the GPU: a task of any other family requests no GPU and runs on
    the CPU pool with the CPU image (``None``: every family gets the GPU).
    """

    cpu: str = "1"
    memory: str = "2Gi"
    gpu: int = 0
    gpu_models: tuple[str, ...] | None = None

    def gpus_for(self, model: str) -> int:
        """GPUs one task requests when the run's model family is ``model``."""
        if self.gpu_models is not None and model not in self.gpu_models:
            return 0
        return self.gpu

    @property
    def billed_cores(self) -> int:
        """Whole cores of the CPU request (Kubernetes quantity: "2", "500m"); a fraction is billed as one.

        >>> Resources(cpu="500m").billed_cores, Resources(cpu="2").billed_cores
        (1, 2)
        """
        cores = float(self.cpu[:-1]) / 1000 if self.cpu.endswith("m") else float(self.cpu)
        return max(1, math.ceil(cores))

    @property
    def model_dependent(self) -> bool:
        """True when some families get the GPU and others the CPU pool (two cluster templates)."""
        return bool(self.gpu) and self.gpu_models is not None


#: The steps that fan out over the batch plan (one task per SNP batch), in DAG order, and what one task
#: of each requests.
PER_BATCH: dict[str, Resources] = {
    # The mosaic family is CPU code (an HMM walk): only the autoregressive network trains on a GPU.
    "train": Resources(cpu="2", memory="8Gi", gpu=1, gpu_models=("autoregressive",)),
    "generate": Resources(cpu="1", memory="4Gi"),
}
