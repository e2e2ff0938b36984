"""The hostile-input suite's vocabulary: a :class:`Case` says what is fed in, which
class of outcome is right, and which names the message must carry.

Outcome classes:

* ``error``: an :class:`~ltr.errors.LtrError` (CLI: a non-zero exit with the message on
  stderr and no traceback) whose message names every string in ``names`` (the file,
  column, key or request field at fault);
* ``accepted``: the input is valid (or repaired in a documented way) and the call
  succeeds; the case's own function checks what came out;
* ``untrained``: a :class:`~ltr.errors.TrainingError` — nothing trained, nothing saved or
  scored as a result.

``docs/robustness.md`` is generated from the case tables (``python -m
tests.robustness.table``); a test keeps it current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ltr.errors import LtrError, TrainingError

OUTCOMES = ("error", "accepted", "untrained")


@dataclass(frozen=True)
class Case:
    id: str
    area: str  # data | config | cli | package | request | interruption
    what: str  # the input, in words
    expect: str  # one of OUTCOMES
    names: tuple[str, ...] = ()  # what the message must name
    run: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        assert self.expect in OUTCOMES, self.expect
        assert self.expect == "accepted" or self.names, f"{self.id}: name the culprit"


def params(cases: list[Case]) -> list[Any]:
    """``pytest.mark.parametrize`` values with the case ids."""
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return [pytest.param(c, id=c.id) for c in cases]


def check_message(case: Case, message: str) -> None:
    assert "Traceback" not in message, f"{case.id}: a traceback instead of a message"
    for name in case.names:
        assert name in message, f"{case.id}: the message does not name {name!r}: {message}"


def expect_outcome(case: Case, call: Callable[[], Any]) -> Any:
    """Run ``call`` and check it ends in ``case.expect``; returns the call's result for
    accepted cases."""
    if case.expect == "accepted":
        return call()
    kind = TrainingError if case.expect == "untrained" else LtrError
    with pytest.raises(kind) as info:
        call()
    check_message(case, str(info.value))
    return info.value
