"""The local runner: the whole DAG on this machine, bounded parallelism, progress bars, resume.

Scheduling is dynamic: a node (a step, or one batch of a fan-out step) starts as soon as the nodes it
depends on are committed, up to ``max_parallel`` at a time. A batch of ``generate`` waits only for the
same batch of ``train``; a whole-run step waits for every batch of a fan-out step before it. Nodes whose
marker exists are skipped, so a rerun after a kill continues where the first run stopped; since every
step is deterministic given the run's seed, the final outputs are byte-identical either way.

Nodes run in long-lived worker processes (``genosynth.runners.worker``), or in threads of this process for
``memory://`` runs, whose objects exist only inside this process. Each node a worker runs gets a share
of the cores (BLAS, torch and ``OMP_NUM_THREADS`` set for that task): the cores over the number of nodes
running once it starts, so a step that runs alone (prep, assemble, compare) has every core and two
batches side by side have half each. The cores are this process's (its CPU affinity), or
``OMP_NUM_THREADS`` when it is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genosynth import pipeline, run_layout, storage
from genosynth.errors import BudgetExceededError, InputError, PrivacyGateError
from genosynth.genetics.device import cpu_threads
from genosynth.pipeline import Step
from genosynth.run_config import RunConfig
from genosynth.runners.worker import load_steps, run_task

DEFAULT_STEPS = "genosynth.pipeline:STEPS"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

Node = tuple[str, "int | None"]


class StepFailedError(RuntimeError):
    """A step raised an unexpected error; the message names the step, batch and cause."""

    exit_code = 1

    def __init__(self, node: Node, message: str, detail: str = ""):
        self.node = node
        self.detail = detail
        super().__init__(f"step {pipeline.node_id(*node)} failed: {message}")


@dataclass
class RunSummary:
    """What a local run did: nodes executed now, nodes found committed, wall seconds."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_pipeline(
    run_url: str,
    *,
    max_parallel: int = 2,
    steps_ref: str = DEFAULT_STEPS,
    use_processes: bool | None = None,
    progress: bool = True,
    console: Console | None = None,
    keep_going: Callable[[], bool] | None = None,
) -> RunSummary:
    """Run (or resume) every step of the DAG for the run at ``run_url`` (its config.json must exist).

    Parameters
    ----------
    max_parallel : most nodes running at once.
    steps_ref : ``"module:ATTRIBUTE"`` naming the DAG (the pipeline's by default).
    use_processes : worker processes (default, except for ``memory://`` runs) or threads.
    progress : draw progress bars on ``console`` (stderr by default).
    keep_going : polled before each node starts (e.g. "the run's lease is still ours"); once it answers
        False no node starts, the running ones finish, and :class:`StepFailedError` is raised.

    Raises
    ------
    InputError, BudgetExceededError, PrivacyGateError
        Re-raised from the step that raised it (exit statuses 2, 4, 3).
    StepFailedError
        Any other error of a step.
    """
    steps = load_steps(steps_ref)
    if use_processes is None:
        use_processes = not run_url.startswith("memory://")
    max_parallel = max(1, int(max_parallel))
    console = console or Console(stderr=True)
    started = time.perf_counter()
    summary = RunSummary()
    executor = _Executor(max_parallel, steps_ref, use_processes)
    with executor, _Bars(steps, console, progress) as bars:
        scheduler = _Scheduler(run_url, steps, executor, bars, summary, max_parallel, keep_going)
        try:
            scheduler.run_dag()
        finally:
            # Like Argo's onExit: final accounting happens whatever the DAG's outcome.
            scheduler.run_exit_steps()
    summary.seconds = time.perf_counter() - started
    return summary


