r"""BM25 (Robertson & Zaragoza) over product text: a reference that needs no training.

For query terms :math:`t` and a product text :math:`d` of length :math:`|d|` (tokens),
with :math:`N` products in the catalog, :math:`n_t` of them containing :math:`t`,
:math:`f_{t,d}` the term count and :math:`\overline{|d|}` the mean length:

.. math::
    \mathrm{BM25}(q, d) = \sum_{t \in q} \log\Big(1 + \frac{N - n_t + 0.5}{n_t + 0.5}\Big)
    \frac{f_{t,d}\,(k_1 + 1)}{f_{t,d} + k_1 (1 - b + b\,|d| / \overline{|d|})}

Tokens: lower-cased runs of letters and digits. Defaults :math:`k_1 = 1.2, b = 0.75`.

The corpus statistics (:math:`N`, :math:`\overline{|d|}` and the IDF of every corpus
term) are fixed when the index is built; :meth:`BM25.score_texts` scores any text with
them (its :math:`f_{t,d}` and :math:`|d|` come from the text itself; terms absent from the
corpus add 0), and :meth:`BM25.to_dict` / :meth:`BM25.from_dict` carry them without the
corpus.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(str(text).lower())


class BM25:
    """BM25 index over a list of product texts, keyed by product id."""

    def __init__(self, product_ids: list[object], texts: list[str], k1: float = 1.2,
                 b: float = 0.75) -> None:
        self.k1, self.b = float(k1), float(b)
        self.index = {pid: i for i, pid in enumerate(product_ids)}
        self.docs = [Counter(tokenize(t)) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=float)
        self.n_docs = len(self.docs)
        self.avg_len = float(self.lengths.mean()) if self.n_docs else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = self.n_docs
        self.idf = {t: float(np.log(1.0 + (n - c + 0.5) / (c + 0.5))) for t, c in df.items()}

    # ------------------------------------------------------------------ scoring
    def _doc_score(self, terms: list[str], doc: Mapping[str, int]) -> float:
        """BM25 of the tokenized query ``terms`` against one document's term counts,
        with the index's corpus statistics: the one copy of the formula."""
        length = float(sum(doc.values()))
        norm = self.k1 * (1 - self.b + self.b * length / max(self.avg_len, 1e-9))
        total = 0.0
        for t in terms:
            f = doc.get(t, 0)
            if f:
                total += self.idf.get(t, 0.0) * f * (self.k1 + 1) / (f + norm)
        return total

    def score(self, query: str, product_ids: list[object] | np.ndarray) -> np.ndarray:
        """BM25 of ``query`` against each indexed product (0 for unknown products)."""
        terms = tokenize(query)
        out = np.zeros(len(product_ids))
        for j, pid in enumerate(product_ids):
            i = self.index.get(pid)
            if i is not None:
                out[j] = self._doc_score(terms, self.docs[i])
        return out

    def score_texts(self, query: str, texts: Iterable[str]) -> np.ndarray:
        """BM25 of ``query`` against arbitrary ``texts`` (indexed or not), with the
        corpus statistics of the index."""
        terms = tokenize(query)
        return np.array([self._doc_score(terms, Counter(tokenize(t))) for t in texts],
                        dtype=float)

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe corpus statistics: ``k1``, ``b``, ``n_docs``, ``avg_len``, ``idf``."""
        return {"k1": float(self.k1), "b": float(self.b), "n_docs": int(self.n_docs),
                "avg_len": float(self.avg_len),
                "idf": {str(t): float(v) for t, v in sorted(self.idf.items())}}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> BM25:
        """An index from :meth:`to_dict`: scores texts (:meth:`score_texts`) exactly as
        the fitted one; it holds no documents, so :meth:`score` by id gives 0.

        Raises ``ValueError`` naming the bad field if ``state`` is malformed."""
        if not isinstance(state, Mapping):
            raise ValueError(f"BM25 state must be an object, got {type(state).__name__}")
        missing = [k for k in ("k1", "b", "n_docs", "avg_len", "idf") if k not in state]
        if missing:
            raise ValueError(f"BM25 state lacks {missing}")

        def number(key: str, value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not math.isfinite(value):
                raise ValueError(f"BM25 state field '{key}' must be a finite number, "
                                 f"got {value!r}")
            return float(value)

        idf = state["idf"]
        if not isinstance(idf, Mapping):
            raise ValueError(f"BM25 state field 'idf' must be an object, got "
                             f"{type(idf).__name__}")
        n_docs = state["n_docs"]
        if isinstance(n_docs, bool) or not isinstance(n_docs, int) or n_docs < 0:
            raise ValueError(f"BM25 state field 'n_docs' must be a count, got {n_docs!r}")
        self = cls.__new__(cls)
        self.k1, self.b = number("k1", state["k1"]), number("b", state["b"])
        self.n_docs = n_docs
        self.avg_len = number("avg_len", state["avg_len"])
        self.idf = {str(t): number(f"idf.{t}", v) for t, v in idf.items()}
        self.index, self.docs, self.lengths = {}, [], np.zeros(0)
        return self
