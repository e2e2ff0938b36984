"""Catalog helpers: top-level categories, and seeded attributes for catalogs that lack them.

WANDS (and many public catalogs) has names and category paths but no price, rating or
brand. :func:`augment_catalog` fills those in with a documented generator:

* **price**: each product class ``c`` gets a median price
  ``m_c = exp(U(log 15, log 900))`` (drawn from a generator seeded by the class name, so a
  class keeps its price level whatever else is in the catalog); a product's price is
  ``m_c * exp(N(0, 0.45))``, rounded to ``.99``.
* **brand**: one of ``n_brands`` invented names, popularity Zipf(1.1); products of the same
  class share a class-specific brand mix (half of the draws come from 5 class brands).
* **review_count**: ``floor(exp(N(2.5, 1.5)))``; **rating**: ``1 + 4 * Beta(6, 1.6)``
  rounded to 0.1, missing (NaN) when review_count is 0.

These attributes are synthetic: they carry no information about the real products.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

_SYLLABLES = ("al", "ber", "cor", "dan", "el", "fen", "gar", "hol", "ist", "jor", "kel",
              "lan", "mor", "nor", "or", "pel", "quin", "ros", "sel", "tor", "ul", "ven",
              "wil", "yor", "zan")


def brand_names(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct invented brand names, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        k = rng.integers(2, 4)
        name = "".join(rng.choice(_SYLLABLES, size=k)).capitalize()
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def top_category(category: pd.Series) -> pd.Series:
    """First segment of a ``' / '``-separated category path ('unknown' when missing)."""
    top = category.astype("string").str.split("/").str[0].str.strip()
    return top.fillna("unknown").replace("", "unknown").astype(str)


def _class_seed(name: str, seed: int) -> int:
    return zlib.crc32(f"{seed}:{name}".encode())


def augment_catalog(products: pd.DataFrame, seed: int = 0, n_brands: int = 60,
                    class_column: str = "product_class") -> pd.DataFrame:
    """Return a copy of ``products`` with price, brand, rating, review_count added.

    Columns already present are kept unchanged. ``class_column`` (or, when absent, the
    category path) groups products whose prices and brands resemble each other.
    """
    out = products.copy()
    rng = np.random.default_rng(seed)
    n = len(out)
    if class_column in out:
        klass = out[class_column].astype("string").fillna("")
    else:
        klass = out.get("category", pd.Series([""] * n)).astype("string").fillna("")
    klass = klass.where(klass.str.len() > 0, "unknown").astype(str)
    classes = klass.unique()

    if "price" not in out:
        medians = {c: float(np.exp(np.random.default_rng(_class_seed(c, seed))
                                   .uniform(np.log(15), np.log(900)))) for c in classes}
        med = klass.map(medians).to_numpy()
        price = med * np.exp(rng.normal(0.0, 0.45, size=n))
        out["price"] = np.maximum(np.floor(price) + 0.99, 1.99)

    if "brand" not in out:
        names = np.array(brand_names(n_brands, seed))
        weights = 1.0 / np.arange(1, n_brands + 1) ** 1.1
        weights /= weights.sum()
        global_draw = rng.choice(n_brands, size=n, p=weights)
        class_codes, class_names = pd.factorize(klass)
        class_brands = np.stack([np.random.default_rng(_class_seed(c, seed + 1))
                                 .choice(n_brands, size=5, replace=False) for c in class_names])
        own = class_brands[class_codes, rng.integers(0, 5, size=n)]
        out["brand"] = names[np.where(rng.random(n) < 0.5, own, global_draw)]

    if "review_count" not in out:
        out["review_count"] = np.floor(np.exp(rng.normal(2.5, 1.5, size=n))).astype("int64")
        out.loc[rng.random(n) < 0.1, "review_count"] = 0
    if "rating" not in out:
        rating = np.round(1.0 + 4.0 * rng.beta(6.0, 1.6, size=n), 1)
        out["rating"] = np.where(out["review_count"].to_numpy() > 0, rating, np.nan)
    return out