class _Scheduler:
    """Dependency counting over nodes: each node waits for a count of uncommitted dependencies.

    Nodes that need the batch list (fan-out steps and everything downstream of them) are added once the
    step writing ``prep/batches.json`` has committed. Work per completed node is proportional to its
    dependents, so runs with thousands of batches schedule in linear time.
    """

    def __init__(
        self,
        run_url: str,
        steps: Sequence[Step],
        executor: _Executor,
        bars: _Bars,
        summary: RunSummary,
        max_parallel: int,
        keep_going: Callable[[], bool] | None = None,
    ):
        self.run_url = run_url
        self.keep_going = keep_going
        self.steps = list(steps)
        self.by_name = {s.name: s for s in steps}
        self.executor = executor
        self.bars = bars
        self.summary = summary
        self.max_parallel = max_parallel
        self.done: set[Node] = set()
        self.running: dict[Future, Node] = {}
        self.batches: list[int] | None = None
        self.error: BaseException | None = None
        self.waiting: dict[Node, int] = {}
        self.dependents: dict[Node, list[Node]] = {}
        self.ready: deque[Node] = deque()
        dag = pipeline.dag_steps(self.steps)
        self.after_batches = [s for s in dag if self._needs_batches(s)]
        self.producers = {s.name for s in self.steps if run_layout.PREP_BATCHES in s.outputs}
        self._add_nodes([s for s in dag if s not in self.after_batches])

    def _needs_batches(self, step: Step) -> bool:
        return step.per_batch or any(self._needs_batches(self.by_name[d]) for d in step.after)

    def _nodes(self, step: Step) -> list[Node]:
        return [(step.name, b) for b in self.batches or []] if step.per_batch else [(step.name, None)]

    def _dependencies(self, node: Node) -> list[Node]:
        name, batch = node
        out: list[Node] = []
        for dependency in self.by_name[name].after:
            if not self.by_name[dependency].per_batch:
                out.append((dependency, None))
            elif batch is not None:
                out.append((dependency, batch))  # batch k waits only for batch k
            else:
                out.extend((dependency, b) for b in self.batches or [])
        return out

    def _add_nodes(self, steps: Sequence[Step]) -> None:
        for step in steps:
            for node in self._nodes(step):
                pending = [d for d in self._dependencies(node) if d not in self.done]
                self.waiting[node] = len(pending)
                for dependency in pending:
                    self.dependents.setdefault(dependency, []).append(node)
                if not pending:
                    self.ready.append(node)

    def _load_batches(self) -> None:
        self.batches = pipeline.read_batches(self.run_url)
        for step in self.steps:
            if step.per_batch:
                self.bars.set_total(step.name, len(self.batches))
        self._add_nodes(self.after_batches)

    # -- main loop --------------------------------------------------------------------------------
    def run_dag(self) -> None:
        try:
            while True:
                if self.error is None:
                    self._start_ready()
                if not self.running:
                    break
                finished, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                for future in finished:
                    self._finish(self.running.pop(future), future.result())
        except BaseException:
            self.executor.stop()
            raise
        if self.error is not None:
            raise self.error
        missing = [s.name for s in pipeline.dag_steps(self.steps) if not self._step_done(s)]
        if missing:
            raise StepFailedError((missing[0], None), "never became ready (a dependency did not commit)")

    def _step_done(self, step: Step) -> bool:
        if self.batches is None and self._needs_batches(step):
            return False
        return all(node in self.done for node in self._nodes(step))

    def _start_ready(self) -> None:
        if self.ready and self.keep_going is not None and not self.keep_going():
            self.error = StepFailedError(
                self.ready[0], "the run URL's lease was lost (another run took it over after missing "
                "heartbeats); stopped before starting more steps")
            return
        while self.ready and len(self.running) < self.max_parallel:
            node = self.ready.popleft()
            if pipeline.is_committed(self.run_url, *node):
                self._mark_done(node, ran=False)  # may make more nodes ready
                continue
            # Nodes running once this one and the others ready to start now have started.
            share = len(self.running) + 1 + min(len(self.ready), self.max_parallel - len(self.running) - 1)
            self.running[self.executor.submit(self.run_url, node, share)] = node
            self.bars.start(node)

    def _finish(self, node: Node, result: dict[str, Any]) -> None:
        if result["ok"]:
            self._mark_done(node, ran=bool(result["ran"]))
            return
        self.bars.fail(node, result["message"])
        if self.error is None:
            self.error = _as_exception(node, result)

    def _mark_done(self, node: Node, *, ran: bool) -> None:
        self.done.add(node)
        (self.summary.ran if ran else self.summary.skipped).append(pipeline.node_id(*node))
        self.bars.advance(node)
        for dependent in self.dependents.pop(node, []):
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0:
                self.ready.append(dependent)
        if node[0] in self.producers and all((name, None) in self.done for name in self.producers):
            self._load_batches()

    def run_exit_steps(self) -> None:
        for step in pipeline.exit_steps(self.steps):
            node: Node = (step.name, None)
            self.bars.start(node)
            try:
                result = self.executor.submit(self.run_url, node).result()
            except BaseException:
                return
            if result["ok"]:
                self._mark_done(node, ran=True)
            else:
                self.bars.fail(node, result["message"])
                if self.error is None:  # the DAG's own error is the one to report
                    raise _as_exception(node, result)


