"""A vectorised search-log simulator with known ground truth.

Generative model, per session ``i`` (customer ``c``, query ``q``, shown list of length K):

1. **Customer and query.** ``c`` is uniform over customers. With probability
   ``category_query_share`` the query is drawn (by popularity) among queries of ``c``'s
   favourite top category, otherwise among all queries; popularity of the query ranked
   ``j`` is proportional to ``j ** -query_zipf``.
2. **Logging policy** (a noisy ranker): every candidate ``d`` of ``q`` gets
   ``policy_relevance * r_qd + policy_popularity * z_reviews(d) + policy_noise * G``
   with ``G ~ Gumbel(0, 1)`` drawn per session; the top K are shown at positions 1..K.
   The noise makes the same product appear at different positions across sessions.
3. **Clicks** follow the position-based model ``P(click) = e_k * a_cd`` with examination
   ``e_k = exam_top * k ** -exam_eta`` (or an explicit curve) and attractiveness
   ``a_cd = sigmoid(click_base + click_relevance * r_qd + price_effect * p_cd
   + brand_effect * b_cd + category_effect * g_cd + rating_effect * z_rating(d))``, where
   ``p_cd = (2 s_c - 1) * (-z_price_q(d))`` (sensitive customers like cheap products,
   ``z_price_q`` is the standardised log price within the query's pool),
   ``b_cd = [brand(d) is a favourite of c]``, ``g_cd = [top category(d) = favourite of c]``.
4. **Add-to-cart** given click: ``sigmoid(cart_base + cart_relevance * r + cart_price_effect
   * p_cd + cart_brand_effect * b_cd)``; **purchase** given add-to-cart:
   ``sigmoid(purchase_base + purchase_relevance * r + purchase_price_effect * p_cd)``.
5. **Time**: session start times are uniform over ``days`` days from ``start_date``;
   session ids follow time order.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``config.seed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.errors import ConfigError, DataValidationError
from ltr.io import write_json, write_table
from ltr.simulate.catalog import top_category
from ltr.simulate.config import SimulationConfig
from ltr.simulate.customers import sample_customers
from ltr.simulate.relevance import judged_candidates, synthetic_candidates


def examination_curve(config: SimulationConfig) -> np.ndarray:
    """``[list_size]`` examination probability of positions 1..K."""
    if config.examination is not None:
        return np.asarray(config.examination[: config.list_size], dtype=float)
    k = np.arange(1, config.list_size + 1, dtype=float)
    return config.exam_top * k ** -config.exam_eta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _zscore_by(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    s = pd.Series(values)
    g = s.groupby(groups)
    std = g.transform("std").fillna(0.0).to_numpy()
    z = (values - g.transform("mean").to_numpy()) / np.where(std > 0, std, 1.0)
    return np.nan_to_num(z)


@dataclass
class SimulationResult:
    """The simulated tables and the ground truth behind them."""

    products: pd.DataFrame
    customers: pd.DataFrame
    impressions: pd.DataFrame
    true_relevance: pd.DataFrame  # query, product_id, grade, relevance
    true_examination: pd.DataFrame  # position, examination
    true_preferences: pd.DataFrame  # customer_id, price_sensitivity, favourite_brands, ...
    config: SimulationConfig
    queries: pd.DataFrame | None = None  # synthetic queries (ltr.simulate.queries), if any

    def write(self, out_dir: str | Path, fmt: str = "parquet") -> dict[str, Path]:
        """Write the log (products, customers, impressions) and ``ground_truth/``.

        Every file is written atomically; existing files are replaced only once the new
        version is complete.
        """
        out = Path(out_dir)
        paths = {
            "products": write_table(self.products, out / f"products.{fmt}"),
            "customers": write_table(self.customers, out / f"customers.{fmt}"),
            "impressions": write_table(self.impressions, out / f"impressions.{fmt}"),
            "true_relevance": write_table(self.true_relevance,
                                          out / "ground_truth" / f"relevance.{fmt}"),
            "true_examination": write_table(self.true_examination,
                                            out / "ground_truth" / "examination.csv"),
            "true_preferences": write_table(self.true_preferences,
                                            out / "ground_truth" / f"customer_preferences.{fmt}"),
        }
        if self.queries is not None:
            paths["synthetic_queries"] = write_table(
                self.queries, out / "ground_truth" / f"synthetic_queries.{fmt}")
        paths["config"] = write_json(self.config.to_dict(), out / "ground_truth" /
                                     "simulation_config.json")
        return paths


def ready_candidates(candidates: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Check ready-made candidates (query, product_id, grade, relevance in [0, 1])."""
    for col in ("query", "product_id", "grade", "relevance"):
        if col not in candidates:
            raise DataValidationError("candidates", "is needed by the simulator", column=col)
    if candidates.empty:
        raise DataValidationError("candidates", "is empty: no query has a candidate")
    cand = candidates[["query", "product_id", "grade", "relevance"]].reset_index(drop=True)
    checks = (("product_id", ~cand["product_id"].isin(products["product_id"]),
               "are not in the catalog"),
              ("relevance", ~cand["relevance"].between(0.0, 1.0), "must be in [0, 1]"))
    for col, bad, problem in checks:
        rows = np.flatnonzero(bad.to_numpy())
        if len(rows):
            raise DataValidationError("candidates", problem, column=col, rows=rows[:5].tolist(),
                                      values=cand[col].iloc[rows[:5]].tolist())
    return cand


