"""Search spaces: parse, validate against the ranker, sample, nest.

A space maps a parameter name (dotted for nested keys, e.g. ``arch.n_cross``) to one of

* ``{type: int, low, high, step: 1, log: false}``
* ``{type: float, low, high, step: null, log: false}``
* ``{type: categorical, choices: [...]}``

The schema of an entry is :class:`SpaceEntry`; every problem raises
:class:`~ltr.errors.ConfigError` naming the key (``space.max_depth.low``) before any
trial runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, PlainValidator

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Bool, Number, Section, Str, validate
from ltr.errors import ConfigError

TYPES = ("int", "float", "categorical")
KEYS = {"int": {"type", "low", "high", "step", "log"},
        "float": {"type", "low", "high", "step", "log"},
        "categorical": {"type", "choices"}}


@dataclass(frozen=True)
class Param:
    """One searched parameter."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an Optuna trial."""
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        if self.type == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high),
                                       step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def example(self) -> Any:
        """A value inside the range (for the construction check)."""
        if self.type == "categorical":
            return self.choices[0]
        return int(self.low) if self.type == "int" else float(self.low)


def _choice(value: Any) -> Any:
    """Optuna categorical choices must be None, bool, int, float or str."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise FieldProblem(None, f"categorical choice {value!r} must be null, a boolean, a "
                       "number or a string (use several parameters for lists)")


class SpaceEntry(Section):
    """One entry of ``space``: a distribution (the keys its ``type`` takes, below)."""

    model_config = ConfigDict(extra="allow")  # refused below, naming the type's keys

    type: Literal[TYPES] = Field(description="`int`, `float` or `categorical`")
    low: Number | None = Field(None, description="int/float: lowest value (> 0 with log)")
    high: Number | None = Field(None, description="int/float: highest value")
    step: Annotated[float, Range(gt=0)] | None = Field(
        None, description="int/float: step between values (int default 1; not with log)")
    log: Bool = Field(False, description="int/float: sample on a log scale")
    choices: list[Annotated[Any, PlainValidator(_choice)]] | None = Field(
        None, description="categorical: the values (null, booleans, numbers, strings)")

    def model_post_init(self, context: Any) -> None:
        given = self.model_fields_set | set(self.model_extra or {})
        unknown = sorted(given - KEYS[self.type])
        if unknown:
            raise FieldProblem(unknown[0], f"unknown key for a {self.type} parameter; "
                               f"known: {sorted(KEYS[self.type])}")
        if self.type == "categorical":
            if not self.choices:
                raise FieldProblem("choices", "must be a non-empty list")
            return
        for bound in ("low", "high", "step"):
            value = getattr(self, bound)
            if self.type == "int" and value is not None and not isinstance(value, int):
                raise FieldProblem(bound, f"must be an integer, got {value!r}")
        for bound in ("low", "high"):
            if getattr(self, bound) is None:
                raise FieldProblem(bound, "is required")
        if self.low > self.high:
            raise FieldProblem("low", f"{self.low!r} is above high {self.high!r}")
        if self.log and self.low <= 0:
            raise FieldProblem("low", f"must be > 0 with log: true, got {self.low!r}")
        if self.log and self.step is not None:
            raise FieldProblem("step", "cannot be combined with log: true")

    def param(self, name: str) -> Param:
        if self.type == "categorical":
            return Param(name, self.type, choices=tuple(self.choices or ()))
        return Param(name, self.type, self.low, self.high, self.step, self.log)


def _some(space: dict[str, Any]) -> dict[str, Any]:
    if not space:
        raise FieldProblem(None, "must map at least one parameter to a distribution")
    return space


Space = Annotated[dict[Str, SpaceEntry], AfterValidator(_some)]


def parse_param(name: str, spec: Any) -> Param:
    """One entry of ``space`` as a :class:`Param` (ConfigError naming ``space.<name>...``)."""
    return validate(SpaceEntry, spec, f"space.{name}").param(name)


def parse_space(space: Any) -> list[Param]:
    """The whole ``space`` mapping, in config order."""
    checked = validate(Space, space, "space")
    return [entry.param(str(name)) for name, entry in checked.items()]


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"arch.n_cross": 2}`` -> ``{"arch": {"n_cross": 2}}``."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge (``extra`` wins), without changing either input."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def known_params(model: str) -> set[str] | None:
    """Top-level parameter names the ranker accepts (None: cannot tell)."""
    from ltr.rankers.base import ranker_class

    return ranker_class(model, "model").param_names()


def check_space(model: str, fixed: dict[str, Any], params: list[Param]) -> None:
    """Refuse names the ranker does not take and values it refuses, naming the key."""
    from ltr.rankers.base import make_ranker

    known = known_params(model)
    if known is not None:
        for name in fixed:
            if name not in known:
                raise ConfigError(f"fixed.{name}", f"unknown parameter for '{model}'; "
                                  f"known: {sorted(known)}")
        for p in params:
            top = p.name.split(".")[0]
            if top not in known:
                raise ConfigError(f"space.{p.name}", f"unknown parameter for '{model}'; "
                                  f"known: {sorted(known)}")
    sampled = nest({p.name: p.example() for p in params})
    try:
        make_ranker(model, merge(fixed, sampled), "model")
    except ConfigError as exc:
        raise ConfigError(_where(exc.key, params), str(exc)) from exc


def _where(key: str, params: list[Param]) -> str:
    """Map a ranker's ``model.params.<name>`` key to ``space.<name>`` or ``fixed.<name>``."""
    prefix = "model.params."
    if not key.startswith(prefix):
        return key
    name = key[len(prefix):]
    for p in params:
        if name == p.name or name.startswith(p.name + ".") or p.name.startswith(name + "."):
            return f"space.{p.name}"
    return f"fixed.{name}"
