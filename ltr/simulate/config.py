"""Configuration of the search-log simulator, with every parameter documented and checked.

The generative model (see :mod:`ltr.simulate.simulator` for the full statement):

* examination (position-based model): ``P(examine | position k) = exam_top * k ** -exam_eta``
* attractiveness: ``P(attracted) = sigmoid(click_base + click_relevance * r
  + price_effect * (2 s - 1) * (-z_price) + brand_effect * [brand = favourite]
  + category_effect * [top category = favourite] + rating_effect * z_rating)``
* ``P(click) = P(examine) * P(attracted)``; add-to-cart given click and purchase given
  add-to-cart are logistic in relevance and the same preference terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ltr.errors import ConfigError, check_known_keys


@dataclass
class SimulationConfig:
    """All knobs of :func:`ltr.simulate.simulate`. Defaults give a shop-like log."""

    seed: int = 0  # seeds every random draw
    n_sessions: int = 10_000  # searches in the log
    list_size: int = 20  # products shown per search (top-K of the logging policy)
    n_customers: int = 2_000  # customers (customers.parquet)
    days: int = 28  # days the sessions spread over
    start_date: str = "2026-01-01"  # first day of the log
    # query popularity: P(query of popularity rank j) ~ j ** -query_zipf
    query_zipf: float = 1.0
    # share of sessions whose query is drawn from the customer's favourite top category
    category_query_share: float = 0.5

    # examination curve (position-based model)
    exam_top: float = 1.0
    exam_eta: float = 1.0
    examination: list[float] | None = None  # explicit curve; overrides exam_top/exam_eta

    # logging policy: score = policy_relevance * r + policy_popularity * z_reviews + noise
    policy_relevance: float = 2.0
    policy_popularity: float = 0.5
    policy_noise: float = 1.0  # scale of Gumbel noise; 0 = deterministic ranker

    # attractiveness (click given examination), logits
    click_base: float = -2.5
    click_relevance: float = 3.5
    price_effect: float = 0.8
    brand_effect: float = 1.0
    category_effect: float = 0.5
    rating_effect: float = 0.3
    # add-to-cart given click, purchase given add-to-cart, logits
    cart_base: float = -2.3
    cart_relevance: float = 1.5
    cart_price_effect: float = 0.8
    cart_brand_effect: float = 0.5
    purchase_base: float = -0.5
    purchase_relevance: float = 0.5
    purchase_price_effect: float = 1.0

    # observation noise of customer attributes written to customers.parquet
    observed_sensitivity_noise: float = 0.1
    observed_brand_accuracy: float = 0.8
    n_brands_preferred: int = 1

    # synthetic relevance (used only when no judgements are given)
    synthetic_queries: int = 100
    synthetic_pool: int = 120  # candidates per synthetic query

    extra: dict[str, Any] = field(default_factory=dict)  # free-form, recorded with the log

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        positive_ints = ("n_sessions", "list_size", "n_customers", "days",
                         "synthetic_queries", "synthetic_pool", "n_brands_preferred")
        for key in positive_ints:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"simulate.{key}", f"must be a positive integer, got {value!r}")
        for key in ("category_query_share", "observed_brand_accuracy"):
            value = getattr(self, key)
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"simulate.{key}", f"must be in [0, 1], got {value!r}")
        if not 0.0 < self.exam_top <= 1.0:
            raise ConfigError("simulate.exam_top", f"must be in (0, 1], got {self.exam_top!r}")
        if self.exam_eta < 0:
            raise ConfigError("simulate.exam_eta", f"must be >= 0, got {self.exam_eta!r}")
        for key in ("policy_noise", "observed_sensitivity_noise", "query_zipf"):
            if getattr(self, key) < 0:
                raise ConfigError(f"simulate.{key}", f"must be >= 0, got {getattr(self, key)!r}")
        if self.examination is not None:
            curve = list(self.examination)
            if len(curve) < self.list_size:
                raise ConfigError("simulate.examination",
                                  f"needs {self.list_size} values (list_size), got {len(curve)}")
            if any(not 0.0 <= p <= 1.0 for p in curve):
                raise ConfigError("simulate.examination", "probabilities must be in [0, 1]")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationConfig:
        check_known_keys(values, {f.name for f in dataclasses.fields(cls)}, "simulate")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
