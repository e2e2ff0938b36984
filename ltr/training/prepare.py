"""From a log folder to model-ready lists, without leakage.

Steps (each documented where it lives):

1. load and validate the log (:func:`ltr.data.load_log`);
2. split sessions by time into history / train / valid / test windows
   (:func:`ltr.features.split.time_windows`) and, with ``folds > 1``, hold out the queries
   of fold ``fold`` (:func:`ltr.features.split.query_folds`): held-out queries give nothing
   to training — no clicks, no labels, no history features. A share of the other queries
   (``valid_query_share``) become *validation queries*: never trained on, they stand for
   the queries a shop has not seen yet;
3. history features (:mod:`ltr.features.history`), always from a window that ends
   before the rows they describe: the history window for training rows, history + train
   for validation rows, everything but the test window for test rows, judged pools and
   model packages (a ranking service refreshes its history the same way);
4. relevance labels from the training window of the training queries
   (:func:`ltr.labels.derive_labels`), joined onto the training rows;
5. label transfer from similar known queries (:mod:`ltr.features.neighbours`), the
   query itself excluded;
6. join products, customers, history, neighbour and derived features; fit the
   preprocessor on the training rows only;
7. encode unique query and product texts once (:class:`ltr.text.TextEncoder`, cached);
8. lay out lists: training sessions (plus hard negatives from the same query's pool and
   candidate-pool lists), validation lists, test sessions and — where human judgements
   exist — each judged query's pool with the human grades (customer unknown, position
   unknown): ``pools`` for the queries the model never trained on (*new queries*),
   ``known_pools`` for the ones it did (*known queries*, with the training labels beside
   the human grades so that the two can be compared on the same lists).

**Validation lists** (model selection and the choice of the ranking score, see
:mod:`ltr.training.score_selection`). With the relevance task: *cold* lists, the
validation queries' candidate pools scored against their relevance labels (the same rule
as the training labels, from their own clicks), and *warm* lists, the training queries'
pools scored against behaviour-only labels from the validation window's clicks alone
(clicks the model never trained on; a few days of clicks leave most pairs with little
evidence, and the combined rule would then lean on the text similarity and favour the
cosine over what the log says). Without the relevance task: the validation window's
sessions.

A list is *warm* when at least one of its rows has (query, product) history, else
*cold* (:attr:`ListData.warm`); the model's ranking score may weigh its outputs
differently in the two cases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.loaders import SearchLog, load_log
from ltr.errors import ConfigError, DataValidationError
from ltr.features.assemble import KeyRows, RowJoiner, row_schema
from ltr.features.defaults import check_available, default_spec
from ltr.features.history import PAIR_HISTORY_COLUMNS, history_features
from ltr.features.neighbours import QueryNeighbours
from ltr.features.preprocess import Preprocessor, PreprocessorFit
from ltr.features.spec import FeatureSpec, check_tasks
from ltr.features.split import training_window, window_description
from ltr.features.stores import keys_of
from ltr.features.text_match import lexical_fields
from ltr.labels.config import LabelConfig
from ltr.labels.pipeline import derive_labels
from ltr.progress import step
from ltr.training.lists import ListData, build_lists

History = tuple[pd.DataFrame, pd.DataFrame]


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
    pools: ListData | None  # judged pools of queries never trained on, labels["human"]
    held_out_queries: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    train_stream: Any = None  # ParquetListStream when stream_dir is set
    query_index: dict[str, int] = field(default_factory=dict)
    product_index: dict[object, int] = field(default_factory=dict)
    # judged pools of the queries trained on: labels["human"] and labels["label"]
    known_pools: ListData | None = None
    # what inference needs to rebuild a row's features (model packages, ltr.serving)
    products: pd.DataFrame | None = None  # the whole catalog of the log folder
    customers: pd.DataFrame | None = None
    history: History | None = None  # (pair, product) features as of the end of validation
    neighbours: QueryNeighbours | None = None  # label transfer at inference
    lexical_weight: float = 0.0  # coverage weight of the text similarity (from the labels)
    encoder: Any = None  # the ltr.text.TextEncoder the texts were encoded with
    lexical_fields: list[str] = field(default_factory=lambda: ["title", "category"])
    text: dict[str, Any] | None = None  # the data.text settings (None: no text)
    config: dict[str, Any] = field(default_factory=dict)  # data-module arguments, if known


def join_rows(rows: pd.DataFrame, joiner: RowJoiner, labels: pd.DataFrame | None,
              group: str, embed: Callable[[list[str]], np.ndarray] | None = None,
              source: str = "rows") -> pd.DataFrame:
    """Impression or candidate rows + the columns of the one join path of training and
    serving (:meth:`ltr.features.assemble.RowJoiner.columns`: product, customer, history,
    lexical match, neighbour and derived columns) + the relevance label ``grade``.
    ``embed(texts) -> [n, d]`` encodes the distinct queries when the features read the
    neighbour columns. A column the rows carry themselves keeps the rows' value."""
    rows = rows.reset_index(drop=True)
    queries = rows["query"].astype(str).to_numpy(dtype=object)
    codes, distinct = pd.factorize(queries)
    product_keys = keys_of(rows["product_id"].to_numpy())
    cust_codes, cust_ids = pd.factorize(rows["customer_id"].to_numpy(dtype=object))
    customer_rows = joiner.customers.lookup(np.asarray(cust_ids, dtype=object)) \
        if joiner.customers is not None else np.full(len(cust_ids), -1, dtype=np.int64)
    texts = [str(q) for q in distinct]
    key_rows = KeyRows(
        queries=texts, query_codes=codes, catalog_rows=joiner.catalog.lookup(product_keys),
        product_keys=product_keys, customer_rows=customer_rows, customer_of_row=cust_codes,
        group=rows[group].to_numpy() if group in rows else codes,
        query_embeddings=embed(texts) if joiner.needs_neighbours and embed is not None
        else None)
    table = joiner.columns(key_rows, source)
    table["query"] = queries
    out = rows.assign(**{c: v for c, v in table.items() if c not in rows or c == "query"})
    if labels is not None:
        out = out.merge(labels[["query", "product_id", "grade"]].astype({"query": str}),
                        on=["query", "product_id"], how="left")
    return out


