"""Exceptions raised by ltr.

Every error about user input names *where* the problem is: the file, the column or the
config key, and a few offending rows when there are rows to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LtrError(Exception):
    """Base class for every error ltr raises on purpose."""


class DataValidationError(LtrError, ValueError):
    """A table (file) does not satisfy the data contract.

    Attributes:
        source: file path or table name the problem was found in.
        column: the offending column, if one.
        rows: up to a few offending row numbers (0-based, data rows).
    """

    def __init__(
        self,
        source: str,
        problem: str,
        column: str | None = None,
        rows: Sequence[int] = (),
        values: Sequence[Any] = (),
    ) -> None:
        self.source = str(source)
        self.column = column
        self.rows = list(rows)
        self.values = list(values)
        where = f"{self.source}"
        if column is not None:
            where += f", column '{column}'"
        msg = f"{where}: {problem}"
        if self.rows:
            shown = ", ".join(
                f"{r} ({self.values[i]!r})" if i < len(self.values) else str(r)
                for i, r in enumerate(self.rows)
            )
            msg += f" [first offending rows: {shown}]"
        super().__init__(msg)


class ConfigError(LtrError, ValueError):
    """A configuration value is invalid. The message names the config key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config key '{key}': {problem}")


class TrainingError(LtrError, RuntimeError):
    """Training produced no model: no optimiser step, no completed trial. Reported
    instead of saving or scoring an untrained model as if it were a result."""


def check_known_keys(values: object, known: object, prefix: str,
                     what: str = "parameter") -> None:
    """Raise :class:`ConfigError` naming ``<prefix>.<key>`` for the first key of
    ``values`` that is not in ``known``."""
    unknown = sorted(set(values) - set(known))  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}",
                          f"unknown {what}; known: {sorted(known)}")  # type: ignore[type-var]
