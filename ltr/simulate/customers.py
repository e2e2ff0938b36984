"""Simulated customers: true preferences, and the noisy attributes a shop would observe.

Each customer ``c`` has
* a price sensitivity ``s_c ~ Beta(2, 2)`` in [0, 1]: ``s = 1`` prefers the cheapest
  products of a query, ``s = 0`` the most expensive (the simulator uses ``2 s - 1``);
* ``n_brands_preferred`` favourite brands, drawn by brand popularity in the catalog;
* a favourite top-level category, drawn by category size.

Observed (written to ``customers.parquet``): ``price_sensitivity`` = ``s_c`` plus
Gaussian noise (clipped to [0, 1]), ``segment`` (budget / mainstream / premium, from the
observed sensitivity), ``preferred_brand`` (the true favourite with probability
``observed_brand_accuracy``, else a random brand), ``preferred_category`` and
``tenure_days`` (no effect on behaviour: a distractor feature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.simulate.config import SimulationConfig


@dataclass
class Customers:
    observed: pd.DataFrame  # customer_id + attributes
    truth: pd.DataFrame  # customer_id, price_sensitivity, favourite_brand(s), favourite_category
    sensitivity: np.ndarray  # [n] true s_c
    favourite_brand: np.ndarray  # [n, n_brands_preferred] brand codes
    favourite_category: np.ndarray  # [n] top-category codes


def sample_customers(config: SimulationConfig, brands: np.ndarray, brand_freq: np.ndarray,
                     categories: np.ndarray, category_freq: np.ndarray,
                     rng: np.random.Generator) -> Customers:
    """Draw ``config.n_customers`` customers given catalog brand/category frequencies."""
    n = config.n_customers
    sens = rng.beta(2.0, 2.0, size=n)
    p_brand = brand_freq / brand_freq.sum()
    k = min(config.n_brands_preferred, len(brands))
    fav_brand = np.stack([rng.choice(len(brands), size=k, replace=False, p=p_brand)
                          for _ in range(n)]) if k > 1 else \
        rng.choice(len(brands), size=(n, 1), p=p_brand)
    fav_cat = rng.choice(len(categories), size=n, p=category_freq / category_freq.sum())

    obs_sens = np.clip(sens + rng.normal(0.0, config.observed_sensitivity_noise, n), 0.0, 1.0)
    segment = np.where(obs_sens > 2 / 3, "budget", np.where(obs_sens < 1 / 3, "premium",
                                                             "mainstream"))
    keep = rng.random(n) < config.observed_brand_accuracy
    obs_brand = np.where(keep, fav_brand[:, 0], rng.integers(0, len(brands), size=n))
    ids = np.arange(1, n + 1)
    observed = pd.DataFrame({
        "customer_id": ids,
        "segment": segment,
        "price_sensitivity": np.round(obs_sens, 3),
        "preferred_brand": brands[obs_brand],
        "preferred_category": categories[fav_cat],
        "tenure_days": rng.geometric(1 / 400, size=n).astype("int64"),
    })
    truth = pd.DataFrame({
        "customer_id": ids,
        "price_sensitivity": sens,
        "favourite_brands": ["|".join(brands[row]) for row in fav_brand],
        "favourite_category": categories[fav_cat],
    })
    return Customers(observed, truth, sens, fav_brand, fav_cat)
