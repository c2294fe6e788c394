"""Read failures the UI turns into friendly messages instead of tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal


class NoData(Exception):
    """The destination has nothing to show yet (file missing, or no ``boxes`` table)."""

    def __init__(self, reason: Literal["missing", "empty"], where: str) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"No CRM data in {where} ({reason})")


class DatabaseBusy(Exception):
    """The DuckDB file stayed locked (a load is writing) through every retry."""

    def __init__(self, path: Path, attempts: int, waited_s: float, cause: str) -> None:
        self.path = path
        self.attempts = attempts
        self.waited_s = waited_s
        self.cause = cause
        super().__init__(f"{path} is locked after {attempts} tries over {waited_s:.1f} s: {cause}")


class DestinationUnavailable(Exception):
    """The configured warehouse could not be reached or read (bad credentials, server down...)."""


READ_PROBLEMS: tuple[type[Exception], ...] = (NoData, DatabaseBusy, DestinationUnavailable)
"""What a page may raise mid-run and the shell reports as a message."""
