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
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Str, section, unique_list
from ltr.errors import ConfigError

BINARY_TASKS = {"click": "clicked", "add_to_cart": "added_to_cart", "purchase": "purchased"}
GRADED_TASKS = {"relevance": "grade"}
TASK_COLUMNS = {**BINARY_TASKS, **GRADED_TASKS}

Columns = unique_list(Str, what="column")


@section("features")
class FeatureSpec:
    """The ``data.features`` section: which columns feed the model, and how (the schema
    of the section; the rules that tie keys together are in :meth:`__post_init__`)."""

    numeric: Columns = Field(default_factory=list, description="numeric columns, "
                             "standardised (missing values filled, with a `__missing` flag)")
    categorical: Columns = Field(default_factory=list, description="categorical columns, "
                                 "embedded (rare values pooled)")
    log1p: Columns = Field(default_factory=list, description="numeric columns taken as "
                           "log(1 + x) first (each must be in `numeric`)")
    derived: Columns = Field(default_factory=list, description="derived features computed "
                             "per row (`ltr.features.derived`: brand_match, category_match, "
                             "price_z_in_list, ...)")
    min_category_count: Annotated[int, Range(ge=1, integer=True)] = Field(
        1, description="a categorical value seen fewer times in training is `unknown`")

    prefix: ClassVar[str] = "features"  # the section's path in errors (from_dict sets it)

    def __post_init__(self) -> None:
        from ltr.features.derived import DERIVED

        both = set(self.numeric) & set(self.categorical)
        if both:
            raise FieldProblem("categorical", f"{sorted(both)} also listed as numeric")
        stray = set(self.log1p) - set(self.numeric)
        if stray:
            raise FieldProblem("log1p", f"{sorted(stray)} not listed in numeric")
        unknown = [d for d in self.derived if d not in DERIVED]
        if unknown:
            raise FieldProblem("derived", f"unknown derived feature(s) {unknown}; "
                               f"known: {sorted(DERIVED)}")

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
        """Checked against the schema, errors naming ``<prefix>.<key>``."""
        from ltr.config_schema import validate

        spec = validate(cls, dict(values or {}), prefix)
        object.__setattr__(spec, "prefix", prefix)
        return spec

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
