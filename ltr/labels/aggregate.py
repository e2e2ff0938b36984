"""Per-(query, product) aggregates of an impression log, and per-(pair, position) cells.

The log is reduced once to *cells* — one row per (query, product, position) with its
impression and click counts — which is all the position-bias estimators need, and to
*pairs* — one row per (query, product) with impressions, clicks, add-to-carts,
purchases and mean position. Both are computed with integer codes and ``np.bincount``,
so a million impressions reduce in well under a second.

The same aggregates computed out of core, in SQL on DuckDB or Spark, come from
:func:`ltr.scale.scan_log`; :func:`aggregate_log` passes such aggregates through
unchanged, so that the label rule (:func:`ltr.labels.derive_labels`) takes either a log
or its aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError


@dataclass
class LogAggregates:
    pairs: pd.DataFrame  # query, product_id, impressions, clicks, carts, purchases, mean_position
    cell_pair: np.ndarray  # [n_cells] pair index
    cell_position: np.ndarray  # [n_cells] 1-based position
    cell_impressions: np.ndarray  # [n_cells]
    cell_clicks: np.ndarray  # [n_cells]
    n_positions: int


def aggregate_log(impressions: pd.DataFrame | LogAggregates,
                  source: str = "impressions") -> LogAggregates:
    """Reduce a validated impression log to pair and cell counts (aggregates already
    computed, e.g. by :func:`ltr.scale.scan_log`, are returned as they are)."""
    if isinstance(impressions, LogAggregates):
        return impressions
    if len(impressions) == 0:
        raise DataValidationError(source, "is empty: no impressions to derive labels from")
    q_codes, queries = pd.factorize(impressions["query"].astype(str))
    p_codes, products = pd.factorize(impressions["product_id"])
    n_products = len(products)
    pair_key = q_codes.astype(np.int64) * n_products + p_codes
    pair_codes, pair_keys = pd.factorize(pair_key, sort=True)
    n_pairs = len(pair_keys)
    pos = impressions["position"].to_numpy(np.int64)
    n_pos = int(pos.max())
    clicked = impressions["clicked"].to_numpy(np.float64)

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(pair_codes, weights=weights, minlength=n_pairs)

    pairs = pd.DataFrame({
        "query": np.asarray(queries)[pair_keys // n_products],
        "product_id": np.asarray(products)[pair_keys % n_products],
        "impressions": total(None).astype(np.int64),
        "clicks": total(clicked).astype(np.int64),
        "carts": total(impressions["added_to_cart"].to_numpy(np.float64)).astype(np.int64),
        "purchases": total(impressions["purchased"].to_numpy(np.float64)).astype(np.int64),
    })
    pairs["mean_position"] = total(pos.astype(np.float64)) / pairs["impressions"].to_numpy()

    cell_key = pair_codes.astype(np.int64) * n_pos + (pos - 1)
    cell_codes, cell_keys = pd.factorize(cell_key, sort=True)
    n_cells = len(cell_keys)
    return LogAggregates(
        pairs=pairs,
        cell_pair=cell_keys // n_pos,
        cell_position=cell_keys % n_pos + 1,
        cell_impressions=np.bincount(cell_codes, minlength=n_cells).astype(np.float64),
        cell_clicks=np.bincount(cell_codes, weights=clicked, minlength=n_cells),
        n_positions=n_pos,
    )
