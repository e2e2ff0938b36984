r"""Label transfer from similar known queries: what the log says about a product for the
queries most like this one.

A query never seen in the log has no (query, product) history, but shops see many
variants of the same need ("grey sofa", "gray sofas", "modern grey couch"). For a row
(query :math:`q`, product :math:`p`), take the :math:`k` known queries :math:`q_j \ne q`
nearest to :math:`q` by the cosine :math:`s_j = \cos(e_q, e_{q_j})` of their text
embeddings (only :math:`s_j > 0`), and the label score :math:`y_{q_j p} \in [0, 1]` of
each that has a label for :math:`p` (:math:`\delta_j = 1`, else 0):

.. math::
    \mathrm{nn\_label} = \frac{\sum_j s_j \delta_j y_{q_j p}}{\sum_j s_j \delta_j}, \qquad
    \mathrm{nn\_coverage} = \frac{\sum_j s_j \delta_j}{\sum_j s_j}, \qquad
    \mathrm{nn\_max\_sim} = \max_j s_j \delta_j

``nn_label`` and ``nn_max_sim`` are missing (NaN) when no neighbour labelled :math:`p`;
``nn_coverage`` is then 0 (missing only without any neighbour). The query itself is never
its own neighbour, in training or at inference, so a known query's rows see exactly what
a new query's rows would, and a training row never sees its own label.

The same :meth:`QueryNeighbours.columns` serves training rows (one call per table) and the
requests of a ranking service (one call per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ltr.errors import ConfigError, DataValidationError

NEIGHBOUR_COLUMNS = ["nn_label", "nn_coverage", "nn_max_sim"]


def _key(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _unit(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


# a saved neighbour table: the files of its folder (a model package's or a fitted
# pipeline's ``neighbours/``)
FILES = {"queries": "queries.parquet", "embeddings": "query_embeddings.safetensors",
         "labels": "labels.parquet", "info": "neighbours.json"}


class QueryNeighbours:
    """Known queries' embeddings and their (query, product) label scores.

    Args:
        queries: the known queries (texts), one per row of ``embeddings``.
        embeddings: ``[n_queries, d]`` text embeddings of ``queries``.
        labels: table with ``query``, ``product_id`` and ``value_column`` (in [0, 1]).
        k: neighbours per query.
        value_column: the label column transferred (default the label score).
    """

    def __init__(self, queries: Sequence[str], embeddings: np.ndarray, labels: pd.DataFrame,
                 k: int = 10, value_column: str = "score") -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError("data.neighbours.k", f"must be a positive integer, got {k!r}")
        for col in ("query", "product_id", value_column):
            if col not in labels.columns:
                raise DataValidationError("neighbour labels", "column missing", column=col)
        self.queries = [str(q) for q in queries]
        if len(self.queries) != len(embeddings):
            raise DataValidationError("neighbour queries", f"{len(self.queries)} queries for "
                                      f"{len(embeddings)} embeddings")
        self.query_index = {q: i for i, q in enumerate(self.queries)}
        self.embeddings = _unit(embeddings)
        self.k = k
        self.value_column = value_column
        labels = labels.assign(query=labels["query"].astype(str),
                               _key=[_key(v) for v in labels["product_id"].to_numpy(object)])
        if labels.duplicated(["query", "_key"]).any():  # one value per pair: their mean
            labels = labels.groupby(["query", "_key"], sort=False, as_index=False).agg(
                product_id=("product_id", "first"), **{value_column: (value_column, "mean")})
        rows = pd.Index(self.queries).get_indexer(labels["query"])
        keep = rows >= 0
        keys = [_key(v) for v in labels["product_id"].to_numpy(dtype=object)[keep]]
        self.product_keys = list(dict.fromkeys(keys))
        self.product_index = {p: i for i, p in enumerate(self.product_keys)}
        cols = np.fromiter((self.product_index[p] for p in keys), dtype=np.int64,
                           count=len(keys))
        values = labels[value_column].to_numpy(dtype=np.float64)[keep]
        if not np.isfinite(values).all():
            raise DataValidationError("neighbour labels", "values must be finite",
                                      column=value_column)
        # stored as value + 1 so that a label of 0 is an explicit, present entry
        self.matrix = sparse.csr_matrix((values + 1.0, (rows[keep], cols)),
                                        shape=(len(self.queries), len(self.product_keys)))
        self.matrix.sum_duplicates()
        self.matrix.sort_indices()  # each row's product columns ascending: binary search

    @classmethod
    def from_labels(cls, labels: pd.DataFrame, embed, k: int = 10,
                    value_column: str = "score") -> QueryNeighbours:
        """Build from a label table; ``embed(texts) -> [n, d]`` encodes its queries."""
        queries = sorted(labels["query"].astype(str).unique().tolist())
        emb = embed(queries) if queries else np.zeros((0, 1), np.float32)
        return cls(queries, emb, labels, k, value_column)

    def __len__(self) -> int:
        return len(self.queries)

    def neighbours(self, query_texts: Sequence[str], query_embeddings: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``(index [R, k], similarity [R, k])`` of each query's nearest known queries
        (itself excluded); similarity 0 pads where fewer than ``k`` have ``s > 0``."""
        r = len(query_texts)
        n = len(self.queries)
        k = min(self.k, n)
        idx = np.zeros((r, self.k), dtype=np.int64)
        sim = np.zeros((r, self.k), dtype=np.float32)
        if r == 0 or k == 0:
            return idx, sim
        q = _unit(query_embeddings)
        for start in range(0, r, 1024):
            s = q[start:start + 1024] @ self.embeddings.T  # [b, Q]
            for i, text in enumerate(query_texts[start:start + 1024]):
                own = self.query_index.get(str(text))
                if own is not None:  # never its own neighbour: ranks last, weight 0
                    s[i, own] = -np.inf
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n else \
                np.broadcast_to(np.arange(n), (len(s), n))
            top_s = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-top_s, axis=1, kind="stable")
            idx[start:start + len(s), :k] = np.take_along_axis(top, order, axis=1)
            sim[start:start + len(s), :k] = np.maximum(np.take_along_axis(top_s, order, axis=1),
                                                       0.0)
        return idx, sim

    def columns(self, query_texts: Sequence[str], query_embeddings: np.ndarray,
                product_ids: Sequence[Any], group: np.ndarray) -> dict[str, np.ndarray]:
        """The neighbour columns of rows ``product_ids`` whose query is
        ``query_texts[group[n]]`` (embeddings ``[R, d]`` aligned with ``query_texts``)."""
        n = len(product_ids)
        out = {c: np.full(n, np.nan) for c in NEIGHBOUR_COLUMNS}
        if n == 0:
            return out
        group = np.asarray(group, dtype=np.int64)
        idx, sim = self.neighbours(query_texts, query_embeddings)
        get = self.product_index.get
        cols = np.fromiter((get(_key(p), -1) for p in product_ids), dtype=np.int64, count=n)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(query_texts) + 1))
        for r in range(len(query_texts)):
            rows = order[bounds[r]:bounds[r + 1]]
            if not len(rows):
                continue
            s = sim[r]
            total = float(s.sum())
            if total <= 0:
                continue
            c = cols[rows]
            known = c >= 0
            out["nn_coverage"][rows] = 0.0
            if not known.any() or not len(self.product_keys):
                continue
            block = self._block(idx[r], c[known])  # [k, m], 0 = no label
            present = block > 0
            w = s[:, None] * present
            wsum = w.sum(axis=0)
            has = wsum > 0
            target = rows[known]
            label = np.full(len(target), np.nan)
            label[has] = (w * (block - 1.0)).sum(axis=0)[has] / wsum[has]
            out["nn_label"][target] = label
            out["nn_coverage"][target] = wsum / total
            out["nn_max_sim"][target] = np.where(has, w.max(axis=0), np.nan)
        return out

    def _block(self, query_rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``matrix[query_rows][:, cols]`` as a dense ``[k, m]`` array, by binary search in
        each row's sorted columns (scipy's fancy indexing costs ~0.5 ms per call)."""
        m = self.matrix
        out = np.zeros((len(query_rows), len(cols)))
        for i, row in enumerate(query_rows):
            lo, hi = m.indptr[row], m.indptr[row + 1]
            if lo == hi:
                continue
            row_cols = m.indices[lo:hi]
            pos = np.minimum(np.searchsorted(row_cols, cols), hi - lo - 1)
            hit = row_cols[pos] == cols
            out[i, hit] = m.data[lo:hi][pos[hit]]
        return out

    def save(self, folder: str | Path) -> Path:
        """Write the table to ``folder`` (:data:`FILES`: Parquet, safetensors, JSON)."""
        from safetensors.numpy import save_file

        from ltr.io import write_json, write_table

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_table(pd.DataFrame({"query": self.queries}), folder / FILES["queries"])
        save_file({"embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float32)},
                  str(folder / FILES["embeddings"]))
        write_table(self.label_table(), folder / FILES["labels"])
        write_json({"k": self.k, "value_column": self.value_column}, folder / FILES["info"])
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> QueryNeighbours:
        """Read a folder written by :meth:`save`."""
        from safetensors.numpy import load_file

        from ltr.io import read_json, read_table

        folder = Path(folder)
        info = read_json(folder / FILES["info"])
        path = folder / FILES["embeddings"]
        try:
            embeddings = load_file(str(path))["embeddings"]
        except Exception as exc:  # noqa: BLE001 - any safetensors format error
            raise DataValidationError(str(path), f"cannot be read as safetensors "
                                      f"embeddings: {exc}") from exc
        queries = read_table(folder / FILES["queries"])["query"].astype(str).tolist()
        return cls(queries, embeddings, read_table(folder / FILES["labels"]), int(info["k"]),
                   str(info["value_column"]))

    def label_table(self) -> pd.DataFrame:
        """``(query, product_id, value)`` rows, product ids as text keys (for packages)."""
        coo = self.matrix.tocoo()
        return pd.DataFrame({"query": np.asarray(self.queries, dtype=object)[coo.row],
                             "product_id": np.asarray(self.product_keys, dtype=object)[coo.col],
                             self.value_column: coo.data - 1.0})
