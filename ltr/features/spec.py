"""The feature spec: which columns of the joined row table feed the model, and how.

A *row* is one (list, product) slot: an impression of a search session, or a candidate of
a query's pool. The joined row table holds the impression columns, the product's columns,
the customer's columns, history features (:mod:`ltr.features.history`), derived
features (:mod:`ltr.features.derived`) and the task labels.

Config example (YAML, section ``features``)::

    features:
      numeric: [price, rating, review_count, price_sensitivity, tenure_days,
                hist_pair_ctr, hist_product_ctr, hist_pair_impressions]
      log1p: [price, review_count, tenure_days, hist_pair_impressions]
      categorical: [brand, top_category, product_class, segment, preferred_brand]
      derived: [brand_match, category_match, price_z_in_list]
      min_category_count: 2
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ltr.errors import ConfigError

BINARY_TASKS = {"click": "clicked", "add_to_cart": "added_to_cart", "purchase": "purchased"}
GRADED_TASKS = {"relevance": "grade"}
TASK_COLUMNS = {**BINARY_TASKS, **GRADED_TASKS}


@dataclass
class FeatureSpec:
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    log1p: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    min_category_count: int = 1
    prefix: str = "features"

    def __post_init__(self) -> None:
        from ltr.features.derived import DERIVED

        p = self.prefix
        for key in ("numeric", "categorical", "log1p", "derived"):
            value = getattr(self, key)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{p}.{key}", f"must be a list of column names, got {value!r}")
            if len(set(value)) != len(value):
                raise ConfigError(f"{p}.{key}", f"repeats a column: {value}")
            setattr(self, key, list(value))
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ConfigError(f"{p}.categorical", f"{sorted(both)} also listed as numeric")
        stray = set(self.log1p) - set(self.numeric)
        if stray:
            raise ConfigError(f"{p}.log1p", f"{sorted(stray)} not listed in {p}.numeric")
        unknown = [d for d in self.derived if d not in DERIVED]
        if unknown:
            raise ConfigError(f"{p}.derived", f"unknown derived feature(s) {unknown}; "
                              f"known: {sorted(DERIVED)}")
        if not isinstance(self.min_category_count, int) or self.min_category_count < 1:
            raise ConfigError(f"{p}.min_category_count", "must be an integer >= 1")

    @property
    def numeric_inputs(self) -> list[str]:
        """Numeric columns fed to the model: configured ones plus numeric derived ones."""
        from ltr.features.derived import DERIVED

        return self.numeric + [d for d in self.derived if DERIVED[d].kind == "numeric"]

    @property
    def categorical_inputs(self) -> list[str]:
        from ltr.features.derived import DERIVED

        return self.categorical + [d for d in self.derived if DERIVED[d].kind == "categorical"]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, prefix: str = "features") -> FeatureSpec:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)} - {"prefix"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{prefix}.{unknown[0]}", f"unknown key; known: {sorted(known)}")
        return cls(**values, prefix=prefix)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "prefix"}


def check_tasks(tasks: list[str], key: str = "model.tasks") -> list[str]:
    """Validate task names (click, add_to_cart, purchase, relevance)."""
    if not tasks:
        raise ConfigError(key, "at least one task is needed")
    unknown = [t for t in tasks if t not in TASK_COLUMNS]
    if unknown:
        raise ConfigError(key, f"unknown task(s) {unknown}; choose from {list(TASK_COLUMNS)}")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(key, f"repeats a task: {tasks}")
    return list(tasks)
