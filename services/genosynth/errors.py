"""Errors that reach the user as one line and a distinct exit status."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the CLI prints one line naming the file, row/column and what was expected; exit 2."""

    exit_code = 2

    def __init__(self, source: str, problem: str, *, row: int | None = None, column: str | None = None):
        self.source = str(source)
        self.problem = problem
        self.row = row
        self.column = column
        where = self.source
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")


class PrivacyGateError(RuntimeError):
    """The synthetic cohort failed the privacy gate; it is marked unreleased."""

    exit_code = 3


class BudgetExceededError(RuntimeError):
    """Starting the next stage would exceed the run's dollar budget."""

    exit_code = 4
