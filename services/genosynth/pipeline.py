"""The pipeline DAG, defined once: steps, their code, inputs/outputs under a run URL, resources, fan-out.

Both runners read this module: the local runner (``genosynth run``) executes it on one machine and the
Argo renderer (``genosynth workflows render``) turns it into a WorkflowTemplate. Every step is a function
``run(run_url, batch=None)`` that reads its inputs and writes its outputs under the run URL; the runner
times it, records its cost and writes a commit marker under ``RUN/_markers/`` after it returns.

Example
-------
>>> [s.name for s in STEPS][:3]
['prep', 'budget-gate', 'train']
>>> step_named("train").per_batch
True
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from genosynth import run_layout, storage
from genosynth.errors import InputError
from genosynth.resources import PER_BATCH, Resources

StepFunction = Callable[[str, "int | None"], None]


@dataclass(frozen=True)
class Step:
    """One node of the DAG.

    Parameters
    ----------
    name : the step name used on the command line (``genosynth step NAME``) and in markers.
    target : ``"module:function"`` of the step function.
    after : names of the steps that must be committed first.
    inputs, outputs : keys under the run URL; ``{batch}`` stands for the five-digit batch number.
    per_batch : fan out over the batch list in ``prep/batches.json`` (one task per batch).
    reads_input : reads the input cohort (the dataset URL); every other step reads only under the run URL,
        so on a cluster only these run with the identity that may read the input bucket.
    on_exit : runs once at the end whatever happened (success, failure, refusal); never skipped.
    """

    name: str
    target: str
    description: str
    after: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    per_batch: bool = False
    reads_input: bool = False
    on_exit: bool = False

    def function(self) -> StepFunction:
        """Import and return the step function (imports stay lazy: steps pull in heavy libraries)."""
        return pkgutil.resolve_name(self.target)

    def output_keys(self, batch: int | None = None) -> list[str]:
        """Output keys with the batch number filled in."""
        if batch is None:
            return list(self.outputs)
        return [key.replace("{batch}", f"{batch:05d}") for key in self.outputs]


_BATCH = "{batch}"

STEPS: tuple[Step, ...] = (
    Step(
        name="prep",
        target="genosynth.prep.step:run",
        description="QC, 80/20 split into training and holdout individuals, SNP batches",
        inputs=(run_layout.CONFIG,),
        outputs=(
            run_layout.PREP_COHORT,
            run_layout.PREP_TRAIN,
            run_layout.PREP_HOLDOUT,
            run_layout.PREP_QC_LOG,
            run_layout.PREP_BATCHES,
            run_layout.PREP_PLAN,
        ),
        resources=Resources(cpu="2", memory="8Gi"),
        reads_input=True,
    ),
    Step(
        name="budget-gate",
        target="genosynth.cost.gate:run",
        description="refuse to start training when spent + estimate exceeds the budget",
        after=("prep",),
        inputs=(run_layout.PREP_BATCHES, run_layout.LEDGER),
        resources=Resources(cpu="500m", memory="512Mi"),
    ),
    Step(
        name="train",
        target="genosynth.train.step:run",
        description="fit one genotype model per SNP batch",
        after=("budget-gate",),
        inputs=(run_layout.PREP_TRAIN, run_layout.PREP_BATCHES, run_layout.PREP_PLAN),
        outputs=(f"{run_layout.TRAIN}/batch-{_BATCH}",),
        resources=PER_BATCH["train"],
        per_batch=True,
    ),
    Step(
        name="generate",
        target="genosynth.generate.step:run",
        description="synthetic genotypes of one SNP batch",
        after=("train",),
        inputs=(f"{run_layout.TRAIN}/batch-{_BATCH}", run_layout.PREP_BATCHES, run_layout.PREP_PLAN),
        outputs=(f"{run_layout.GENERATE}/batch-{_BATCH}",),
        resources=PER_BATCH["generate"],
        per_batch=True,
    ),
    Step(
        name="assemble",
        target="genosynth.generate.assemble:run",
        description="stitch the batches and synthesise phenotypes",
        after=("generate",),
        inputs=(run_layout.GENERATE, run_layout.PREP_TRAIN, run_layout.PREP_BATCHES, run_layout.PREP_PLAN),
        outputs=(run_layout.SYNTHETIC, run_layout.PHENOTYPE_MODEL_LOG),
        resources=Resources(cpu="2", memory="8Gi"),
    ),
    Step(
        name="gwas-real",
        target="genosynth.gwas.step:run_real",
        description="GWAS of the whole QC'd real cohort (the synthetic cohort's size)",
        after=("prep",),
        inputs=(run_layout.PREP_COHORT,),
        outputs=(run_layout.GWAS_REAL,),
        resources=Resources(cpu="2", memory="8Gi"),
    ),
    Step(
        name="gwas-synthetic",
        target="genosynth.gwas.step:run_synthetic",
        description="GWAS of the synthetic cohort",
        after=("assemble",),
        inputs=(run_layout.SYNTHETIC,),
        outputs=(run_layout.GWAS_SYNTHETIC,),
        resources=Resources(cpu="2", memory="8Gi"),
    ),
    Step(
        name="compare",
        target="genosynth.compare.step:run",
        description="fidelity metrics and the privacy gate",
        after=("gwas-real", "gwas-synthetic"),
        inputs=(
            run_layout.PREP_TRAIN,
            run_layout.PREP_HOLDOUT,
            run_layout.SYNTHETIC,
            run_layout.GWAS_REAL,
            run_layout.GWAS_SYNTHETIC,
        ),
        outputs=(run_layout.COMPARE_METRICS, run_layout.COMPARE_DETAILS, run_layout.COMPARE_GATE,
                 run_layout.COMPARE_RELEASE),
        resources=Resources(cpu="2", memory="8Gi"),
    ),
    Step(
        name="report",
        target="genosynth.report.step:run",
        description="HTML report with plots",
        after=("compare",),
        inputs=(
            run_layout.COMPARE_METRICS,
            run_layout.COMPARE_DETAILS,
            run_layout.COMPARE_GATE,
            run_layout.COMPARE_RELEASE,
            run_layout.PREP_TRAIN,
            run_layout.SYNTHETIC,
            run_layout.GWAS_REAL,
            run_layout.GWAS_SYNTHETIC,
        ),
        outputs=(run_layout.REPORT,),
        resources=Resources(cpu="1", memory="2Gi"),
    ),
    Step(
        name="finalize",
        target="genosynth.cost.finalize:run",
        description="final ledger totals and metrics",
        inputs=(run_layout.LEDGER,),
        outputs=(run_layout.COST_SUMMARY,),
        resources=Resources(cpu="500m", memory="512Mi"),
        on_exit=True,
    ),
)

#: Keys whose content carries wall-clock times or durations (ledger records, markers, cost totals):
#: everything else a run writes is byte-for-byte reproducible from its config and seed.
TIMING_KEYS: tuple[str, ...] = (run_layout.LEDGER, run_layout.MARKERS, run_layout.COST_SUMMARY)


def step_named(name: str, steps: Sequence[Step] = STEPS) -> Step:
    """The step called ``name``; an unknown name is an :class:`InputError` listing the known ones."""
    for step in steps:
        if step.name == name:
            return step
    raise InputError("step", f"unknown step {name!r}; expected one of: {', '.join(s.name for s in steps)}")


def dag_steps(steps: Sequence[Step] = STEPS) -> list[Step]:
    """The steps of the DAG proper (without on-exit steps), in a topological order."""
    return [s for s in steps if not s.on_exit]


def exit_steps(steps: Sequence[Step] = STEPS) -> list[Step]:
    return [s for s in steps if s.on_exit]


def validate(steps: Sequence[Step]) -> None:
    """Check that names are unique, dependencies exist and come earlier (the tuple is topological)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"duplicate step {step.name!r}")
        for dependency in step.after:
            if dependency not in seen:
                raise ValueError(f"step {step.name!r} runs after {dependency!r}, not defined before it")
        if step.on_exit and step.after:
            raise ValueError(f"on-exit step {step.name!r} cannot depend on other steps")
        seen.add(step.name)


