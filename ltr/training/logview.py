"""Where training-data preparation reads the impression log from.

:func:`ltr.training.prepare.prepare` asks the log for *selections*: the rows of some time
windows (:data:`ltr.features.split.WINDOWS`) whose query is of some class, and from a
selection it needs only

* its distinct queries, clicked queries and products, and its row count;
* the input of the label rule (:func:`ltr.labels.derive_labels`): the rows, or their
  (query, product, position) aggregates, which give the same labels;
* the fingerprint a label artifact is checked against;
* its sessions (one row each) and its rows *in list order, a few lists at a time*
  (:meth:`LogView.list_rows`), which the training, validation and test lists are built
  from chunk by chunk.

Two views answer these, with the same results:

:class:`PandasLog`
    the log loaded and validated in memory (:func:`ltr.data.load_log`).
:class:`SqlLog`
    the log checked and queried on an SQL engine (:mod:`ltr.scale`: DuckDB in-process,
    memory bounded by ``memory_limit`` and spilling to disk, or Spark); only aggregates,
    distinct values, sessions and one chunk of rows at a time reach pandas.

Query classes: ``all``; ``trained`` (not held out by the query folds); ``model``
(trained and not a validation query: the queries the model trains on); ``held_out``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.loaders import SearchLog
from ltr.features.split import WINDOWS

QUERY_CLASSES = ("all", "trained", "model", "held_out")
SESSION_COLUMNS = ["session_id", "timestamp", "customer_id", "query"]
ROW_COLUMNS = ["session_id", "timestamp", "customer_id", "query", "product_id", "position",
               "clicked", "added_to_cart", "purchased"]


@dataclass(frozen=True)
class Selection:
    """Rows of ``windows`` whose query is of class ``queries`` (and, with ``among``, one
    of those queries)."""

    windows: tuple[str, ...]
    queries: str = "all"
    among: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not set(self.windows) <= set(WINDOWS) or self.queries not in QUERY_CLASSES:
            raise ValueError(f"bad selection {self}")


ALL_WINDOWS = tuple(WINDOWS)


class LogView:
    """The interface :func:`~ltr.training.prepare.prepare` reads the log through (module
    docstring)."""

    log: SearchLog  # catalog, customers, judgements (impressions: PandasLog only)
    held_out: set[str]
    source: str
    row_columns: set[str]  # impression columns a feature may read from the rows

    def set_validation_queries(self, queries: set[str]) -> None:
        raise NotImplementedError

    def count(self, sel: Selection) -> int:
        raise NotImplementedError

    def queries(self, sel: Selection, clicked: bool = False) -> set[str]:
        """Distinct queries (with ``clicked``: those with a click in the selection)."""
        raise NotImplementedError

    def products(self, sel: Selection) -> np.ndarray:
        raise NotImplementedError

    def label_input(self, sel: Selection) -> Any:
        """What :func:`ltr.labels.derive_labels` reads: rows or their aggregates."""
        raise NotImplementedError

    def fingerprint(self, sel: Selection) -> str:
        raise NotImplementedError

    def sessions(self, sel: Selection) -> pd.DataFrame:
        """One row per session (:data:`SESSION_COLUMNS`), ordered by session_id."""
        raise NotImplementedError

    def list_rows(self, sel: Selection, rank: pd.Series, lists_per_chunk: int
                  ) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(first rank, rows)`` of the sessions of ``rank`` (session_id -> list rank
        0, 1, ...) ``lists_per_chunk`` ranks at a time, rows ordered by (rank,
        position); sessions absent from ``rank`` are left out."""
        raise NotImplementedError

    def max_list_size(self, sel: Selection) -> int:
        """Rows of the selection's largest session (0 when empty)."""
        raise NotImplementedError

    def empty_rows(self) -> pd.DataFrame:
        """No rows, with the columns :meth:`list_rows` gives."""
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- pandas
class PandasLog(LogView):
    """The log in memory (module docstring)."""

    engine_name = "pandas"

    def __init__(self, log: SearchLog, windows: pd.Series, held_out: set[str]) -> None:
        self.log = log
        self.imp = log.impressions.assign(query=log.impressions["query"].astype(str))
        self.windows = windows.to_numpy()
        self.held_out = set(held_out)
        self.valid_queries: set[str] = set()
        self.source = log.sources.get("impressions", "impressions")
        self.row_columns = set(self.imp.columns)

    def set_validation_queries(self, queries: set[str]) -> None:
        self.valid_queries = set(queries)

    def mask(self, sel: Selection) -> np.ndarray:
        q = self.imp["query"]
        out = np.isin(self.windows, sel.windows)
        if sel.queries in ("trained", "model"):
            out &= ~q.isin(self.held_out).to_numpy()
        if sel.queries == "model":
            out &= ~q.isin(self.valid_queries).to_numpy()
        if sel.queries == "held_out":
            out &= q.isin(self.held_out).to_numpy()
        if sel.among is not None:
            out &= q.isin(sel.among).to_numpy()
        return out

    def frame(self, sel: Selection) -> pd.DataFrame:
        return self.imp[self.mask(sel)]

    def max_list_size(self, sel: Selection) -> int:
        sizes = self.frame(sel).groupby("session_id").size()
        return int(sizes.max()) if len(sizes) else 0

    def empty_rows(self) -> pd.DataFrame:
        return self.imp.iloc[:0]

    def count(self, sel: Selection) -> int:
        return int(self.mask(sel).sum())

    def queries(self, sel: Selection, clicked: bool = False) -> set[str]:
        rows = self.frame(sel)
        if clicked:
            rows = rows[rows["clicked"] > 0]
        return set(rows["query"].unique())

    def products(self, sel: Selection) -> np.ndarray:
        return pd.unique(self.frame(sel)["product_id"])

    def label_input(self, sel: Selection) -> pd.DataFrame:
        return self.frame(sel)

    def fingerprint(self, sel: Selection) -> str:
        from ltr.labels.artifact import window_fingerprint

        return window_fingerprint(self.frame(sel))

    def sessions(self, sel: Selection) -> pd.DataFrame:
        rows = self.frame(sel).drop_duplicates("session_id")
        return rows[SESSION_COLUMNS].sort_values("session_id", kind="stable",
                                                  ignore_index=True)

    def list_rows(self, sel: Selection, rank: pd.Series, lists_per_chunk: int
                  ) -> Iterator[tuple[int, pd.DataFrame]]:
        rows = self.frame(sel)
        at = rows["session_id"].map(rank).to_numpy()
        keep = ~pd.isna(at)
        rows = rows[keep].assign(_rank=at[keep].astype(np.int64))
        rows = rows.sort_values(["_rank", "position"], kind="stable", ignore_index=True)
        chunk = rows["_rank"].to_numpy() // lists_per_chunk
        bounds = np.flatnonzero(np.r_[True, np.diff(chunk) != 0, True])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield int(chunk[lo]) * lists_per_chunk, rows.iloc[lo:hi].drop(columns="_rank")


