"""Configuration of the label pipeline; saved beside every label file it produces."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError, check_known_keys

NORMALISATIONS = ("query_percentile", "global_percentile", "none")
GRADING = ("quantiles", "thresholds")


@dataclass
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
    """

    # position bias
    position_bias: str = "pbm_em"  # pbm_em | none
    em_max_iter: int = 1000
    # smoothing: Beta prior fitted by empirical Bayes on pairs with enough evidence
    prior_min_evidence: float = 5.0
    prior_strength_max: float = 200.0  # cap on alpha + beta
    prior_exposure_bins: int = 5  # prior cells: quantile bins of expected examinations
    prior_similarity_bins: int = 5  # ... crossed with quantile bins of text similarity
    # behaviour signals
    click_weight: float = 1.0
    cart_weight: float = 1.0
    purchase_weight: float = 1.0
    # combination with text similarity
    behaviour_weight: float = 0.9
    low_evidence_weight: float = 0.5
    min_evidence: float = 2.0
    normalise: str = "query_percentile"
    lexical_weight: float | str = "auto"  # a number >= 0, or "auto" (calibrated on clicks)
    # grading
    n_grades: int = 5
    grading: str = "quantiles"
    # quantiles: share of pairs in each grade (lowest first); thresholds: n_grades-1 cut points
    grade_values: list[float] = field(default_factory=lambda: [0.2, 0.25, 0.25, 0.2, 0.1])

    # numeric constraints (ltr.checks), checked first: a wrong type names its key too
    RANGES: ClassVar[dict[str, Range]] = {
        "em_max_iter": Range(ge=1, integer=True), "prior_min_evidence": Range(ge=0),
        "prior_strength_max": Range(gt=0),
        "prior_exposure_bins": Range(ge=1, integer=True),
        "prior_similarity_bins": Range(ge=1, integer=True),
        "click_weight": Range(ge=0), "cart_weight": Range(ge=0),
        "purchase_weight": Range(ge=0), "behaviour_weight": Range(ge=0, le=1),
        "low_evidence_weight": Range(ge=0, le=1), "min_evidence": Range(ge=0),
        "n_grades": Range(ge=2, integer=True)}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_ranges(vars(self), self.RANGES, "labels")
        if not isinstance(self.grade_values, list | tuple) or not all(
                isinstance(v, int | float) and not isinstance(v, bool)
                for v in self.grade_values):
            raise ConfigError("labels.grade_values", f"must be a list of numbers, got "
                              f"{self.grade_values!r}")
        if self.position_bias not in ("pbm_em", "none"):
            raise ConfigError("labels.position_bias",
                              f"must be 'pbm_em' or 'none', got {self.position_bias!r}")
        if self.normalise not in NORMALISATIONS:
            raise ConfigError("labels.normalise", f"must be one of {NORMALISATIONS}, "
                              f"got {self.normalise!r}")
        if self.grading not in GRADING:
            raise ConfigError("labels.grading", f"must be one of {GRADING}, got {self.grading!r}")
        if self.click_weight + self.cart_weight + self.purchase_weight <= 0:
            raise ConfigError("labels.click_weight",
                              "click, cart and purchase weights cannot all be 0")
        vals = list(self.grade_values)
        if self.grading == "quantiles":
            if len(vals) != self.n_grades or any(v < 0 for v in vals) or abs(sum(vals) - 1) > 1e-6:
                raise ConfigError("labels.grade_values",
                                  f"with grading=quantiles give {self.n_grades} non-negative "
                                  f"shares summing to 1, got {vals}")
        else:
            if len(vals) != self.n_grades - 1 or vals != sorted(vals):
                raise ConfigError("labels.grade_values",
                                  f"with grading=thresholds give {self.n_grades - 1} increasing "
                                  f"cut points in [0, 1], got {vals}")
        lw = self.lexical_weight
        if not (lw == "auto" or (isinstance(lw, int | float) and not isinstance(lw, bool)
                                 and lw >= 0)):
            raise ConfigError("labels.lexical_weight", f"must be 'auto' or a number >= 0, "
                              f"got {lw!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LabelConfig:
        check_known_keys(values, {f.name for f in dataclasses.fields(cls)}, "labels")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
