"""The label path out of core: contract checks and aggregation of an impression log in SQL.

:func:`scan_log` registers the impression file (Parquet, a folder of Parquet parts, CSV
or TSV) on an engine, checks it against the data contract in SQL, and returns the same
:class:`~ltr.labels.aggregate.LogAggregates` as :func:`ltr.labels.aggregate.aggregate_log`
on the pandas-loaded log, plus the row count and the window fingerprint that
``label_config.yaml`` records. Only the cells — one row per (query, product, position) —
ever reach pandas; the label rule after them (position-bias EM, smoothing, grading) is
pairs-level and stays in pandas.

Checks, in the pandas loader's order (:mod:`ltr.data.validate`, :mod:`ltr.data.loaders`),
each one SQL pass at most and all row-level rules in a single scan:

1. required columns present; at least one row;
2. per column: no NULL / NaN / blank; position and the outcomes numbers, finite, whole;
   the outcomes 0 or 1; position >= 1; no purchase without a click;
3. per session (one GROUP BY): (session_id, position) unique, one query, one customer;
4. anti-joins: every product_id in the catalog, every customer_id in the customer table.

A failing check raises :class:`~ltr.errors.DataValidationError` naming the file, the
column, the number of offending rows and the first five (row number and value).
Timestamps are checked for presence here; a training window (``window:``,
:func:`window_view`) parses the *distinct* timestamps with the pandas loader's own parser
(mixed formats, zones, epoch units), so that windows are cut exactly as ``ltr fit`` cuts
them, and joins the window of each timestamp back onto the log in SQL.

Aggregates from the cells: pair counts are the sums over a pair's cells, the mean position
is ``sum(position * impressions) / impressions``; pairs are ordered by (query,
product_id), cells by (pair, position). The pandas path orders pairs by first appearance
in the log instead; values are the same (floating sums within 1e-12).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.schema import IMPRESSIONS
from ltr.errors import DataValidationError
from ltr.labels.aggregate import LogAggregates
from ltr.labels.artifact import FINGERPRINT_COLUMNS
from ltr.scale import sql
from ltr.scale.engines import SqlEngine

MAX_SHOWN = 5


@dataclass
class LogScan:
    """What the labels need from the log, computed by the engine."""

    aggregates: LogAggregates
    n_impressions: int
    fingerprint: str


def check_impressions_sql(engine: SqlEngine, path: str, products: pd.DataFrame | None = None,
                          customers: pd.DataFrame | None = None) -> int:
    """Register ``path`` as the views ``impressions_raw`` and ``impressions`` (typed) and
    check the data contract in SQL (module docstring); return the number of rows."""
    src = str(path)
    engine.register_file("impressions_raw", src)
    types = engine.columns("impressions_raw")
    required = [c.name for c in IMPRESSIONS.required]
    missing = [c for c in required if c not in types]
    if missing:
        raise DataValidationError(
            src, f"missing required column(s) {missing}; the impressions table needs "
            f"{required} (found {list(types)})", column=missing[0])
    rownum = engine.row_number("impressions_raw")
    profile = engine.query(sql.profile_sql(types)).iloc[0]
    n_rows = int(profile["n_rows"])
    if n_rows == 0:
        raise DataValidationError(src, "has its columns but no rows: the impressions table "
                                  "needs at least one")
    for rule in sql.row_rules(types):
        if _count(profile[rule.name]):
            _raise(engine, src, rule.condition, rule.column, int(profile[rule.name]),
                   rule.problem, sql.numbered_raw(rownum))
    integer_ids = {c: sql.type_kind(types[c]) == "int" or not _count(profile[f"nonint_{c}"])
                   for c in sql.ID_COLUMNS}
    engine.execute("CREATE OR REPLACE TEMPORARY VIEW impressions AS "
                   + sql.typed_select(types, integer_ids))
    numbered = sql.typed_select(types, integer_ids, row_number=rownum)

    sessions = engine.query(sql.sessions_sql()).iloc[0]
    problems = {"dup_key": ("session_id,position",
                            "repeat the key (session_id, position) of another row"),
                "many_queries": ("query", "belong to sessions with more than one query"),
                "many_customers": ("customer_id",
                                   "belong to sessions with more than one customer_id")}
    for kind, (column, problem) in problems.items():
        if _count(sessions[kind]):
            ids = engine.query(sql.bad_sessions_sql(kind))["session_id"].tolist()
            listed = ", ".join(_literal(v) for v in ids)
            shown = "session_id" if kind == "dup_key" else column
            _raise(engine, src, f"(session_id IN ({listed}))", shown, None,
                   f"{problem} ({int(sessions[kind])} session(s), e.g. {ids[:MAX_SHOWN]})",
                   numbered, column=column)

    for column, table, name in (("product_id", products, "products"),
                                ("customer_id", customers, "customers")):
        if table is None:
            continue
        view = f"catalog_{name}"
        engine.register_frame(view, table[[column]].drop_duplicates())
        as_string = not (integer_ids[column] and pd.api.types.is_integer_dtype(table[column]))
        n_bad = int(engine.query(sql.unknown_ids_sql(column, view, as_string))["n"].iloc[0])
        if n_bad:
            _raise(engine, src, sql.known_condition(column, view, as_string), column, n_bad,
                   f"are absent from the {name} table", numbered)
    return n_rows


def aggregate_sql(engine: SqlEngine, source: str = "impressions",
                  view: str = "impressions") -> LogAggregates:
    """:class:`LogAggregates` of the checked ``impressions`` view, or of a window of it
    (module docstring)."""
    cells = engine.query(sql.cells_sql(view))
    if cells.empty:
        raise DataValidationError(source, "is empty: no impressions to derive labels from")
    cells["query"] = cells["query"].astype(str)
    for col in ("position", "impressions", "clicks", "carts", "purchases"):
        cells[col] = cells[col].to_numpy(np.int64)
    cells = cells.sort_values(["query", "product_id", "position"], kind="stable",
                              ignore_index=True)
    new_pair = np.ones(len(cells), dtype=bool)
    new_pair[1:] = (cells["query"].to_numpy()[1:] != cells["query"].to_numpy()[:-1]) | \
        (cells["product_id"].to_numpy()[1:] != cells["product_id"].to_numpy()[:-1])
    cell_pair = np.cumsum(new_pair) - 1
    n_pairs = int(cell_pair[-1]) + 1
    imp = cells["impressions"].to_numpy(np.float64)

    def total(col: str) -> np.ndarray:
        return np.bincount(cell_pair, weights=cells[col].to_numpy(np.float64),
                           minlength=n_pairs)

    first = np.flatnonzero(new_pair)
    pairs = pd.DataFrame({
        "query": cells["query"].to_numpy()[first],
        "product_id": cells["product_id"].to_numpy()[first],
        "impressions": total("impressions").astype(np.int64),
        "clicks": total("clicks").astype(np.int64),
        "carts": total("carts").astype(np.int64),
        "purchases": total("purchases").astype(np.int64),
    })
    position = cells["position"].to_numpy(np.int64)
    pairs["mean_position"] = np.bincount(cell_pair, weights=position * imp,
                                         minlength=n_pairs) / pairs["impressions"].to_numpy()
    return LogAggregates(pairs=pairs, cell_pair=cell_pair.astype(np.int64),
                         cell_position=position, cell_impressions=imp,
                         cell_clicks=cells["clicks"].to_numpy(np.float64),
                         n_positions=int(position.max()))


def fingerprint_sql(engine: SqlEngine, rows: int = 1_000_000, view: str = "impressions"
                    ) -> str:
    """:func:`ltr.labels.artifact.window_fingerprint` of the ``impressions`` view, streamed:
    rows sorted by the engine (spilling past its memory limit) and hashed batch by batch
    with the same pandas row hash, so the digest equals the pandas path's."""
    digest = hashlib.sha256()
    for batch in engine.batches(sql.fingerprint_sql(FINGERPRINT_COLUMNS, view), rows):
        hashed = pd.util.hash_pandas_object(batch.astype(str), index=False).to_numpy()
        digest.update(hashed.tobytes())
    return digest.hexdigest()[:32]


