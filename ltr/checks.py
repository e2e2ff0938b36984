"""Declared constraints on configuration values, checked before any work starts.

A :class:`Range` is the one way a numeric constraint is declared, in either of two
places:

* in a config schema (:mod:`ltr.config_schema`), as the metadata of a field's type::

      lr: Annotated[float, Range(gt=0)] = Field(1e-3, description="...")

  (pydantic runs :meth:`Range.validate`: type and bounds in one check);
* in a ``RANGES`` dict beside the signature of a class that LightningCLI builds from its
  signature (``LtrDataModule``, ``LtrModule``) or that takes ``**params``::

      RANGES = {"lr": Range(gt=0), "dropout": Range(ge=0, lt=1)}

  which :func:`ltr.config_schema.signature_schema` turns into the same field metadata.

Either way the error names the dotted key (``model.lr: must be > 0, got -0.1``) and
:mod:`ltr.config_reference` prints the constraint in the reference of every key: one
declaration, two uses.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltr.errors import ConfigError


class FieldProblem(ValueError):
    """A problem a schema validator found, with the key relative to the value being
    validated (``None``: the value itself). :func:`ltr.config_schema.config_error` turns
    it into a :class:`~ltr.errors.ConfigError` naming the full dotted key."""

    def __init__(self, key: str | None, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(problem if key is None else f"{key}: {problem}")


@dataclass(frozen=True)
class Range:
    """A numeric constraint: bounds (``gt``/``ge``/``lt``/``le``), integer or not, and
    whether ``None`` is allowed."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    optional: bool = False

    def describe(self) -> str:
        """``'> 0'``, ``'in [0, 1)'``, ``'an integer >= 1'``..."""
        low = ("(", self.gt) if self.gt is not None else ("[", self.ge)
        high = (")", self.lt) if self.lt is not None else ("]", self.le)
        kind = "an integer " if self.integer else ""
        if low[1] is not None and high[1] is not None:
            text = f"{kind}in {low[0]}{_num(low[1])}, {_num(high[1])}{high[0]}"
        elif low[1] is not None:
            text = f"{kind}{'>' if low[0] == '(' else '>='} {_num(low[1])}"
        elif high[1] is not None:
            text = f"{kind}{'<' if high[0] == ')' else '<='} {_num(high[1])}"
        else:
            text = "an integer" if self.integer else "a number"
        return f"{text} (or null)" if self.optional else text

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Integral) and math.isnan(value):
            return False
        return not ((self.gt is not None and not value > self.gt)
                    or (self.ge is not None and not value >= self.ge)
                    or (self.lt is not None and not value < self.lt)
                    or (self.le is not None and not value <= self.le))

    def validate(self, value: Any) -> Any:
        """``value`` (numpy scalars as Python numbers) if :meth:`ok`, else
        :class:`FieldProblem` (the schema translator adds the key)."""
        if not self.ok(value):
            raise FieldProblem(None, f"must be {self.describe()}, got {value!r}")
        return value.item() if isinstance(value, np.generic) else value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """As field metadata (``Annotated[int, Range(ge=1, integer=True)]``) the range is
        the field's whole check: type and bounds."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(self.validate)

    def ok_array(self, values: np.ndarray) -> np.ndarray:
        """:meth:`ok` for a float array (NaN is "missing": allowed when optional)."""
        values = np.asarray(values, dtype=float)
        good = np.isfinite(values)
        if self.integer:
            good &= values == np.round(values)
        for bound, test in ((self.gt, np.greater), (self.ge, np.greater_equal),
                            (self.lt, np.less), (self.le, np.less_equal)):
            if bound is not None:
                good &= test(values, bound, where=np.isfinite(values), out=np.zeros_like(good))
        if self.optional:
            good |= np.isnan(values)
        return good


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_ranges(values: Mapping[str, Any], ranges: Mapping[str, Range], prefix: str) -> None:
    """Raise :class:`ConfigError` naming ``prefix.key`` for the first value outside its
    range (keys absent from ``values`` are not checked)."""
    for key, rule in ranges.items():
        if key in values and not rule.ok(values[key]):
            raise ConfigError(f"{prefix}.{key}", f"must be {rule.describe()}, got "
                              f"{values[key]!r}")