def simulate(products: pd.DataFrame, config: SimulationConfig | None = None,
             judgements: pd.DataFrame | None = None, candidates: pd.DataFrame | None = None,
             queries: pd.DataFrame | None = None) -> SimulationResult:
    """Simulate a search log over ``products`` (a validated catalog).

    Args:
        products: catalog with product_id, title, category, brand, price, rating,
            review_count (see :func:`ltr.simulate.catalog.augment_catalog` to fill gaps).
        config: simulator parameters; defaults to :class:`SimulationConfig()`.
        judgements: optional human grades (query, product_id, grade) used as true
            relevance; without them (and without ``candidates``) the synthetic relevance
            model is used.
        candidates: ready candidate pools with their true relevance (query, product_id,
            grade, relevance in [0, 1]), e.g. from
            :func:`ltr.simulate.queries.synthetic_query_candidates`; exclusive with
            ``judgements``.
        queries: the table behind ``candidates`` (written as
            ``ground_truth/synthetic_queries``); kept as is in the result.
    """
    if judgements is not None and candidates is not None:
        raise ConfigError("simulate.candidates", "give judgements or candidates, not both")
    config = config or SimulationConfig()
    rng = np.random.default_rng(config.seed)
    products = products.reset_index(drop=True)
    for col in ("product_id", "brand", "price", "category"):
        if col not in products:
            raise DataValidationError("products", "is needed by the simulator", column=col)

    if candidates is not None:
        cand = ready_candidates(candidates, products)
    elif judgements is not None:
        cand = judged_candidates(judgements, products)
    else:
        cand = synthetic_candidates(products, config, rng)
    cand = cand.sort_values(["query", "product_id"], kind="stable").reset_index(drop=True)

    # --- catalog codes -------------------------------------------------------------
    prod_row = pd.Index(products["product_id"]).get_indexer(cand["product_id"])
    brand_codes, brands = pd.factorize(products["brand"].astype(str), sort=True)
    top = top_category(products["category"])
    cat_codes, categories = pd.factorize(top, sort=True)
    brands, categories = np.asarray(brands), np.asarray(categories)

    # per-candidate features
    q_codes, query_texts = pd.factorize(cand["query"], sort=True)
    query_texts = np.asarray(query_texts)
    rel = cand["relevance"].to_numpy(float)
    log_price = np.log(products["price"].to_numpy(float))[prod_row]
    z_price = _zscore_by(log_price, q_codes)
    reviews = np.log1p(products["review_count"].to_numpy(float))[prod_row]
    z_reviews = _zscore_by(reviews, q_codes)
    rating = products["rating"].to_numpy(float)[prod_row] if "rating" in products else \
        np.full(len(cand), np.nan)
    z_rating = np.nan_to_num((rating - np.nanmean(rating)) / (np.nanstd(rating) or 1.0))
    cand_brand = brand_codes[prod_row]
    cand_cat = cat_codes[prod_row]

    # --- customers -------------------------------------------------------------------
    customers = sample_customers(
        config, brands, np.bincount(brand_codes, minlength=len(brands)).astype(float),
        categories, np.bincount(cat_codes, minlength=len(categories)).astype(float), rng)

    # --- sessions: customer, query, time ------------------------------------------------
    n_s = config.n_sessions
    n_q = len(query_texts)
    q_start = np.searchsorted(q_codes, np.arange(n_q))
    q_len = np.diff(np.r_[q_start, len(cand)])
    popularity = 1.0 / (1.0 + rng.permutation(n_q)) ** config.query_zipf
    session_customer = rng.integers(0, config.n_customers, size=n_s)
    session_query = rng.choice(n_q, size=n_s, p=popularity / popularity.sum())
    # query's top category = the most common category among its best candidates
    best = rel >= rel.max() - 1e-9
    q_cat = pd.Series(cand_cat[best]).groupby(q_codes[best]).agg(lambda s: s.mode().iloc[0])
    query_cat = np.full(n_q, -1)
    query_cat[q_cat.index.to_numpy()] = q_cat.to_numpy()
    by_cat = rng.random(n_s) < config.category_query_share
    fav = customers.favourite_category[session_customer]
    for cat in np.unique(fav[by_cat]):
        pool = np.flatnonzero(query_cat == cat)
        chosen = np.flatnonzero(by_cat & (fav == cat))
        if len(pool):
            w = popularity[pool] / popularity[pool].sum()
            session_query[chosen] = pool[rng.choice(len(pool), size=len(chosen), p=w)]
    start = pd.Timestamp(config.start_date)
    offsets = np.sort(rng.random(n_s)) * config.days * 86_400.0
    session_time = start + pd.to_timedelta(np.round(offsets), unit="s")

    # --- logging policy: top-K per session, one matrix per query ----------------------
    base = config.policy_relevance * rel + config.policy_popularity * z_reviews
    imp_session_parts, imp_cand_parts = [], []
    order = np.argsort(session_query, kind="stable")
    bounds = np.searchsorted(session_query[order], np.arange(n_q + 1))
    for q in range(n_q):
        sess = order[bounds[q]:bounds[q + 1]]
        if len(sess) == 0:
            continue
        m, s0 = int(q_len[q]), int(q_start[q])
        k = min(config.list_size, m)
        scores = base[s0:s0 + m][None, :] + config.policy_noise * rng.gumbel(size=(len(sess), m))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else \
            np.broadcast_to(np.arange(m), (len(sess), m)).copy()
        top_scores = np.take_along_axis(scores, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_scores, axis=1, kind="stable"), axis=1)
        imp_session_parts.append(np.repeat(sess, k))
        imp_cand_parts.append((top + s0).ravel())
    imp_session = np.concatenate(imp_session_parts)
    imp_cand = np.concatenate(imp_cand_parts)
    # order impressions by session, then position
    srt = np.argsort(imp_session, kind="stable")
    imp_session, imp_cand = imp_session[srt], imp_cand[srt]
    counts = np.bincount(imp_session, minlength=n_s)
    position = np.arange(len(imp_session)) - np.repeat(np.cumsum(counts) - counts, counts) + 1

    # --- behaviour -----------------------------------------------------------------------
    cust = session_customer[imp_session]
    r = rel[imp_cand]
    price_pref = (2.0 * customers.sensitivity[cust] - 1.0) * (-z_price[imp_cand])
    brand_match = (customers.favourite_brand[cust] == cand_brand[imp_cand][:, None]).any(axis=1)
    cat_match = customers.favourite_category[cust] == cand_cat[imp_cand]
    exam = examination_curve(config)[position - 1]
    attract = _sigmoid(config.click_base + config.click_relevance * r
                       + config.price_effect * price_pref + config.brand_effect * brand_match
                       + config.category_effect * cat_match
                       + config.rating_effect * z_rating[imp_cand])
    n = len(imp_cand)
    clicked = rng.random(n) < exam * attract
    p_cart = _sigmoid(config.cart_base + config.cart_relevance * r
                      + config.cart_price_effect * price_pref
                      + config.cart_brand_effect * brand_match)
    carted = clicked & (rng.random(n) < p_cart)
    p_buy = _sigmoid(config.purchase_base + config.purchase_relevance * r
                     + config.purchase_price_effect * price_pref)
    bought = carted & (rng.random(n) < p_buy)

    impressions = pd.DataFrame({
        "session_id": (imp_session + 1).astype("int64"),
        "timestamp": session_time[imp_session],
        "customer_id": customers.observed["customer_id"].to_numpy()[cust],
        "query": pd.Categorical.from_codes(q_codes[imp_cand], categories=query_texts),
        "product_id": cand["product_id"].to_numpy()[imp_cand],
        "position": position.astype("int16"),
        "clicked": clicked.astype("int8"),
        "added_to_cart": carted.astype("int8"),
        "purchased": bought.astype("int8"),
    })
    curve = examination_curve(config)
    return SimulationResult(
        products=products,
        customers=customers.observed,
        impressions=impressions,
        true_relevance=cand[["query", "product_id", "grade", "relevance"]],
        true_examination=pd.DataFrame({"position": np.arange(1, len(curve) + 1),
                                       "examination": curve}),
        true_preferences=customers.truth,
        config=config,
        queries=queries,
    )


def load_config_file(path: str | Path) -> SimulationConfig:
    """Read a simulator config from YAML or JSON (top-level keys or a ``simulate:`` block)."""
    from omegaconf import OmegaConf

    path = Path(path)
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True) \
            if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except Exception as exc:
        raise DataValidationError(str(path), f"cannot be read as a config: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataValidationError(str(path), "must hold a mapping of simulator parameters")
    raw = raw.get("simulate", raw)
    return SimulationConfig.from_dict(dict(raw))
