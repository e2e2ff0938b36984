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
from typing import Annotated, Any

from pydantic import Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Number, Str, section

Positive = Annotated[int, Range(ge=1, integer=True)]
Share = Annotated[float, Range(ge=0, le=1)]
NonNegative = Annotated[float, Range(ge=0)]


@section("simulate")
class SimulationConfig:
    """All knobs of :func:`ltr.simulate.simulate`. Defaults give a shop-like log. The
    fields are the schema of ``ltr simulate``'s ``--config`` / ``--set`` keys."""

    seed: Annotated[int, Range(integer=True)] = Field(0, description="seeds every random draw")
    n_sessions: Positive = Field(10_000, description="searches in the log")
    list_size: Positive = Field(20, description="products shown per search (top-K of the "
                                "logging policy)")
    n_customers: Positive = Field(2_000, description="customers (customers.parquet)")
    days: Positive = Field(28, description="days the sessions spread over")
    start_date: Str = Field("2026-01-01", description="first day of the log")
    query_zipf: NonNegative = Field(
        1.0, description="query popularity: P(query of popularity rank j) ~ j ** -query_zipf")
    category_query_share: Share = Field(
        0.5, description="share of sessions whose query is drawn from the customer's "
        "favourite top category")

    # examination curve (position-based model)
    exam_top: Annotated[float, Range(gt=0, le=1)] = Field(
        1.0, description="examination: P(examine | position k) = exam_top * k ** -exam_eta")
    exam_eta: NonNegative = Field(1.0, description="decay of the examination curve")
    examination: list[Annotated[float, Range(ge=0, le=1)]] | None = Field(
        None, description="explicit curve (at least list_size probabilities); overrides "
        "exam_top/exam_eta")

    policy_relevance: Number = Field(
        2.0, description="logging policy: score = policy_relevance * r + policy_popularity "
        "* z_reviews + noise")
    policy_popularity: Number = Field(0.5, description="see policy_relevance")
    policy_noise: NonNegative = Field(
        1.0, description="scale of the policy's Gumbel noise; 0 = deterministic ranker")

    click_base: Number = Field(-2.5, description="attractiveness (click given "
                               "examination) logit: intercept")
    click_relevance: Number = Field(3.5, description="... per unit of relevance")
    price_effect: Number = Field(0.8, description="... price sensitivity x cheaper price")
    brand_effect: Number = Field(1.0, description="... favourite brand")
    category_effect: Number = Field(0.5, description="... favourite top category")
    rating_effect: Number = Field(0.3, description="... standardised rating")
    cart_base: Number = Field(-2.3, description="add-to-cart given click logit: intercept")
    cart_relevance: Number = Field(1.5, description="... per unit of relevance")
    cart_price_effect: Number = Field(0.8, description="... price term")
    cart_brand_effect: Number = Field(0.5, description="... favourite brand")
    purchase_base: Number = Field(-0.5, description="purchase given add-to-cart logit: "
                                  "intercept")
    purchase_relevance: Number = Field(0.5, description="... per unit of relevance")
    purchase_price_effect: Number = Field(1.0, description="... price term")

    observed_sensitivity_noise: NonNegative = Field(
        0.1, description="noise on the price sensitivity written to customers.parquet")
    observed_brand_accuracy: Share = Field(
        0.8, description="share of customers whose recorded preferred brand is the true "
        "favourite")
    n_brands_preferred: Positive = Field(1, description="favourite brands per customer")

    synthetic_queries: Positive = Field(
        100, description="synthetic relevance (used only without judgements): queries")
    synthetic_pool: Positive = Field(120, description="candidates per synthetic query")

    extra: dict[str, Any] = Field(default_factory=dict,
                                  description="free-form, recorded with the log")

    def __post_init__(self) -> None:
        if self.examination is not None and len(self.examination) < self.list_size:
            raise FieldProblem("examination", f"needs {self.list_size} values (list_size), "
                               f"got {len(self.examination)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationConfig:
        from ltr.config_schema import validate

        return validate(cls, dict(values), "simulate")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