# --------------------------------------------------------------------------- SQL
class SqlLog(LogView):
    """The log on an SQL engine (module docstring). The impression file is checked
    against the data contract in SQL (:func:`ltr.scale.labels.check_impressions_sql`);
    each row's window comes from its timestamp, parsed and cut in pandas once per
    distinct timestamp (:func:`ltr.scale.labels.timestamp_windows`) and joined back."""

    def __init__(self, engine: Any, path: str, log: SearchLog, split: dict[str, Any],
                 folds: int, fold: int, seed: int) -> None:
        from ltr.scale.labels import check_impressions_sql, held_out_sql, timestamp_windows

        self.engine, self.log, self.source = engine, log, str(path)
        self.engine_name = engine.name
        check_impressions_sql(engine, str(path), log.products, log.customers)
        stamps = timestamp_windows(engine, split, self.source)
        engine.register_frame("ltr_timestamps", stamps)
        cols = ", ".join(f"i.{c}" for c in ROW_COLUMNS if c != "timestamp")
        engine.execute(
            "CREATE OR REPLACE TEMPORARY VIEW ltr_log AS SELECT "
            f"{cols}, t.timestamp AS timestamp, t.window AS _window FROM impressions i "
            "JOIN ltr_timestamps t ON i._ts = t.ts")
        judged = None if log.judgements is None else \
            set(log.judgements["query"].astype(str))
        self.held_out = held_out_sql(engine, judged, folds, fold, seed)
        self._register_set("ltr_held_out", self.held_out)
        self._register_set("ltr_valid_queries", set())
        self.row_columns = set(ROW_COLUMNS)
        self._views: dict[Selection, str] = {}
        self._sets: dict[frozenset[str], str] = {}

    def _register_set(self, name: str, queries: set[str]) -> None:
        # an empty frame has no column type to infer (Spark): one empty string stands
        # for "none" (queries are never blank: the contract checks refuse those)
        self.engine.register_frame(name, pd.DataFrame({"query": sorted(queries) or [""]}))

    def set_validation_queries(self, queries: set[str]) -> None:
        self._register_set("ltr_valid_queries", set(queries))
        self._views.clear()

    def view(self, sel: Selection) -> str:
        """A view of the selection's rows (:data:`ROW_COLUMNS`)."""
        if sel in self._views:
            return self._views[sel]
        name = f"ltr_sel_{len(self._views)}_{id(self) % 10**6}"
        windows = ", ".join(f"'{w}'" for w in sel.windows)
        where = [f"_window IN ({windows})"]
        if sel.queries in ("trained", "model"):
            where.append("query NOT IN (SELECT query FROM ltr_held_out)")
        if sel.queries == "model":
            where.append("query NOT IN (SELECT query FROM ltr_valid_queries)")
        if sel.queries == "held_out":
            where.append("query IN (SELECT query FROM ltr_held_out)")
        if sel.among is not None:
            if sel.among not in self._sets:
                self._sets[sel.among] = f"ltr_among_{len(self._sets)}"
                self._register_set(self._sets[sel.among], set(sel.among))
            where.append(f"query IN (SELECT query FROM {self._sets[sel.among]})")
        self.engine.execute(
            f"CREATE OR REPLACE TEMPORARY VIEW {name} AS SELECT {', '.join(ROW_COLUMNS)} "
            f"FROM ltr_log WHERE {' AND '.join(where)}")
        self._views[sel] = name
        return name

    def max_list_size(self, sel: Selection) -> int:
        out = self.engine.query(f"SELECT MAX(n) AS n FROM (SELECT COUNT(*) AS n FROM "
                                f"{self.view(sel)} GROUP BY session_id) s")["n"].iloc[0]
        return 0 if pd.isna(out) else int(out)

    def empty_rows(self) -> pd.DataFrame:
        return self.engine.query(f"SELECT {', '.join(ROW_COLUMNS)} FROM ltr_log LIMIT 0")

    def count(self, sel: Selection) -> int:
        return int(self.engine.query(f"SELECT COUNT(*) AS n FROM {self.view(sel)}")["n"]
                   .iloc[0])

    def queries(self, sel: Selection, clicked: bool = False) -> set[str]:
        where = " WHERE clicked > 0" if clicked else ""
        out = self.engine.query(f"SELECT DISTINCT query FROM {self.view(sel)}{where}")
        return set(out["query"].astype(str))

    def products(self, sel: Selection) -> np.ndarray:
        out = self.engine.query(f"SELECT DISTINCT product_id FROM {self.view(sel)}")
        return out["product_id"].to_numpy()

    def label_input(self, sel: Selection) -> Any:
        from ltr.scale.labels import aggregate_sql

        if self.count(sel) == 0:
            return pd.DataFrame(columns=ROW_COLUMNS)
        return aggregate_sql(self.engine, self.source, self.view(sel))

    def fingerprint(self, sel: Selection) -> str:
        from ltr.scale.labels import fingerprint_sql

        return fingerprint_sql(self.engine, view=self.view(sel))

    def sessions(self, sel: Selection) -> pd.DataFrame:
        return self.engine.query(
            f"SELECT session_id, MIN(timestamp) AS timestamp, MIN(customer_id) AS "
            f"customer_id, MIN(query) AS query FROM {self.view(sel)} GROUP BY session_id "
            "ORDER BY session_id")

    def list_rows(self, sel: Selection, rank: pd.Series, lists_per_chunk: int
                  ) -> Iterator[tuple[int, pd.DataFrame]]:
        name = f"ltr_ranked_{id(rank) % 10**6}"
        self.engine.register_frame(f"{name}_keys", pd.DataFrame(
            {"session_id": rank.index.to_numpy(), "_rank": rank.to_numpy(np.int64)}))
        self.engine.materialize(
            name, f"SELECT s.*, k._rank AS _rank FROM {self.view(sel)} s JOIN {name}_keys k "
            "ON s.session_id = k.session_id ORDER BY _rank, position")
        n_ranks = int(rank.max()) + 1 if len(rank) else 0
        for first in range(0, n_ranks, lists_per_chunk):
            rows = self.engine.query(
                f"SELECT * FROM {name} WHERE _rank >= {first} AND "
                f"_rank < {first + lists_per_chunk} ORDER BY _rank, position")
            if len(rows):
                yield first, rows.drop(columns="_rank")
        self.engine.release(name)

    def close(self) -> None:
        self.engine.close()