def _as_exception(node: Node, result: dict[str, Any]) -> BaseException:
    kind = result["kind"]
    if kind == "input":
        return InputError(result["source"], result["problem"], row=result["row"], column=result["column"])
    if kind == "budget":
        return BudgetExceededError(result["message"])
    if kind == "privacy":
        return PrivacyGateError(result["message"])
    return StepFailedError(node, result["message"], result.get("traceback", ""))


# --- execution -----------------------------------------------------------------------------------
class _Executor:
    """Runs nodes in ``size`` worker processes (one per thread of a thread pool) or in threads."""

    def __init__(self, size: int, steps_ref: str, use_processes: bool):
        self.size = size
        self.steps_ref = steps_ref
        self.use_processes = use_processes
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="genosynth-node")
        self.local = threading.local()
        self.workers: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.steps = None if use_processes else load_steps(steps_ref)

    def __enter__(self) -> _Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def submit(self, run_url: str, node: Node, running: int = 1) -> Future:
        """Run ``node`` in a worker; ``running`` nodes (this one included) share the cores meanwhile."""
        return self.pool.submit(self._run, run_url, node, max(1, cpu_threads() // max(running, 1)))

    def _run(self, run_url: str, node: Node, threads: int) -> dict[str, Any]:
        name, batch = node
        if not self.use_processes:
            return run_task(run_url, name, batch, self.steps)
        worker = getattr(self.local, "worker", None)
        if worker is None or worker.poll() is not None:
            worker = self.local.worker = self._start_worker()
        request = {"run_url": run_url, "step": name, "batch": batch, "steps": self.steps_ref,
                   "threads": threads}
        try:
            worker.stdin.write(json.dumps(request) + "\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            code = worker.wait()
            return {"ok": False, "kind": "error", "message": f"worker process exited with status {code}"}
        return json.loads(line)

    def _start_worker(self) -> subprocess.Popen:
        env = dict(os.environ)
        # The most any task may use; each task is then limited to its share (see submit).
        threads = cpu_threads()
        for variable in _THREAD_VARIABLES:
            env.setdefault(variable, str(threads))
        # Workers must import what this process imports (e.g. a DAG defined outside the package).
        env["PYTHONPATH"] = os.pathsep.join(p for p in [*sys.path, env.get("PYTHONPATH", "")] if p)
        worker = subprocess.Popen(
            [sys.executable, "-m", "genosynth.runners.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        with self.lock:
            self.workers.append(worker)
        return worker

    def stop(self) -> None:
        with self.lock:
            workers, self.workers = self.workers, []
        for worker in workers:
            if worker.stdin:
                with contextlib.suppress(OSError):
                    worker.stdin.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


# --- progress ------------------------------------------------------------------------------------
class _Bars:
    """One progress bar per step: batches done / total for fan-out steps, 0/1 for the others."""

    def __init__(self, steps: Sequence[Step], console: Console, enabled: bool):
        self.console = console
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.fields[step]:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.tasks = {
            s.name: self.progress.add_task(
                s.name, step=s.name, state="", total=None if s.per_batch else 1, start=False
            )
            for s in steps
        }
        self.started: set[str] = set()

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.__exit__(*exc_info)

    def set_total(self, name: str, total: int) -> None:
        self.progress.update(self.tasks[name], total=total)

    def start(self, node: Node) -> None:
        name, batch = node
        if name not in self.started:
            self.started.add(name)
            self.progress.start_task(self.tasks[name])
        self.progress.update(self.tasks[name], state="running" if batch is None else f"batch {batch}")

    def advance(self, node: Node) -> None:
        name = node[0]
        if name not in self.started:
            self.started.add(name)
            self.progress.start_task(self.tasks[name])
        self.progress.advance(self.tasks[name])
        task = self.progress.tasks[self.tasks[name]]
        if task.total is not None and task.completed >= task.total:
            self.progress.update(self.tasks[name], state="done")
            self.progress.stop_task(self.tasks[name])

    def fail(self, node: Node, message: str) -> None:
        self.progress.update(self.tasks[node[0]], state="[red]failed")


# --- run configuration ---------------------------------------------------------------------------
#: Fields that steer how a run executes, not what it computes: they may change when a run is resumed.
OPERATIONAL_FIELDS = ("max_parallel", "allow_privacy_failure", "budget_dollars")


def check_run_destination(run_url: str, dataset_url: str) -> None:
    """Refuse, before anything is written, a run URL that must not hold a run.

    Refused: a path under a regular file or unwritable; the input dataset's own URL or a URL inside it;
    an existing dataset; a folder holding other files that is not a genosynth run. An existing run is
    accepted (it is resumed, or refused by :func:`prepare_run` when the settings differ).
    """
    from genosynth.formats.dataset import DESCRIPTOR

    storage.check_writable(run_url)
    run, data = _normalised(run_url), _normalised(dataset_url)
    if run == data or run.startswith(data + "/"):
        raise InputError(run_url, f"--out is the input dataset {dataset_url} or inside it: a run and a "
                         "dataset never share a folder; choose another --out")
    keys = set(storage.list_keys(run_url))
    if DESCRIPTOR in keys:
        raise InputError(run_url, f"is a genosynth dataset (it holds {DESCRIPTOR}); a run is never written "
                         "into a dataset: choose another --out")
    other = sorted(keys - {run_layout.CONFIG, run_layout.LEASE})
    if run_layout.CONFIG not in keys and other:
        raise InputError(run_url, f"not empty (it holds {other[0]!r}) and not a genosynth run; choose an "
                         "empty --out")


def _normalised(url: str) -> str:
    fs, path = storage.filesystem(url)
    if storage.is_local(fs):
        return os.path.realpath(path)
    return f"{fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]}://{path.strip('/')}"


def prepare_run(run_url: str, config: RunConfig) -> RunConfig:
    """Write ``RUN/config.json`` for a new run, or check ``config`` against an existing run's.

    Resuming with a config that would compute something else is refused (the outputs already committed
    would not match); only :data:`OPERATIONAL_FIELDS` may differ, and the new values are saved.
    """
    config_url = run_layout.url(run_url, run_layout.CONFIG)
    if storage.exists(config_url):
        existing = RunConfig.load(run_url)
        old, new = existing.to_dict(), config.to_dict()
        for key in sorted(set(old) | set(new)):
            if key not in OPERATIONAL_FIELDS and old.get(key) != new.get(key):
                raise InputError(
                    config_url,
                    f"this run was started with {key}={old.get(key)!r}, "
                    f"found {new.get(key)!r}: use a new --out, or the same settings to resume",
                )
        if old == new:
            return existing
    config.save(run_url)
    return config