def scan_log(engine: SqlEngine, path: str, products: pd.DataFrame | None = None,
             customers: pd.DataFrame | None = None, fingerprint: bool = True,
             window: dict[str, Any] | None = None,
             judged_queries: set[str] | None = None) -> LogScan:
    """Check, aggregate and fingerprint the impression log at ``path`` on ``engine``: the
    whole log, or with ``window`` (``{split, folds, fold, seed}``, filled in by
    :func:`ltr.features.split.window_description`) its training window
    (:func:`window_view`)."""
    n = check_impressions_sql(engine, path, products, customers)
    view = "impressions"
    if window:
        view, n = window_view(engine, window, judged_queries, str(path))
    agg = aggregate_sql(engine, str(path), view)
    return LogScan(agg, n, fingerprint_sql(engine, view=view) if fingerprint else "")


WINDOW_VIEW = "impressions_window"


def held_out_sql(engine: SqlEngine, judged_queries: set[str] | None, folds: int,
                 fold: int, seed: int) -> set[str]:
    """The queries of fold ``fold`` (:func:`ltr.features.split.held_out_queries`) over the
    checked log's distinct queries and the judged ones, as ``training_window`` draws them."""
    from ltr.features.split import held_out_queries

    queries = set(engine.query("SELECT DISTINCT query FROM impressions")["query"].astype(str))
    return held_out_queries(queries | set(judged_queries or ()), folds, fold, seed)


