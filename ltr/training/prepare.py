"""From a log folder to model-ready lists, without leakage.

Steps (each documented where it lives):

1. load and validate the log (:func:`ltr.data.load_log`);
2. split sessions by time into history / train / valid / test windows
   (:func:`ltr.features.split.time_windows`) and, with ``folds > 1``, hold out the queries
   of fold ``fold`` (:func:`ltr.features.split.query_folds`): held-out queries give nothing
   to training — no clicks, no labels, no history features;
3. history features from the history window of the training queries
   (:mod:`ltr.features.history`);
4. relevance labels from the training window of the training queries
   (:func:`ltr.labels.derive_labels`), joined onto every split;
5. join products, customers, history and derived features; fit the preprocessor on the
   training rows only;
6. encode unique query and product texts once (:class:`ltr.text.TextEncoder`, cached);
7. lay out lists: training sessions (plus hard negatives from the same query's pool),
   validation and test sessions, and — where human judgements exist — each evaluation
   query's judged pool with the human grades (customer unknown, position unknown).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.loaders import SearchLog, load_log
from ltr.errors import ConfigError, DataValidationError
from ltr.features.derived import add_derived
from ltr.features.history import history_features, join_history
from ltr.features.preprocess import Preprocessor
from ltr.features.spec import FeatureSpec, check_tasks
from ltr.features.split import query_folds, time_windows
from ltr.labels.config import LabelConfig
from ltr.labels.pipeline import derive_labels
from ltr.training.lists import ListData, build_lists


@dataclass
class PreparedData:
    preprocessor: Preprocessor
    tasks: list[str]
    query_texts: list[str]
    product_texts: list[str]
    product_ids: list[object]
    query_embeddings: np.ndarray | None  # [n_queries, d]
    product_embeddings: np.ndarray | None  # [n_products, d]
    train: ListData | None  # None when training lists stream from Parquet (train_stream)
    valid: ListData
    test: ListData
    pools: ListData | None  # judged pools of the evaluation queries, labels["human"]
    held_out_queries: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    train_stream: Any = None  # ParquetListStream when stream_dir is set
    query_index: dict[str, int] = field(default_factory=dict)
    product_index: dict[object, int] = field(default_factory=dict)
    # what inference needs to rebuild a row's features (model packages, ltr.serving)
    products: pd.DataFrame | None = None  # the whole catalog of the log folder
    customers: pd.DataFrame | None = None
    history: tuple[pd.DataFrame, pd.DataFrame] | None = None  # (pair, product) features
    text: dict[str, Any] | None = None  # the data.text settings (None: no text)
    config: dict[str, Any] = field(default_factory=dict)  # data-module arguments, if known


def join_rows(rows: pd.DataFrame, log: SearchLog, hist: tuple[pd.DataFrame, pd.DataFrame],
              labels: pd.DataFrame | None, spec: FeatureSpec, group: str) -> pd.DataFrame:
    """Impression or candidate rows + product, customer, history, label, derived columns."""
    out = rows.merge(log.products, on="product_id", how="left", suffixes=("", "__product"))
    cust = log.customers
    clash = (set(cust.columns) - {"customer_id"}) & set(out.columns)
    if clash:
        raise DataValidationError("customers", f"column(s) {sorted(clash)} clash with "
                                  "impression or product columns", column=sorted(clash)[0])
    if out["customer_id"].isna().all():  # candidate pools: no customer
        out = out.assign(**{c: np.nan for c in cust.columns if c != "customer_id"})
    else:  # anonymous rows (customer_id missing) get NaN customer attributes
        key = out["customer_id"].astype(object)
        attrs = cust.assign(customer_id=cust["customer_id"].astype(object))
        out = out.assign(customer_id=key).merge(attrs, on="customer_id", how="left")
    out = join_history(out, *hist)
    if labels is not None:
        out = out.merge(labels[["query", "product_id", "grade"]], on=["query", "product_id"],
                        how="left")
    return add_derived(out, spec.derived, group)


def _hard_negatives(train: pd.DataFrame, pool: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """For each training session, ``n`` products of its query's pool it did not show
    (binary outcomes 0, position unknown), drawn with a seeded generator."""
    if n <= 0 or pool.empty:
        return train.iloc[:0]
    rng = np.random.default_rng(seed)
    pool_by_q = {q: g["product_id"].to_numpy() for q, g in pool.groupby("query")}
    sessions = train.groupby("session_id", sort=False).agg(
        query=("query", "first"), customer_id=("customer_id", "first"),
        timestamp=("timestamp", "first"), shown=("product_id", lambda s: set(s.tolist())))
    rows = []
    for sid, q, cust, ts, shown in sessions.itertuples(index=True, name=None):
        cand = pool_by_q.get(q)
        if cand is None:
            continue
        picks = rng.permutation(cand)
        picks = [p for p in picks if p not in shown][:n]
        rows += [(sid, ts, cust, q, p) for p in picks]
    neg = pd.DataFrame(rows, columns=["session_id", "timestamp", "customer_id", "query",
                                      "product_id"])
    return neg.assign(position=0, clicked=0, added_to_cart=0, purchased=0)


def _pool_lists(labels: pd.DataFrame, repeats: int, size: int, seed: int) -> pd.DataFrame:
    """Candidate-pool lists from a label table: ids -1, -2, ... (never a session id)."""
    rng = np.random.default_rng(seed + 2)
    parts, next_id = [], -1
    for _ in range(repeats):
        for _q, g in labels.groupby("query", sort=True):
            order = rng.permutation(len(g))
            for start in range(0, len(g), size):
                chunk = g.iloc[order[start:start + size]]
                parts.append(chunk[["query", "product_id"]].assign(session_id=next_id))
                next_id -= 1
    rows = pd.concat(parts, ignore_index=True)
    return rows.assign(timestamp=pd.NaT, customer_id=None, position=0, clicked=np.nan,
                       added_to_cart=np.nan, purchased=np.nan)


def prepare(data_dir: str, tasks: list[str], features: dict[str, Any] | None = None,
            labels: dict[str, Any] | None = None, text: dict[str, Any] | None = None,
            split: dict[str, Any] | None = None, folds: int = 0, fold: int = 0,
            hard_negatives: int = 0, seed: int = 0, encoder: Any = None,
            anonymous_share: float = 0.1, pool_lists: int = 2,
            pool_list_size: int = 25, history_dropout: float = 0.3,
            valid_query_share: float = 0.15, stream_dir: str | None = None) -> PreparedData:
    """Build :class:`PreparedData` (see the module docstring). ``text=None`` means no text
    features; ``encoder`` may pass a ready :class:`ltr.text.TextEncoder`.

    ``anonymous_share`` of the training sessions (seeded) are joined without their
    customer, so the model also learns to rank for anonymous shoppers and for the judged
    pools, which have no customer.

    ``pool_lists`` > 0 adds candidate-pool lists for the relevance task: each training
    query's labelled pairs, shuffled and cut into lists of ``pool_list_size``, repeated
    ``pool_lists`` times with different shuffles (no customer, no position, no behaviour
    labels). They teach the relevance head to rank a whole pool, as a search engine's
    candidate set, not only the policy's top 20.

    ``history_dropout`` of the training lists (seeded) lose their (query, product)
    history features, as a query never seen before would: without it the model learns
    to lean on features that a new query never has.

    With ``folds > 1`` (held-out queries), ``valid_query_share`` of the remaining queries
    become *validation queries*: their clicks feed their labels only; the model never
    trains on them, and validation scores their candidate pools against those derived
    labels. Model selection then measures what the test measures — ranking the pool of a
    query never trained on — without touching human grades.

    ``stream_dir``: write the training rows to ``stream_dir/train.parquet`` (whole lists
    per row group) and stream them during training (:mod:`ltr.training.stream`) instead
    of holding the training lists in memory."""
    t0 = time.perf_counter()
    tasks = check_tasks(tasks, "model.tasks")
    spec = FeatureSpec.from_dict(features, "data.features")
    label_cfg = LabelConfig.from_dict(dict(labels or {}))
    split = {"history_days": 7, "valid_days": 3, "test_days": 4, **(split or {})}
    unknown = set(split) - {"history_days", "valid_days", "test_days"}
    if unknown:
        raise ConfigError(f"data.split.{sorted(unknown)[0]}", "unknown key")
    if not 0.0 <= history_dropout <= 1.0:
        raise ConfigError("data.history_dropout", f"must be in [0, 1], got {history_dropout}")
    if not 0.0 <= anonymous_share < 1.0:
        raise ConfigError("data.anonymous_share", f"must be in [0, 1), got {anonymous_share}")
    if hard_negatives < 0:
        raise ConfigError("data.hard_negatives", f"must be >= 0, got {hard_negatives}")

    log = load_log(data_dir)
    imp = log.impressions.assign(query=log.impressions["query"].astype(str))
    if "relevance" in tasks and len(imp) == 0:
        raise ConfigError("model.tasks", "task 'relevance' needs labels, and the log is empty")
    windows = time_windows(imp, split["history_days"], split["valid_days"], split["test_days"],
                           log.sources.get("impressions", "impressions"))
    judged = log.judgements
    if judged is not None:
        judged = judged.assign(query=judged["query"].astype(str))
    held_out: set[str] = set()
    if folds and folds > 1:
        all_queries = imp["query"].unique().tolist()
        if judged is not None:
            all_queries = sorted(set(all_queries) | set(judged["query"]))
        assignment = query_folds(all_queries, folds, seed)
        if not 0 <= fold < folds:
            raise ConfigError("data.fold", f"must be in [0, {folds}), got {fold}")
        held_out = {q for q, f in assignment.items() if f == fold}
    is_train_query = ~imp["query"].isin(held_out)
    valid_queries: set[str] = set()
    if held_out and valid_query_share > 0 and "relevance" in tasks:
        remaining = sorted(set(imp["query"]) - held_out)
        n_valid = max(1, round(valid_query_share * len(remaining)))
        pick = np.random.default_rng(seed + 4).permutation(len(remaining))[:n_valid]
        valid_queries = {remaining[i] for i in pick}
    is_model_query = is_train_query & ~imp["query"].isin(valid_queries)

    hist = history_features(imp[(windows == "history") & is_model_query])
    train_imp = imp[(windows == "train") & is_train_query]  # labels: incl. valid queries
    if train_imp.empty:
        raise DataValidationError("impressions", "no training impressions left after the "
                                  "split and the query hold-out", column="timestamp")

    encoder = encoder if encoder is not None or text is None else _encoder(text)
    text_cfg = None
    if text is not None:
        from ltr.text import TextConfig
        text_cfg = TextConfig.from_mapping(text, "data.text")

    label_table = None
    if "relevance" in tasks:
        train_judged = judged[~judged["query"].isin(held_out)] if judged is not None else None
        sim = None
        if encoder is not None:
            from ltr.labels.similarity import pair_similarity

            def sim(q: np.ndarray, p: np.ndarray) -> np.ndarray:
                return pair_similarity(encoder, log.products, q, p, text_cfg.product_fields,
                                       text_cfg.product_separator)
        variant = "combined" if sim is not None else "behaviour_only"
        label_table = derive_labels(train_imp, label_cfg, sim,
                                    train_judged[["query", "product_id"]]
                                    if train_judged is not None else None, variant).labels

    model_imp = train_imp[~train_imp["query"].isin(valid_queries)]
    model_labels = None if label_table is None else \
        label_table[~label_table["query"].isin(valid_queries)]
    train_rows = model_imp
    if hard_negatives and model_labels is not None:
        train_rows = pd.concat([model_imp, _hard_negatives(model_imp, model_labels,
                                                           hard_negatives, seed)],
                               ignore_index=True)
    # valid: the validation queries' candidate pools (fold mode) or the validation window
    # of the training queries; test: the test window, or with folds every session of the
    # held-out queries (none of them reached training)
    if valid_queries:
        valid_imp = _pool_lists(label_table[label_table["query"].isin(valid_queries)], 1,
                                10**6, seed).drop(columns="timestamp")
    else:
        valid_imp = imp[(windows == "valid") & is_train_query]
    test_imp = imp[imp["query"].isin(held_out)] if held_out else imp[windows == "test"]

    if pool_lists > 0 and model_labels is not None:
        train_rows = pd.concat([train_rows, _pool_lists(model_labels, pool_lists,
                                                        pool_list_size, seed)],
                               ignore_index=True)
    if anonymous_share > 0:
        sessions = train_rows["session_id"].unique()
        rng = np.random.default_rng(seed + 1)
        anon = sessions[rng.random(len(sessions)) < anonymous_share]
        train_rows = train_rows.assign(customer_id=train_rows["customer_id"].astype(object))
        train_rows.loc[train_rows["session_id"].isin(anon), "customer_id"] = None
    joined = {name: join_rows(df, log, hist, label_table, spec, "session_id")
              for name, df in (("train", train_rows), ("valid", valid_imp), ("test", test_imp))}
    if history_dropout > 0:
        tr = joined["train"]
        lists = tr["session_id"].unique()
        drop = lists[np.random.default_rng(seed + 3).random(len(lists)) < history_dropout]
        cols = [c for c in ("hist_pair_impressions", "hist_pair_ctr") if c in tr]
        tr.loc[tr["session_id"].isin(drop), cols] = np.nan
    pre = Preprocessor.fit(joined["train"], spec, "training rows")

    pools_rows = None
    if judged is not None:
        eval_judged = judged[judged["query"].isin(held_out)] if held_out else judged
        cand = eval_judged[["query", "product_id", "grade"]].rename(columns={"grade": "human"})
        cand = cand.assign(position=0)
        cand["customer_id"] = pd.Series(pd.NA, index=cand.index,
                                        dtype=log.customers["customer_id"].dtype
                                        if log.customers["customer_id"].dtype.kind != "i"
                                        else "Int64")
        pools_rows = join_rows(cand, log, hist, label_table, spec, "query")

    # text tables: every query and product that appears anywhere
    all_rows = [*joined.values()] + ([pools_rows] if pools_rows is not None else [])
    query_texts = sorted(set().union(*(set(r["query"].astype(str)) for r in all_rows)))
    used = pd.unique(pd.concat([r["product_id"] for r in all_rows]))
    products = log.products[log.products["product_id"].isin(used)].reset_index(drop=True)
    q_index = {q: i for i, q in enumerate(query_texts)}
    p_index = {p: i for i, p in enumerate(products["product_id"].tolist())}
    product_texts: list[str] = products["title"].astype(str).tolist()
    q_emb = p_emb = None
    if encoder is not None:
        from ltr.text import product_text

        product_texts = product_text(products, text_cfg.product_fields,
                                     separator=text_cfg.product_separator,
                                     key="data.text.product_fields").tolist()
        q_emb = encoder.encode_texts(query_texts).rows()
        p_emb = encoder.encode_texts(product_texts).rows()

    def lists(rows: pd.DataFrame, group: str, source: str) -> ListData:
        rows = rows.sort_values([group, "position"], kind="stable") if "position" in rows \
            else rows
        return build_lists(rows, group, pre, q_index, p_index, tasks, source)

    train_rows_sorted = joined["train"].assign(_neg=joined["train"]["position"] == 0)
    train_rows_sorted = train_rows_sorted.sort_values(["session_id", "_neg", "position"],
                                                      kind="stable").drop(columns="_neg")
    stream = None
    if stream_dir is not None:
        from pathlib import Path

        from ltr.training.stream import ParquetListStream, write_list_rows

        path = write_list_rows(train_rows_sorted, Path(stream_dir) / "train.parquet",
                               "session_id", seed=seed)
        width = int(train_rows_sorted.groupby("session_id").size().max())
        stream = ParquetListStream(path, "session_id", pre, q_index, p_index, tasks, width)
    out = PreparedData(
        preprocessor=pre, tasks=tasks, query_texts=query_texts, product_texts=product_texts,
        product_ids=products["product_id"].tolist(), query_embeddings=q_emb,
        product_embeddings=p_emb,
        train=None if stream is not None else build_lists(
            train_rows_sorted, "session_id", pre, q_index, p_index, tasks, "training rows"),
        valid=lists(joined["valid"], "session_id", "validation rows"),
        test=lists(joined["test"], "session_id", "test rows"),
        pools=None, held_out_queries=sorted(held_out), train_stream=stream,
        query_index=q_index, product_index=p_index,
        products=log.products, customers=log.customers, history=hist,
        text=None if text is None else dict(text),
    )
    if pools_rows is not None and len(pools_rows):
        out.pools = build_lists(pools_rows, "query", pre, q_index, p_index, tasks,
                                "judged pools", extra_labels={"human": "human"})
    out.info = {"seconds": round(time.perf_counter() - t0, 1),
                "rows": {k: len(v) for k, v in joined.items()},
                "lists": {"train": len(out.train) if out.train is not None else "streamed",
                          "valid": len(out.valid),
                          "test": len(out.test), "pools": len(out.pools) if out.pools else 0},
                "held_out_queries": len(held_out), "validation_queries": len(valid_queries),
                "labelled_pairs": 0 if label_table is None else len(label_table)}
    return out


def _encoder(text: dict[str, Any]):
    from ltr.text import TextConfig, TextEncoder

    return TextEncoder.from_config(TextConfig.from_mapping(text, "data.text"))
