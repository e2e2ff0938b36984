"""Search spaces: parse, validate against the ranker, sample, nest.

A space maps a parameter name (dotted for nested keys, e.g. ``arch.n_cross``) to one of

* ``{type: int, low, high, step: 1, log: false}``
* ``{type: float, low, high, step: null, log: false}``
* ``{type: categorical, choices: [...]}``

Every problem raises :class:`~ltr.errors.ConfigError` naming the key
(``space.max_depth.low``) before any trial runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

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


def _number(value: Any, key: str, integer: bool) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise ConfigError(key, f"must be {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    return value


def parse_param(name: str, spec: Any) -> Param:
    """One entry of ``space`` as a :class:`Param` (ConfigError naming ``space.<name>...``)."""
    key = f"space.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(key, f"must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{key}.type", f"must be one of {list(TYPES)}, got {kind!r}")
    unknown = sorted(set(spec) - KEYS[kind])
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key for a {kind} parameter; "
                          f"known: {sorted(KEYS[kind])}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{key}.choices", "must be a non-empty list")
        return Param(name, kind, choices=tuple(_hashable(c) for c in choices))
    integer = kind == "int"
    for bound in ("low", "high"):
        if bound not in spec:
            raise ConfigError(f"{key}.{bound}", "is required")
    low = _number(spec["low"], f"{key}.low", integer)
    high = _number(spec["high"], f"{key}.high", integer)
    if low > high:
        raise ConfigError(f"{key}.low", f"{low!r} is above high {high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log", f"must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}.low", f"must be > 0 with log: true, got {low!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(step, f"{key}.step", integer)
        if step <= 0:
            raise ConfigError(f"{key}.step", f"must be > 0, got {step!r}")
        if log:
            raise ConfigError(f"{key}.step", "cannot be combined with log: true")
    return Param(name, kind, low, high, step, log)


def _hashable(value: Any) -> Any:
    """Optuna categorical choices must be None, bool, int, float or str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError("space", f"categorical choice {value!r} must be null, a boolean, a "
                      "number or a string (use several parameters for lists)")


def parse_space(space: Any) -> list[Param]:
    """The whole ``space`` mapping, in config order."""
    if not isinstance(space, dict) or not space:
        raise ConfigError("space", "must map at least one parameter to a distribution")
    return [parse_param(str(name), spec) for name, spec in space.items()]


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