def timestamp_windows(engine: SqlEngine, split: dict[str, Any], source: str) -> pd.DataFrame:
    """``(ts, timestamp, window)`` per distinct raw timestamp of the checked log: parsed
    by the pandas loader's parser (mixed formats, zones, epoch units) and cut into
    windows by :func:`ltr.features.split.time_windows`, the code ``ltr fit`` cuts with."""
    from ltr.data.validate import coerce_column
    from ltr.features.split import time_windows

    column = next(c for c in IMPRESSIONS.columns if c.name == "timestamp")
    raw = engine.query("SELECT DISTINCT timestamp FROM impressions_raw")
    where = f"{source} (its distinct timestamps)"
    parsed = coerce_column(raw, column, where)
    windows = time_windows(pd.DataFrame({"timestamp": parsed}), split["history_days"],
                           split["valid_days"], split["test_days"], where)
    return pd.DataFrame({"ts": raw["timestamp"].to_numpy(), "timestamp": parsed.to_numpy(),
                         "window": windows.to_numpy().astype(object)})


def window_view(engine: SqlEngine, window: dict[str, Any], judged_queries: set[str] | None,
                source: str) -> tuple[str, int]:
    """Create the view of the training window of the checked log (the rows
    :func:`ltr.features.split.training_window` keeps: training days, held-out queries
    excepted) and return its name and row count.

    The window of a row depends on its timestamp only, so the distinct raw timestamps are
    fetched, parsed by the pandas loader's parser and cut by the pandas window code
    (:func:`ltr.features.split.time_windows`), and the window of each is joined back in
    SQL; held-out queries are drawn from the distinct queries the same way."""
    from ltr.features.split import no_training_rows

    stamps = timestamp_windows(engine, window["split"], source)
    folds, fold, seed = (int(window.get(k) or 0) for k in ("folds", "fold", "seed"))
    held_out = sorted(held_out_sql(engine, judged_queries, folds, fold, seed))
    engine.register_frame("window_timestamps", stamps.loc[stamps["window"] == "train", ["ts"]])
    where = ""
    if held_out:
        engine.register_frame("held_out_queries", pd.DataFrame({"query": held_out}))
        where = " WHERE i.query NOT IN (SELECT query FROM held_out_queries)"
    cols = ", ".join(f"i.{c}" for c in [*sql.ID_COLUMNS, "query", *sql.NUMBER_COLUMNS])
    engine.execute(
        f"CREATE OR REPLACE TEMPORARY VIEW {WINDOW_VIEW} AS SELECT {cols} FROM impressions i "
        f"JOIN window_timestamps w ON i._ts = w.ts{where}")
    n = int(engine.query(f"SELECT COUNT(*) AS n FROM {WINDOW_VIEW}")["n"].iloc[0])
    if n == 0:
        raise no_training_rows(source)
    return WINDOW_VIEW, n


def _count(value: object) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def _literal(value: object) -> str:
    if isinstance(value, int | np.integer):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def _raise(engine: SqlEngine, src: str, condition: str, shown: str, n_bad: int | None,
           problem: str, numbered: str, column: str | None = None) -> None:
    rows = engine.query(sql.offenders_sql(condition, shown, numbered, MAX_SHOWN))
    values = [v.item() if hasattr(v, "item") else v for v in rows["_value"].tolist()]
    count = f"{n_bad} row(s)" if n_bad is not None else "rows"
    raise DataValidationError(src, f"{count} {problem}", column=column or shown,
                              rows=[int(r) for r in rows["_row"]], values=values)