validate(STEPS)


# --- batches ----------------------------------------------------------------------------------------
def read_batches(run_url: str) -> list[int]:
    """Batch numbers of the run's batch plan (``prep/batches.json``, written by prep), in order."""
    from genosynth.run_state import BatchPlan

    return BatchPlan.read(run_url).numbers


#: At most this many groups per fan-out step: each group is a pod plus its retry node in the Workflow's
#: status (about 1 kB each before Argo compresses the node map), so 500 keeps a run's status well under
#: etcd's 1 MB object limit whatever the number of batches.
MAX_GROUPS = 500


def group_batches(batches: Iterable[int], group_size: int, max_groups: int = MAX_GROUPS) -> list[str]:
    """Split batch numbers into groups written as compact ranges, e.g. ``["0-31", "32-63", "64-70"]``.

    Argo fans out over groups rather than single batches so that the Workflow object (which stores every
    node's inputs and status) stays small even with many thousands of batches. Groups hold ``group_size``
    batches, or more when that would make more than ``max_groups`` groups.
    """
    if group_size < 1 or max_groups < 1:
        raise ValueError("group_size and max_groups must be positive")
    ordered = list(batches)
    group_size = max(group_size, -(-len(ordered) // max_groups))
    return [format_ranges(ordered[i : i + group_size]) for i in range(0, len(ordered), group_size)]


def format_ranges(batches: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"``."""
    parts: list[str] = []
    start = previous = None
    for value in [*batches, None]:
        if start is not None and (value is None or value != previous + 1):
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if value is not None and start is None:
            start = value
        previous = value
    return ",".join(parts)


def parse_ranges(text: str) -> list[int]:
    """Inverse of :func:`format_ranges`; a malformed list is an :class:`InputError`."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError as exc:
            raise InputError("--batches", f"expected ranges like '0-31,40', found {text!r}") from exc
        if first < 0 or last < first:
            raise InputError("--batches", f"expected ascending non-negative ranges, found {part!r}")
        out.extend(range(first, last + 1))
    return out


# --- markers ----------------------------------------------------------------------------------------
def node_id(name: str, batch: int | None = None) -> str:
    """``train-00003`` for a batch task, ``prep`` for a whole step."""
    return name if batch is None else f"{name}-{batch:05d}"


def marker_url(run_url: str, name: str, batch: int | None = None) -> str:
    """``RUN/_markers/<step>[-NNNNN].json``: written last, after the step's outputs and ledger record."""
    return run_layout.url(run_url, run_layout.MARKERS, f"{node_id(name, batch)}.json")


def is_committed(run_url: str, name: str, batch: int | None = None) -> bool:
    """Whether the step (batch) is committed: its marker exists (``storage``'s commit protocol)."""
    return storage.is_committed(marker_url(run_url, name, batch))