def open_log_view(data_dir: str, engine: str, split: dict[str, Any] | None, folds: int,
                  fold: int, seed: int, memory_limit: str | None = None,
                  spark: dict[str, Any] | None = None) -> LogView:
    """The log folder ``data_dir`` as a :class:`LogView` on ``engine`` (``pandas``,
    ``duckdb`` or ``spark``; on the SQL engines a folder on object storage too, see
    :mod:`ltr.scale.tables`), windows cut by ``split`` and query folds."""
    from ltr.data.loaders import load_log
    from ltr.features.split import full_split, training_window

    if engine == "pandas":
        log = load_log(data_dir)
        imp = log.impressions.assign(query=log.impressions["query"].astype(str))
        judged = None if log.judgements is None else set(log.judgements["query"].astype(str))
        windows, _, held_out = training_window(imp, judged, split, folds, fold, seed,
                                               log.sources.get("impressions", "impressions"))
        return PandasLog(log, windows, held_out)
    from ltr.scale import open_engine
    from ltr.scale.tables import log_tables

    eng = open_engine(engine, memory_limit, spark, prefix="data.")
    try:
        log, impressions = log_tables(eng, data_dir)
        return SqlLog(eng, impressions, log, full_split(split), folds, fold, seed)
    except BaseException:
        eng.close()
        raise
