"""A long-lived worker process of the local runner: reads tasks as JSON lines, runs them, answers.

Started as ``python -m genosynth.runners.worker``. One worker runs one task at a time, so the heavy
imports of the steps (torch, pandas) are paid once per worker rather than once per batch, and the thread
limits the runner puts in the worker's environment apply before numpy or torch load.

Protocol: the runner writes ``{"run_url": ..., "step": ..., "batch": ..., "steps": "module:ATTR",
"threads": k}`` per line on stdin (``threads``: the task's share of the cores, BLAS and torch set to it for
the task); the worker writes one JSON line per task on its protocol channel (the original stdout;
anything the steps print goes to stderr instead). It exits at end of input, and dies with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pkgutil
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from genosynth.errors import BudgetExceededError, InputError, PrivacyGateError
from genosynth.pipeline import Step


def run_task(run_url: str, name: str, batch: int | None, steps: Sequence[Step]) -> dict[str, Any]:
    """Execute one node and describe the outcome as plain data (exceptions do not cross processes)."""
    from genosynth.runners.step import execute_step

    try:
        outcome = execute_step(run_url, name, batch, steps=steps)
    except InputError as exc:
        return {
            "ok": False,
            "kind": "input",
            "source": exc.source,
            "problem": exc.problem,
            "row": exc.row,
            "column": exc.column,
            "message": str(exc),
        }
    except (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        # Permanent storage errors are bad input (a path), not a crash: exit 2 with one line.
        source = str(exc.filename or run_url)
        problem = exc.strerror or str(exc)
        return {"ok": False, "kind": "input", "source": source, "problem": problem, "row": None,
                "column": None, "message": f"{source}: {problem}"}
    except BudgetExceededError as exc:
        return {"ok": False, "kind": "budget", "message": str(exc)}
    except PrivacyGateError as exc:
        return {"ok": False, "kind": "privacy", "message": str(exc)}
    except Exception as exc:
        return {
            "ok": False,
            "kind": "error",
            "message": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    return {"ok": True, "ran": outcome.ran, "seconds": outcome.seconds}


def load_steps(reference: str) -> Sequence[Step]:
    """``"module:ATTRIBUTE"`` -> the DAG (the pipeline's own, or another one, e.g. in tests)."""
    return pkgutil.resolve_name(reference)


def _die_with_parent() -> None:
    # Linux: a killed runner must not leave workers behind that keep writing into the run.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if not count:
        yield
        return
    from genosynth.genetics.device import fixed_threads

    with fixed_threads(int(count)):
        yield


def main() -> None:
    _die_with_parent()
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of the steps (and of programs they start) go to stderr
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        with _threads(task.get("threads")):
            result = run_task(task["run_url"], task["step"], task["batch"], load_steps(task["steps"]))
        protocol.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
