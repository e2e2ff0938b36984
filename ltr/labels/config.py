"""Configuration of the label pipeline; saved beside every label file it produces."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Number, section

NORMALISATIONS = ("query_percentile", "global_percentile", "none")
GRADING = ("quantiles", "thresholds")


def _lexical_weight(value: Any) -> Any:
    if value == "auto" or Range(ge=0).ok(value):
        return value
    raise FieldProblem(None, f"must be 'auto' or a number >= 0, got {value!r}")


Count = Annotated[int, Range(ge=1, integer=True)]
Weight = Annotated[float, Range(ge=0)]
Share = Annotated[float, Range(ge=0, le=1)]


@section("labels")
class LabelConfig:
    """How behaviour and text combine into graded labels 0..n_grades-1.

    score = w * behaviour + (1 - w) * similarity, with ``w = behaviour_weight`` for a pair
    with at least ``min_evidence`` expected examinations, ``low_evidence_weight`` below it
    (the label leans on text) and 0 for pairs of queries without any click.
    behaviour = weighted mean of the normalised smoothed click, add-to-cart and purchase
    rates (``click_weight``, ``cart_weight``, ``purchase_weight``).
    similarity = cosine + ``lexical_weight`` * query-term coverage
    (:mod:`ltr.text.lexical`) when a lexical matcher is given; ``auto`` calibrates the weight
    on the log: the one whose similarity ranks well-observed pairs most like their clicks.

    The fields are the schema of the ``labels`` section (types, ranges, choices, unknown
    keys refused: :mod:`ltr.config_schema`); :meth:`__post_init__` adds the rules that
    tie fields together.
    """

    position_bias: Literal["pbm_em", "none"] = Field(
        "pbm_em", description="position-bias model: `pbm_em` (position-based model fitted "
        "by EM on the log) or `none`")
    em_max_iter: Count = Field(1000, description="EM iterations at most")
    prior_min_evidence: Weight = Field(
        5.0, description="expected examinations a pair needs to take part in fitting the "
        "Beta prior (empirical Bayes smoothing)")
    prior_strength_max: Annotated[float, Range(gt=0)] = Field(
        200.0, description="cap on the prior's strength (alpha + beta)")
    prior_exposure_bins: Count = Field(
        5, description="prior cells: quantile bins of expected examinations")
    prior_similarity_bins: Count = Field(
        5, description="... crossed with quantile bins of text similarity")
    click_weight: Weight = Field(1.0, description="weight of the click rate in behaviour")
    cart_weight: Weight = Field(1.0, description="weight of the add-to-cart rate")
    purchase_weight: Weight = Field(1.0, description="weight of the purchase rate")
    behaviour_weight: Share = Field(
        0.9, description="weight of behaviour against text similarity for a pair with "
        "enough evidence")
    low_evidence_weight: Share = Field(
        0.5, description="the same below `min_evidence` expected examinations")
    min_evidence: Weight = Field(
        2.0, description="expected examinations for `behaviour_weight` to apply")
    normalise: Literal[NORMALISATIONS] = Field(
        "query_percentile", description="how behaviour and similarity are put on one "
        "scale: percentiles within the query, over all pairs, or none")
    lexical_weight: Annotated[float | Literal["auto"], BeforeValidator(_lexical_weight)] = Field(
        "auto", description="weight of query-term coverage in similarity: a number >= 0, "
        "or `auto` (calibrated on clicks)")
    n_grades: Annotated[int, Range(ge=2, integer=True)] = Field(
        5, description="number of grades (0..n_grades-1)")
    grading: Literal[GRADING] = Field(
        "quantiles", description="`quantiles` (share of pairs per grade) or `thresholds` "
        "(cut points on the score)")
    grade_values: list[Number] = Field(
        default_factory=lambda: [0.2, 0.25, 0.25, 0.2, 0.1],
        description="quantiles: the share of pairs in each grade (lowest first, summing to "
        "1); thresholds: n_grades-1 increasing cut points")

    def __post_init__(self) -> None:
        if self.click_weight + self.cart_weight + self.purchase_weight <= 0:
            raise FieldProblem("click_weight",
                               "click, cart and purchase weights cannot all be 0")
        vals = list(self.grade_values)
        if self.grading == "quantiles":
            if len(vals) != self.n_grades or any(v < 0 for v in vals) or abs(sum(vals) - 1) > 1e-6:
                raise FieldProblem("grade_values",
                                   f"with grading=quantiles give {self.n_grades} non-negative "
                                   f"shares summing to 1, got {vals}")
        elif len(vals) != self.n_grades - 1 or vals != sorted(vals):
            raise FieldProblem("grade_values",
                               f"with grading=thresholds give {self.n_grades - 1} increasing "
                               f"cut points in [0, 1], got {vals}")

    @classmethod
    def from_dict(cls, values: dict[str, Any], prefix: str = "labels") -> LabelConfig:
        """Checked against the schema, errors naming ``<prefix>.<key>``."""
        from ltr.config_schema import validate

        return validate(cls, dict(values), prefix)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
