"""The one error type for bad user input."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: rendered as one line ``<file>: <problem>``; the CLI exits with code 2.

    Example:
        >>> str(InputError("scan.dcm", "no pixel data"))
        'scan.dcm: no pixel data'
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.problem if self.path is None else f"{self.path}: {self.problem}"
