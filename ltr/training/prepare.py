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

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.loaders import SearchLog
from ltr.errors import ConfigError, DataValidationError
from ltr.features.assemble import KeyRows, RowJoiner, row_schema
from ltr.features.defaults import check_available, default_spec
from ltr.features.history import PAIR_HISTORY_COLUMNS, history_features
from ltr.features.neighbours import QueryNeighbours
from ltr.features.preprocess import Preprocessor, PreprocessorFit
from ltr.features.spec import FeatureSpec, check_tasks
from ltr.features.split import no_training_rows, window_description
from ltr.features.stores import keys_of
from ltr.features.text_match import lexical_fields
from ltr.labels.config import LabelConfig
from ltr.labels.pipeline import derive_labels
from ltr.progress import step
from ltr.training.lists import ListData, build_lists, concat_lists
from ltr.training.logview import (
    ALL_WINDOWS,
    LogView,
    Selection,
    open_log_view,
)
from ltr.training.stream import list_ranks

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
            neighbours: dict[str, Any] | None = None, engine: str = "auto",
            memory_limit: str | None = None,
            spark: dict[str, Any] | None = None) -> PreparedData:
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
    of holding the training lists in memory.

    ``engine``: where the impression log is read from (:mod:`ltr.training.logview`):
    ``auto`` is ``duckdb`` with ``stream_dir`` (and DuckDB installed), else ``pandas``;
    ``pandas`` loads it whole; ``duckdb`` (memory bounded by ``memory_limit``, spilling
    to disk) and ``spark`` (``spark: {master, conf}``) check and query it in SQL, so that
    only aggregates, sessions and one chunk of rows at a time are in memory. The same
    steps run on the same selections either way, with the same results."""
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

    if engine == "auto":
        engine = "duckdb" if stream_dir is not None and _has_duckdb() else "pandas"
    if engine not in ("pandas", "duckdb", "spark"):
        raise ConfigError("data.engine", "must be one of ['auto', 'pandas', 'duckdb', "
                          f"'spark'], got {engine!r}")
    with step(f"loaded and checked the log {data_dir} ({engine})"):
        view = open_log_view(data_dir, engine, split, folds, fold, seed, memory_limit, spark)
    with contextlib.closing(view):
        return _prepare_view(
            view, data_dir, tasks, features, label_cfg, artifact, text, split, folds, fold,
            hard_negatives, seed, encoder, anonymous_share, pool_lists, pool_list_size,
            history_dropout, valid_query_share, stream_dir, nn_cfg, t0)


LISTS_PER_GROUP = 512  # lists per Parquet row group of streamed training lists
GROUPS_PER_CHUNK = 16  # row groups joined at a time


def _prepare_view(view: LogView, data_dir: str, tasks: list[str],
                  features: dict[str, Any] | None, label_cfg: LabelConfig, artifact: Any,
                  text: dict[str, Any] | None, split: dict[str, Any] | None, folds: int,
                  fold: int, hard_negatives: int, seed: int, encoder: Any,
                  anonymous_share: float, pool_lists: int, pool_list_size: int,
                  history_dropout: float, valid_query_share: float, stream_dir: str | None,
                  nn_cfg: dict[str, Any], t0: float) -> PreparedData:
    """:func:`prepare` over an opened :class:`~ltr.training.logview.LogView`."""
    log, held_out = view.log, view.held_out
    train_sel = Selection(("train",), "trained")  # labels: incl. validation queries
    n_train = view.count(train_sel)
    if n_train == 0:
        raise no_training_rows("impressions")
    train_queries = view.queries(train_sel)
    valid_queries: set[str] = set()
    if "relevance" in tasks:
        valid_queries = _pick_validation_queries(sorted(train_queries), valid_query_share,
                                                 seed)
    view.set_validation_queries(valid_queries)
    trained_queries = view.queries(Selection(ALL_WINDOWS, "trained"))
    judged = log.judgements
    if judged is not None:
        judged = judged.assign(query=judged["query"].astype(str))

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

    label_table = None
    lexical_weight = 0.0
    variant = "combined" if sim is not None else "behaviour_only"
    if "relevance" in tasks and artifact is not None:
        artifact.check(view.fingerprint(train_sel),
                       window_description(split, folds, fold, seed), n_train)
        label_table = artifact.labels[artifact.labels["query"].isin(train_queries)]
        lexical_weight = artifact.lexical_weight
        notes.append(f"labels from {artifact.path} (fingerprint {artifact.fingerprint})")
    elif "relevance" in tasks:
        train_judged = judged[judged["query"].isin(train_queries)] \
            if judged is not None else None
        with step(f"relevance labels of the training window ({n_train:,} impressions)"):
            result = derive_labels(view.label_input(train_sel), label_cfg, sim,
                                   train_judged[["query", "product_id"]]
                                   if train_judged is not None else None, variant,
                                   source=view.source, lexical=lex)
        label_table, lexical_weight = result.labels, result.lexical_weight
    if label_table is not None:  # one order whatever the log's backend: the draws below
        label_table = label_table.sort_values(["query", "product_id"], ignore_index=True)
    # every later label (history labels, validation labels) uses the weight the training
    # labels were made with
    label_cfg = dataclasses.replace(label_cfg, lexical_weight=lexical_weight)

    # history as of the start of each set's window (see the module docstring)
    def history(windows: tuple[str, ...], queries: str) -> History:
        return history_features(view.label_input(Selection(windows, queries)), label_cfg,
                                sim, lex)

    with step("history features (three windows)"):
        hist_train = history(("history",), "model")
        hist_valid = history(("history", "train"), "model")
        hist_infer = history(("history", "train", "valid"), "trained")

    model_labels = None if label_table is None else \
        label_table[~label_table["query"].isin(valid_queries)].reset_index(drop=True)
    model_sel = Selection(("train",), "model")
    test_sel = Selection(ALL_WINDOWS, "held_out") if held_out else Selection(("test",))
    valid_rows, valid_info = _validation_rows(view, label_table, valid_queries, label_cfg,
                                              seed)
    new_q = known_q = set()
    if judged is not None:
        new_q = set(judged["query"]) - trained_queries
        known_q = set(judged["query"]) & train_queries
    pools = _pool_lists(model_labels, pool_lists, pool_list_size, seed) \
        if pool_lists > 0 and model_labels is not None else None

    # text tables: every query and product that appears anywhere, encoded once; every
    # later use of a query's embedding (the neighbour features) reads this table, as a
    # model package does
    sels = [model_sel, test_sel, *([valid_rows] if isinstance(valid_rows, Selection) else [])]
    small = [r for r in (valid_rows, label_table) if isinstance(r, pd.DataFrame)]
    if judged is not None:
        small.append(judged[judged["query"].isin(new_q | known_q)])
    query_texts = sorted(set().union(*(view.queries(sel) for sel in sels),
                                     *(set(r["query"].astype(str)) for r in small)))
    used = [*(view.products(sel) for sel in sels), *(r["product_id"].to_numpy() for r in small)]
    used = pd.unique(pd.Series(np.concatenate([np.asarray(u, dtype=object) for u in used])))
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

    def embed(texts: list[str]) -> np.ndarray:
        """Query embeddings from the text table (the encoder for a text not in it)."""
        at = np.array([q_index.get(str(t), -1) for t in texts], dtype=np.int64)
        out = q_emb[np.maximum(at, 0)] if len(q_emb) else np.zeros((len(at), 1), np.float32)
        if (at < 0).any():
            missing = [str(t) for t, i in zip(texts, at, strict=True) if i < 0]
            out[at < 0] = encoder.encode_texts(missing).rows()
        return out

    nn_train = nn_infer = None
    if encoder is not None and label_table is not None and nn_cfg["k"] > 0:
        with step("neighbour label tables"):
            nn_train = QueryNeighbours.from_labels(model_labels, embed, nn_cfg["k"])
            nn_infer = QueryNeighbours.from_labels(label_table, embed, nn_cfg["k"])

    clash = (set(log.customers.columns) - {"customer_id"}) & \
        (view.row_columns | set(log.products.columns))
    if clash:
        raise DataValidationError("customers", f"column(s) {sorted(clash)} clash with "
                                  "impression or product columns", column=sorted(clash)[0])
    schema = row_schema(spec, tasks, log.products, log.customers, hist_infer, fields,
                        row_columns=view.row_columns | {"grade", "human"})
    joiner = RowJoiner.from_tables(schema, spec, log.products, log.customers, hist_infer,
                                   nn_infer)
    joiners = {(id(hist_infer), id(nn_infer)): joiner}  # one per (history, neighbours)

    def join(rows: pd.DataFrame, hist: History, labels: pd.DataFrame | None, group: str,
             nn: QueryNeighbours | None) -> pd.DataFrame:
        key = (id(hist), id(nn))
        if key not in joiners:
            joiners[key] = joiner.with_history(hist, nn)
        return join_rows(rows, joiners[key], labels, group, embed)

    # ---- training lists: sessions of the model's queries, hard negatives, pool lists
    sessions = view.sessions(model_sel)
    keys = pd.Index(sessions["session_id"])
    if pools is not None and len(pools):
        keys = keys.append(pd.Index(pools["session_id"].unique()))
    anonymous = set(keys[np.random.default_rng(seed + 1).random(len(keys))
                         < anonymous_share]) if anonymous_share > 0 else set()
    dropped = set(keys[np.random.default_rng(seed + 3).random(len(keys))
                       < history_dropout]) if history_dropout > 0 else set()
    rank = list_ranks(keys, seed)
    negatives_from = model_labels if hard_negatives and model_labels is not None else None

    def training_chunks() -> Iterator[pd.DataFrame]:
        """Unjoined training rows, whole lists in rank order, a chunk at a time."""
        per_chunk = LISTS_PER_GROUP * GROUPS_PER_CHUNK
        shown = view.list_rows(model_sel, rank.loc[sessions["session_id"].to_numpy()],
                               per_chunk)
        pool_rows = None
        if pools is not None and len(pools):
            pool_rows = pools.assign(_rank=pools["session_id"].map(rank).to_numpy())
            pool_rows = pool_rows.sort_values("_rank", kind="stable", ignore_index=True)
            pool_at = pool_rows["_rank"].to_numpy()
        pending = next(shown, None)
        for n, first in enumerate(range(0, len(keys), per_chunk)):
            parts = []
            if pending is not None and pending[0] == first:
                rows = pending[1]
                parts.append(rows)
                if negatives_from is not None:
                    parts.append(_hard_negatives(rows, negatives_from, hard_negatives,
                                                 seed + 7919 * n))
                pending = next(shown, None)
            if pool_rows is not None:
                lo, hi = np.searchsorted(pool_at, [first, first + per_chunk])
                parts.append(pool_rows.iloc[lo:hi].drop(columns="_rank"))
            parts = [p for p in parts if len(p)]
            if not parts:
                continue
            chunk = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            chunk = chunk.assign(_rank=chunk["session_id"].map(rank).to_numpy(),
                                 _neg=chunk["position"] == 0)
            chunk = chunk.sort_values(["_rank", "_neg", "position"], kind="stable",
                                      ignore_index=True).drop(columns=["_rank", "_neg"])
            if anonymous:
                chunk["customer_id"] = chunk["customer_id"].astype(object)
                chunk.loc[chunk["session_id"].isin(anonymous), "customer_id"] = None
            yield chunk

    def train_features(rows: pd.DataFrame) -> pd.DataFrame:
        """Training rows joined, and the history of the dropped-out lists removed."""
        out = join(rows, hist_train, label_table, "session_id", nn_train)
        if dropped:
            cols = [c for c in PAIR_HISTORY_COLUMNS if c in out]
            out.loc[out["session_id"].isin(dropped), cols] = np.nan
        return out

    pools_rows = known_rows = None
    if judged is not None:
        if new_q:
            pools_rows = join(_judged_rows(judged, new_q, log), hist_infer, None, "query",
                              nn_infer)
        if known_q:
            known_rows = join(_judged_rows(judged, known_q, log), hist_infer, label_table,
                              "query", nn_infer)

    # the training rows: joined a chunk of whole lists at a time; with stream_dir written
    # as Parquet row groups and never whole in memory
    fit = PreprocessorFit(spec)
    width, n_rows, kept = 0, 0, []
    writer = None
    if stream_dir is not None:
        from ltr.training.stream import ListWriter

        writer = ListWriter(Path(stream_dir) / "train.parquet", _arrow_types(log))
    with step("joined the training rows" + (" and wrote them" if writer else "")), \
            writer if writer is not None else contextlib.nullcontext():
        for chunk in training_chunks():
            joined = train_features(chunk)
            fit.update(joined)
            width = max(width, int(joined.groupby("session_id", sort=False).size().max()))
            n_rows += len(joined)
            if writer is not None:
                writer.write(joined, joined["session_id"].map(rank).to_numpy()
                             // LISTS_PER_GROUP)
            else:
                kept.append(joined)
    if n_rows == 0:
        raise no_training_rows(view.source)
    pre = fit.result()

    def lists(rows: pd.DataFrame, group: str, source: str, **kwargs: Any) -> ListData:
        rows = rows.sort_values([group, "position"], kind="stable") if "position" in rows \
            else rows
        return build_lists(rows, group, pre, q_index, p_index, tasks, source, **kwargs)

    def session_lists(sel: Selection, hist: History, labels: pd.DataFrame | None,
                      nn: QueryNeighbours | None, source: str) -> ListData:
        """The sessions of ``sel`` as lists, joined a chunk at a time, in session order."""
        found = view.sessions(sel)["session_id"]
        order = pd.Series(np.arange(len(found), dtype=np.int64), index=pd.Index(found))
        size = view.max_list_size(sel)
        parts = [build_lists(join(rows, hist, labels, "session_id", nn), "session_id", pre,
                             q_index, p_index, tasks, source, list_size=size)
                 for _, rows in view.list_rows(sel, order, LISTS_PER_GROUP * GROUPS_PER_CHUNK)]
        return concat_lists(parts) if parts else build_lists(
            join(view.empty_rows(), hist, labels, "session_id", nn), "session_id", pre,
            q_index, p_index, tasks, source, list_size=max(size, 1))

    stream = None
    if writer is not None:
        from ltr.training.stream import ParquetListStream

        stream = ParquetListStream(writer.path, "session_id", pre, q_index, p_index, tasks,
                                   width)
    with step("joined the validation and test rows"):
        valid = session_lists(valid_rows, hist_valid, None, nn_train, "validation rows") \
            if isinstance(valid_rows, Selection) else \
            lists(join(valid_rows, hist_valid, None, "session_id", nn_train), "session_id",
                  "validation rows")
        test = session_lists(test_sel, hist_infer, label_table, nn_infer, "test rows")
    out = PreparedData(
        preprocessor=pre, tasks=tasks, query_texts=query_texts, product_texts=product_texts,
        product_ids=products["product_id"].tolist(), query_embeddings=q_emb,
        product_embeddings=p_emb,
        train=None if stream is not None else build_lists(
            pd.concat(kept, ignore_index=True), "session_id", pre, q_index, p_index, tasks,
            "training rows"),
        valid=valid, test=test,
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
                "data_dir": data_dir if "://" in str(data_dir) else str(Path(data_dir).resolve()),
                "engine": view.engine_name,
                "rows": {"train": n_rows, "valid": int(out.valid.mask.sum()),
                         "test": int(out.test.mask.sum())},
                "lists": {"train": len(out.train) if out.train is not None else "streamed",
                          "valid": len(out.valid), "valid_warm": int(out.valid.warm.sum()),
                          "test": len(out.test), "pools": len(out.pools) if out.pools else 0,
                          "known_pools": len(out.known_pools) if out.known_pools else 0},
                "held_out_queries": len(held_out), "validation_queries": len(valid_queries),
                "labelled_pairs": 0 if label_table is None else len(label_table),
                "lexical_weight": lexical_weight, "features": spec.to_dict(), "notes": notes,
                **valid_info}
    return out


def _validation_rows(view: LogView, label_table: pd.DataFrame | None,
                     valid_queries: set[str], label_cfg: LabelConfig, seed: int
                     ) -> tuple[pd.DataFrame | Selection, dict[str, Any]]:
    """The validation rows (see the module docstring): cold and warm candidate pools with
    a ``grade`` column, or (without the relevance task) the selection of the validation
    window's sessions."""
    if label_table is None:
        return Selection(("valid",), "trained"), {}
    parts, info = [], {}

    if valid_queries:
        parts.append(_pool_lists(label_table[label_table["query"].isin(valid_queries)], 1,
                                 10**6, seed, keep_grade=True))
    valid_sel = Selection(("valid",), "model")
    clicked = view.queries(valid_sel, clicked=True)
    if clicked:
        pairs = label_table.loc[label_table["query"].isin(clicked), ["query", "product_id"]]
        shown = view.label_input(Selection(("valid",), "model", frozenset(clicked)))
        labels = derive_labels(shown, label_cfg, None, pairs, "behaviour_only",
                               source="validation window").labels
        future = labels.merge(pairs, on=["query", "product_id"])  # the pools only
        future = future.sort_values(["query", "product_id"], ignore_index=True)
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


def _has_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def _encoder(text: dict[str, Any]):
    from ltr.text import TextConfig, TextEncoder

    return TextEncoder.from_config(TextConfig.from_mapping(text, "data.text"))
