"""The default feature spec, derived from the columns a log actually has, and one check
that names every missing column at once.

Without ``data.features`` the spec is :data:`DEFAULT_FEATURES` restricted to what exists:

* product and customer columns (``price``, ``rating``, ``brand``, ``product_class``,
  ``segment``, ``preferred_brand``...) that the catalog or the customer table lacks are
  left out;
* a derived feature is kept only when every column it needs is there (``brand_match``
  needs ``brand`` and ``preferred_brand``; ``category_match`` needs ``category`` and
  ``preferred_category``);
* the columns computed by the pipeline itself (history, query-term coverage) are always
  there; the neighbour columns need text embeddings and ``neighbours.k > 0``.

A spec given in ``data.features`` is used as it is, but every column it names that the data
cannot provide is listed in one error (not one at a time, after a minute of preparation).
"""

from __future__ import annotations

from typing import Any

from ltr.errors import ConfigError
from ltr.features.derived import DERIVED
from ltr.features.history import HISTORY_COLUMNS
from ltr.features.neighbours import NEIGHBOUR_COLUMNS
from ltr.features.text_match import COVERAGE_COLUMN

DEFAULT_FEATURES: dict[str, Any] = {
    "numeric": ["price", "rating", "review_count", "price_sensitivity", "tenure_days",
                "hist_pair_ctr", "hist_pair_impressions", "hist_pair_cart_rate",
                "hist_pair_purchase_rate", "hist_pair_label", "hist_pair_behaviour",
                "hist_product_ctr", "hist_product_impressions", "hist_product_cart_rate",
                "hist_product_purchase_rate", COVERAGE_COLUMN, *NEIGHBOUR_COLUMNS],
    "log1p": ["price", "review_count", "tenure_days", "hist_pair_impressions",
              "hist_product_impressions"],
    "categorical": ["brand", "product_class", "segment", "preferred_brand",
                    "preferred_category"],
    "derived": ["brand_match", "category_match", "price_z_in_list", "top_category"],
}


def generated_columns(text: bool, neighbours: bool) -> set[str]:
    """Columns the pipeline computes for every row (not read from the data)."""
    out = set(HISTORY_COLUMNS) | {COVERAGE_COLUMN}
    if text and neighbours:
        out |= set(NEIGHBOUR_COLUMNS)
    return out


def default_spec(product_columns: set[str], customer_columns: set[str], text: bool,
                 neighbours: bool) -> tuple[dict[str, Any], list[str]]:
    """``(spec, left_out)``: :data:`DEFAULT_FEATURES` without what the data cannot give,
    and a note for each feature left out."""
    have = set(product_columns) | set(customer_columns) | generated_columns(text, neighbours)
    notes = []
    numeric = [c for c in DEFAULT_FEATURES["numeric"] if c in have]
    categorical = [c for c in DEFAULT_FEATURES["categorical"] if c in have]
    derived = [d for d in DEFAULT_FEATURES["derived"] if set(DERIVED[d].needs) <= have]
    for kind, kept in (("numeric", numeric), ("categorical", categorical),
                       ("derived", derived)):
        for col in DEFAULT_FEATURES[kind]:
            if col not in kept:
                why = "" if kind != "derived" else \
                    f" (needs {', '.join(sorted(set(DERIVED[col].needs) - have))})"
                notes.append(f"{kind} feature '{col}' left out: not in the data{why}")
    spec = {"numeric": numeric, "log1p": [c for c in DEFAULT_FEATURES["log1p"]
                                          if c in numeric],
            "categorical": categorical, "derived": derived}
    return spec, notes


def check_available(spec: Any, product_columns: set[str], customer_columns: set[str],
                    text: bool, neighbours: bool, key: str = "data.features") -> None:
    """Raise one :class:`ConfigError` naming every column of ``spec`` (a
    :class:`ltr.features.FeatureSpec`) the data cannot provide."""
    have = set(product_columns) | set(customer_columns) | generated_columns(text, neighbours)
    missing = []
    for col in [*spec.numeric, *spec.categorical]:
        if col not in have:
            missing.append(col)
    for name in spec.derived:
        for col in DERIVED[name].needs:
            if col not in have and col not in missing:
                missing.append(f"{col} (for derived '{name}')")
    if missing:
        hint = ""
        if set(NEIGHBOUR_COLUMNS) & set(spec.numeric) and not (text and neighbours):
            hint = "; neighbour features need data.text and data.neighbours.k > 0"
        raise ConfigError(key, f"the data has no column(s) {', '.join(missing)}: they are "
                          "neither product nor customer columns nor computed features"
                          f"{hint}; leave data.features out to use the defaults that fit "
                          "the data (docs/features.md)")