NEGATIVE_ROUNDS = 8  # vectorised draw rounds before the few sessions left go one by one


def _hard_negatives(train: pd.DataFrame, pool: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """For each training session, ``n`` products of its query's pool it did not show
    (binary outcomes 0, position unknown): a uniform draw without replacement from the
    pool minus the shown products (all of them when fewer than ``n``).

    Vectorised over sessions: each round draws ``need + shown`` pool indices per session
    with replacement (random integers), drops shown products and repeats, and keeps the
    first ``need`` distinct ones in draw order; the first ``k`` distinct values of an
    i.i.d. uniform sequence over a set are a uniform ``k``-subset of it. Sessions still
    short after :data:`NEGATIVE_ROUNDS` rounds (a pool that is nearly all shown) are
    completed one by one."""
    if n <= 0 or pool.empty or train.empty:
        return train.iloc[:0]
    rng = np.random.default_rng(seed)
    q_codes, queries = pd.factorize(pool["query"].astype(str), sort=True)
    order = np.argsort(q_codes, kind="stable")
    pool_products = pool["product_id"].to_numpy()[order]
    sizes = np.bincount(q_codes, minlength=len(queries))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sessions = train.drop_duplicates("session_id")[["session_id", "timestamp",
                                                     "customer_id", "query"]]
    q_of = pd.Index(queries).get_indexer(sessions["query"].astype(str))
    sessions, q_of = sessions[q_of >= 0].reset_index(drop=True), q_of[q_of >= 0]
    n_sessions = len(sessions)
    s_index = pd.Series(np.arange(n_sessions), index=sessions["session_id"].to_numpy())
    shown = train[["session_id", "query", "product_id"]].drop_duplicates(
        ["session_id", "product_id"])
    shown = shown[shown["session_id"].isin(s_index.index)]
    shown_s = s_index.reindex(shown["session_id"].to_numpy()).to_numpy()
    in_pool = shown.assign(query=shown["query"].astype(str)).merge(
        pool[["query", "product_id"]].assign(query=pool["query"].astype(str)),
        on=["query", "product_id"], how="left", indicator=True)["_merge"].eq("both")
    n_shown = np.bincount(shown_s, minlength=n_sessions)
    need = np.minimum(n, sizes[q_of] - np.bincount(shown_s[in_pool.to_numpy()],
                                                   minlength=n_sessions))
    shown_keys = pd.MultiIndex.from_arrays([shown_s, shown["product_id"].to_numpy()])
    kept = pd.DataFrame({"_s": np.zeros(0, np.int64), "product_id": pool_products[:0],
                         "_r": np.zeros(0, np.int64)})
    have = np.zeros(n_sessions, dtype=np.int64)
    drawn = 0
    for _ in range(NEGATIVE_ROUNDS):
        todo = np.flatnonzero(have < need)
        if not len(todo):
            break
        sess = np.repeat(todo, need[todo] - have[todo] + n_shown[todo])
        pick = starts[q_of[sess]] + (rng.random(len(sess)) * sizes[q_of[sess]]).astype(
            np.int64)
        cand = pd.DataFrame({"_s": sess, "product_id": pool_products[pick],
                             "_r": drawn + np.arange(len(sess))})
        drawn += len(sess)
        cand = cand[~pd.MultiIndex.from_arrays([cand["_s"].to_numpy(),
                                                cand["product_id"].to_numpy()]
                                               ).isin(shown_keys)]
        kept = pd.concat([kept, cand], ignore_index=True).drop_duplicates(
            ["_s", "product_id"])
        have = np.bincount(kept["_s"].to_numpy(), minlength=n_sessions)
    kept = kept.sort_values(["_s", "_r"], kind="stable")
    kept = kept[kept.groupby("_s").cumcount().to_numpy() < need[kept["_s"].to_numpy()]]
    parts = [kept[["_s", "product_id"]]]
    for s in np.flatnonzero(have < need):  # rare: pools nearly all shown
        taken = set(kept.loc[kept["_s"] == s, "product_id"].tolist())
        seen = set(shown.loc[shown_s == s, "product_id"].tolist()) | taken
        lo = starts[q_of[s]]
        rest = [p for p in rng.permutation(pool_products[lo:lo + sizes[q_of[s]]])
                if p not in seen][:need[s] - len(taken)]
        parts.append(pd.DataFrame({"_s": s, "product_id": rest}))
    picks = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    picks = picks.sort_values("_s", kind="stable")
    at = picks["_s"].to_numpy(dtype=np.int64)
    neg = pd.DataFrame({c: sessions[c].to_numpy()[at] for c in ("session_id", "timestamp",
                                                                 "customer_id", "query")})
    neg["product_id"] = picks["product_id"].to_numpy()
    return neg.assign(position=0, clicked=0, added_to_cart=0, purchased=0)


def _pool_lists(labels: pd.DataFrame, repeats: int, size: int, seed: int,
                first_id: int = -1, keep_grade: bool = False) -> pd.DataFrame:
    """Candidate-pool lists from a label table: ids ``first_id``, ``first_id - 1``, ...
    (negative: never a session id); with ``keep_grade`` the table's ``grade`` column
    comes along."""
    rng = np.random.default_rng(seed + 2)
    parts, next_id = [], first_id
    cols = ["query", "product_id", *(["grade"] if keep_grade else [])]
    table = labels[cols].reset_index(drop=True)
    q_codes = pd.factorize(table["query"], sort=True)[0] if len(table) else np.zeros(0, int)
    for _ in range(repeats if len(table) else 0):  # vectorised: random keys, no group loop
        order = np.lexsort((rng.random(len(table)), q_codes))  # shuffled within each query
        q_sorted = q_codes[order]
        starts = np.flatnonzero(np.r_[True, np.diff(q_sorted) != 0])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        chunk = rank // size
        new_list = np.r_[True, (np.diff(q_sorted) != 0) | (np.diff(chunk) != 0)]
        ids = next_id - (np.cumsum(new_list) - 1)
        next_id = int(ids[-1]) - 1
        parts.append(table.iloc[order].assign(session_id=ids))
    if not parts:
        return pd.DataFrame(columns=[*cols, "session_id", "timestamp", "customer_id",
                                     "position", "clicked", "added_to_cart", "purchased"])
    rows = pd.concat(parts, ignore_index=True)
    return rows.assign(timestamp=pd.NaT, customer_id=None, position=0, clicked=np.nan,
                       added_to_cart=np.nan, purchased=np.nan)


def _judged_rows(judged: pd.DataFrame, queries: set[str], log: SearchLog) -> pd.DataFrame:
    """Candidate rows of the judged pools of ``queries``: human grade, no customer."""
    part = judged[judged["query"].isin(queries)]
    cand = part[["query", "product_id", "grade"]].rename(columns={"grade": "human"})
    cand = cand.assign(position=0)
    dtype = log.customers["customer_id"].dtype
    cand["customer_id"] = pd.Series(pd.NA, index=cand.index,
                                    dtype=dtype if dtype.kind != "i" else "Int64")
    return cand


def _pick_validation_queries(queries: list[str], share: float, seed: int) -> set[str]:
    """``share`` of ``queries`` (at least one, leaving at least two to train on)."""
    if share <= 0 or len(queries) < 3:
        return set()
    n = min(max(1, round(share * len(queries))), len(queries) - 2)
    pick = np.random.default_rng(seed + 4).permutation(len(queries))[:n]
    return {queries[i] for i in pick}


# data.text keys that a training run does not read: the model section decides them
MODEL_TEXT_KEYS = {"trainable_layers": ("model.trainable_layers", 0),
                   "shared_towers": ("model.tuned_tower", True),
                   "interactions": ("model.interactions", None)}


def refuse_model_keys(text: dict[str, Any]) -> None:
    """Refuse ``data.text`` keys that training would ignore, naming the model key that
    does the job (one place for each setting; ``ltr label`` and ``ltr simulate`` read the
    text settings without them)."""
    for key, (model_key, default) in MODEL_TEXT_KEYS.items():
        if key in text and (default is None or text[key] != default):
            raise ConfigError(f"data.text.{key}", f"is not read by training: set "
                              f"{model_key} instead (got {text[key]!r})")


def prepare(data_dir: str, tasks: list[str], features: dict[str, Any] | None = None,
            labels: dict[str, Any] | str | Path | None = None,
            text: dict[str, Any] | None = None,
            split: dict[str, Any] | None = None, folds: int = 0, fold: int = 0,
            hard_negatives: int = 0, seed: int = 0, encoder: Any = None,
            anonymous_share: float = 0.1, pool_lists: int = 2,
            pool_list_size: int = 25, history_dropout: float = 0.3,
            valid_query_share: float = 0.15, stream_dir: str | None = None,
            neighbours: dict[str, Any] | None = None) -> PreparedData:
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

    ``valid_query_share`` of the training queries become *validation queries* (with the
    relevance task): their clicks feed their labels only; the model never trains on them,
    and validation scores their candidate pools against those labels. Model selection
    then measures what a new query needs — ranking the pool of a query never trained on —
    without touching human grades.

    ``labels``: :class:`~ltr.labels.config.LabelConfig` keys (labels are derived here,
    from the training window), or the path of a label folder written by ``ltr label``
    for this very window (:mod:`ltr.labels.artifact`; refused, naming both windows, when
    its fingerprint differs).

    ``neighbours``: ``{"k": 10}`` (default when there is text) adds the label-transfer
    columns of :mod:`ltr.features.neighbours`; ``{"k": 0}`` turns them off.

    ``stream_dir``: write the training rows to ``stream_dir/train.parquet`` (whole lists
    per row group) and stream them during training (:mod:`ltr.training.stream`) instead
    of holding the training lists in memory."""
    t0 = time.perf_counter()
    tasks = check_tasks(tasks, "model.tasks")
    artifact = None
    if isinstance(labels, str | Path):  # a label folder of `ltr label`
        from ltr.labels.artifact import read_labels

        artifact = read_labels(labels)
        label_cfg = artifact.config
    else:
        label_cfg = LabelConfig.from_dict(dict(labels or {}))
    if not 0.0 <= history_dropout <= 1.0:
        raise ConfigError("data.history_dropout", f"must be in [0, 1], got {history_dropout}")
    if not 0.0 <= anonymous_share < 1.0:
        raise ConfigError("data.anonymous_share", f"must be in [0, 1), got {anonymous_share}")
    if not 0.0 <= valid_query_share < 1.0:
        raise ConfigError("data.valid_query_share",
                          f"must be in [0, 1), got {valid_query_share}")
    if hard_negatives < 0:
        raise ConfigError("data.hard_negatives", f"must be >= 0, got {hard_negatives}")
    nn_cfg = {"k": 10, **(neighbours or {})}
    if set(nn_cfg) - {"k"}:
        raise ConfigError(f"data.neighbours.{sorted(set(nn_cfg) - {'k'})[0]}",
                          "unknown key; known: ['k']")
    if not isinstance(nn_cfg["k"], int) or nn_cfg["k"] < 0:
        raise ConfigError("data.neighbours.k", f"must be an integer >= 0, got {nn_cfg['k']!r}")

    with step(f"loaded and checked the log {data_dir}"):
        log = load_log(data_dir)
    imp = log.impressions.assign(query=log.impressions["query"].astype(str))
    if "relevance" in tasks and len(imp) == 0:
        raise ConfigError("model.tasks", "task 'relevance' needs labels, and the log is empty")
    judged = log.judgements
    if judged is not None:
        judged = judged.assign(query=judged["query"].astype(str))
    windows, train_mask, held_out = training_window(
        imp, set(judged["query"]) if judged is not None else None, split, folds, fold, seed,
        log.sources.get("impressions", "impressions"))
    is_train_query = ~imp["query"].isin(held_out)
    train_imp = imp[train_mask]  # labels: incl. validation queries
    if train_imp.empty:
        raise DataValidationError("impressions", "no training impressions left after the "
                                  "split and the query hold-out", column="timestamp")
    valid_queries: set[str] = set()
    if "relevance" in tasks:
        valid_queries = _pick_validation_queries(sorted(train_imp["query"].unique()),
                                                 valid_query_share, seed)
    is_model_query = is_train_query & ~imp["query"].isin(valid_queries)
    trained_queries = set(train_imp["query"]) | set(imp.loc[is_train_query, "query"])

    notes: list[str] = []
    text_cfg = None
    if text is not None:
        from ltr.text import TextConfig
        text_cfg = TextConfig.from_mapping(text, "data.text")
        refuse_model_keys(text)
        text_cfg, absent = text_cfg.with_available_fields(log.products.columns)
        if absent:
            notes.append(f"data.text.product_fields {absent} are not catalog columns: the "
                         "product text is the title and the other fields")
            text = {**dict(text), "product_fields": list(text_cfg.product_fields)}
    encoder = encoder if encoder is not None or text is None else _encoder(text)
    product_cols = set(log.products.columns)
    customer_cols = set(log.customers.columns)
    with_nn = encoder is not None and nn_cfg["k"] > 0 and "relevance" in tasks
    if features is None:
        features, left_out = default_spec(product_cols, customer_cols,
                                          encoder is not None, with_nn)
        notes += left_out
    spec = FeatureSpec.from_dict(features, "data.features")
    check_available(spec, product_cols, customer_cols, encoder is not None, with_nn)

    fields = lexical_fields(text_cfg.product_fields if text_cfg is not None else ())
    sim = lex = None
    if encoder is not None:
        from ltr.labels.similarity import pair_coverage, pair_similarity

        def sim(q: np.ndarray, p: np.ndarray) -> np.ndarray:
            return pair_similarity(encoder, log.products, q, p, text_cfg.product_fields,
                                   text_cfg.product_separator)

        def lex(q: np.ndarray, p: np.ndarray) -> np.ndarray:
            return pair_coverage(log.products, q, p, fields[2:])

    def embed(texts: list[str]) -> np.ndarray:
        return encoder.encode_texts(list(texts)).rows()

    label_table = None
    lexical_weight = 0.0
    variant = "combined" if sim is not None else "behaviour_only"
    if "relevance" in tasks and artifact is not None:
        from ltr.labels.artifact import window_fingerprint

        artifact.check(window_fingerprint(train_imp),
                       window_description(split, folds, fold, seed), len(train_imp))
        label_table = artifact.labels[artifact.labels["query"].isin(set(train_imp["query"]))]
        lexical_weight = artifact.lexical_weight
        notes.append(f"labels from {artifact.path} (fingerprint {artifact.fingerprint})")
    elif "relevance" in tasks:
        train_judged = judged[judged["query"].isin(set(train_imp["query"]))] \
            if judged is not None else None
        with step(f"relevance labels of the training window ({len(train_imp):,} "
                  "impressions)"):
            result = derive_labels(train_imp, label_cfg, sim,
                                   train_judged[["query", "product_id"]]
                                   if train_judged is not None else None, variant,
                                   lexical=lex)
        label_table, lexical_weight = result.labels, result.lexical_weight
    # every later label (history labels, validation labels) uses the weight the training
    # labels were made with
    label_cfg = dataclasses.replace(label_cfg, lexical_weight=lexical_weight)

    # history as of the start of each set's window (see the module docstring)
    def history(rows: pd.Series) -> History:
        return history_features(imp[rows], label_cfg, sim, lex)

    with step("history features (three windows)"):
        hist_train = history((windows == "history") & is_model_query)
        hist_valid = history(windows.isin(["history", "train"]) & is_model_query)
        hist_infer = history((windows != "test") & is_train_query)

    model_imp = train_imp[~train_imp["query"].isin(valid_queries)]
    model_labels = None if label_table is None else \
        label_table[~label_table["query"].isin(valid_queries)]
    nn_train = nn_infer = None
    if encoder is not None and label_table is not None and nn_cfg["k"] > 0:
        with step("neighbour label tables"):
            nn_train = QueryNeighbours.from_labels(model_labels, embed, nn_cfg["k"])
            nn_infer = QueryNeighbours.from_labels(label_table, embed, nn_cfg["k"])
    train_rows = model_imp
    if hard_negatives and model_labels is not None:
        train_rows = pd.concat([model_imp, _hard_negatives(model_imp, model_labels,
                                                           hard_negatives, seed)],
                               ignore_index=True)
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

    clash = (set(log.customers.columns) - {"customer_id"}) & \
        (set(imp.columns) | set(log.products.columns))
    if clash:
        raise DataValidationError("customers", f"column(s) {sorted(clash)} clash with "
                                  "impression or product columns", column=sorted(clash)[0])
    schema = row_schema(spec, tasks, log.products, log.customers, hist_infer, fields,
                        row_columns=set(imp.columns) | {"grade", "human"})
    joiner = RowJoiner.from_tables(schema, spec, log.products, log.customers, hist_infer,
                                   nn_infer)
    joiners = {(id(hist_infer), id(nn_infer)): joiner}  # one per (history, neighbours)

    def join(rows: pd.DataFrame, hist: History, labels: pd.DataFrame | None, group: str,
             nn: QueryNeighbours | None) -> pd.DataFrame:
        key = (id(hist), id(nn))
        if key not in joiners:
            joiners[key] = joiner.with_history(hist, nn)
        return join_rows(rows, joiners[key], labels, group, embed)

    dropped = np.zeros(0, dtype=train_rows["session_id"].dtype)
    if history_dropout > 0:
        lists = train_rows["session_id"].unique()
        dropped = lists[np.random.default_rng(seed + 3).random(len(lists)) < history_dropout]
    # training rows in list order: sessions by position, the unshown products after
    train_rows = train_rows.assign(_neg=train_rows["position"] == 0).sort_values(
        ["session_id", "_neg", "position"], kind="stable").drop(columns="_neg")

    def train_features(rows: pd.DataFrame) -> pd.DataFrame:
        """Training rows joined, and the history of the dropped-out lists removed."""
        out = join(rows, hist_train, label_table, "session_id", nn_train)
        if len(dropped):
            cols = [c for c in PAIR_HISTORY_COLUMNS if c in out]
            out.loc[out["session_id"].isin(dropped), cols] = np.nan
        return out

    valid_rows, valid_info = _validation_rows(imp, windows, label_table, valid_queries,
                                              is_model_query, is_train_query, label_cfg, seed)
    test_imp = imp[imp["query"].isin(held_out)] if held_out else imp[windows == "test"]
    with step("joined the validation and test rows"):
        valid_joined = join(valid_rows, hist_valid, None, "session_id", nn_train)
        test_joined = join(test_imp, hist_infer, label_table, "session_id", nn_infer)
    stream_path = train_joined = None
    if stream_dir is not None:  # joined a few row groups at a time, never whole
        from ltr.training.stream import write_list_rows

        fit = PreprocessorFit(spec)

        def joined_chunk(rows: pd.DataFrame) -> pd.DataFrame:
            out = train_features(rows)
            fit.update(out)
            return out

        with step(f"joined and wrote {len(train_rows):,} training rows"):
            stream_path = write_list_rows(train_rows, Path(stream_dir) / "train.parquet",
                                          "session_id", seed=seed, transform=joined_chunk,
                                          types=_arrow_types(log))
        pre = fit.result()
    else:
        with step(f"joined {len(train_rows):,} training rows"):
            train_joined = train_features(train_rows)
        pre = Preprocessor.fit(train_joined, spec, "training rows")

    pools_rows = known_rows = None
    if judged is not None:
        new_q = set(judged["query"]) - trained_queries
        known_q = set(judged["query"]) & set(train_imp["query"])
        if new_q:
            pools_rows = join(_judged_rows(judged, new_q, log), hist_infer, None, "query",
                              nn_infer)
        if known_q:
            known_rows = join(_judged_rows(judged, known_q, log), hist_infer, label_table,
                              "query", nn_infer)

    # text tables: every query and product that appears anywhere
    all_rows = [train_rows, valid_joined, test_joined] + \
        [r for r in (pools_rows, known_rows) if r is not None]
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
        with step(f"embeddings of {len(query_texts):,} queries and "
                  f"{len(product_texts):,} products"):
            q_emb = encoder.encode_texts(query_texts).rows()
            p_emb = encoder.encode_texts(product_texts).rows()

    def lists(rows: pd.DataFrame, group: str, source: str, **kwargs: Any) -> ListData:
        rows = rows.sort_values([group, "position"], kind="stable") if "position" in rows \
            else rows
        return build_lists(rows, group, pre, q_index, p_index, tasks, source, **kwargs)

    stream = None
    if stream_path is not None:
        from ltr.training.stream import ParquetListStream

        width = int(train_rows.groupby("session_id").size().max())
        stream = ParquetListStream(stream_path, "session_id", pre, q_index, p_index, tasks,
                                   width)
    out = PreparedData(
        preprocessor=pre, tasks=tasks, query_texts=query_texts, product_texts=product_texts,
        product_ids=products["product_id"].tolist(), query_embeddings=q_emb,
        product_embeddings=p_emb,
        train=None if stream is not None else build_lists(
            train_joined, "session_id", pre, q_index, p_index, tasks, "training rows"),
        valid=lists(valid_joined, "session_id", "validation rows"),
        test=lists(test_joined, "session_id", "test rows"),
        pools=None, held_out_queries=sorted(held_out), train_stream=stream,
        query_index=q_index, product_index=p_index,
        products=log.products, customers=log.customers, history=hist_infer,
        neighbours=nn_infer, text=None if text is None else dict(text),
        lexical_weight=lexical_weight, lexical_fields=fields, encoder=encoder,
    )
    if pools_rows is not None and len(pools_rows):
        out.pools = build_lists(pools_rows, "query", pre, q_index, p_index, tasks,
                                "judged pools", extra_labels={"human": "human"})
    if known_rows is not None and len(known_rows):
        out.known_pools = build_lists(known_rows, "query", pre, q_index, p_index, tasks,
                                      "judged pools of known queries",
                                      extra_labels={"human": "human", "label": "grade"})
    out.info = {"seconds": round(time.perf_counter() - t0, 1),
                "data_dir": str(Path(data_dir).resolve()),
                "rows": {"train": len(train_rows), "valid": len(valid_joined),
                         "test": len(test_joined)},
                "lists": {"train": len(out.train) if out.train is not None else "streamed",
                          "valid": len(out.valid), "valid_warm": int(out.valid.warm.sum()),
                          "test": len(out.test), "pools": len(out.pools) if out.pools else 0,
                          "known_pools": len(out.known_pools) if out.known_pools else 0},
                "held_out_queries": len(held_out), "validation_queries": len(valid_queries),
                "labelled_pairs": 0 if label_table is None else len(label_table),
                "lexical_weight": lexical_weight, "features": spec.to_dict(), "notes": notes,
                **valid_info}
    return out


def _validation_rows(imp: pd.DataFrame, windows: pd.Series, label_table: pd.DataFrame | None,
                     valid_queries: set[str], is_model_query: pd.Series,
                     is_train_query: pd.Series, label_cfg: LabelConfig, seed: int
                     ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The validation rows (see the module docstring): cold and warm candidate pools with
    a ``grade`` column, or the validation window's sessions without the relevance task."""
    if label_table is None:
        return imp[(windows == "valid") & is_train_query], {}
    parts, info = [], {}

    def behaviour(shown: pd.DataFrame, pairs: pd.DataFrame, source: str) -> pd.DataFrame:
        labels = derive_labels(shown, label_cfg, None, pairs, "behaviour_only",
                               source=source).labels
        return labels.merge(pairs, on=["query", "product_id"])  # the pools only

    if valid_queries:
        parts.append(_pool_lists(label_table[label_table["query"].isin(valid_queries)], 1,
                                 10**6, seed, keep_grade=True))
    valid_imp = imp[(windows == "valid") & is_model_query]
    clicked = valid_imp.loc[valid_imp["clicked"] > 0, "query"].unique()
    if len(clicked):
        pairs = label_table.loc[label_table["query"].isin(clicked), ["query", "product_id"]]
        future = behaviour(valid_imp[valid_imp["query"].isin(clicked)], pairs,
                           "validation window")
        first = -1 - sum(len(p["session_id"].unique()) for p in parts)
        parts.append(_pool_lists(future, 1, 10**6, seed, first_id=first, keep_grade=True))
        info["warm_validation_queries"] = int(future["query"].nunique())
    if not parts:
        raise DataValidationError("impressions", "no validation lists: there are neither "
                                  "validation queries (data.valid_query_share) nor clicks in "
                                  "the validation window (data.split.valid_days)",
                                  column="timestamp")
    return pd.concat(parts, ignore_index=True).drop(columns="timestamp"), info


def _arrow_types(log: SearchLog) -> dict[str, Any]:
    """Arrow types of the log's columns (from their non-missing values), for a chunk of
    streamed training rows in which a column holds only missing values."""
    import pyarrow as pa

    out: dict[str, Any] = {}
    for frame in (log.customers, log.products, log.impressions):
        for col in frame.columns:
            values = frame[col].dropna()
            if len(values) and col not in out:
                out[col] = pa.array(values.iloc[:1000]).type
    return out


def _encoder(text: dict[str, Any]):
    from ltr.text import TextConfig, TextEncoder

    return TextEncoder.from_config(TextConfig.from_mapping(text, "data.text"))
