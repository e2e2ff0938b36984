r"""BM25 (Robertson & Zaragoza) over product text: a reference that needs no training.

For query terms :math:`t` and a product text :math:`d` of length :math:`|d|` (tokens),
with :math:`N` products in the catalog, :math:`n_t` of them containing :math:`t`,
:math:`f_{t,d}` the term count and :math:`\overline{|d|}` the mean length:

.. math::
    \mathrm{BM25}(q, d) = \sum_{t \in q} \log\Big(1 + \frac{N - n_t + 0.5}{n_t + 0.5}\Big)
    \frac{f_{t,d}\,(k_1 + 1)}{f_{t,d} + k_1 (1 - b + b\,|d| / \overline{|d|})}

Tokens: lower-cased runs of letters and digits. Defaults :math:`k_1 = 1.2, b = 0.75`.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(str(text).lower())


class BM25:
    """BM25 index over a list of product texts, keyed by product id."""

    def __init__(self, product_ids: list[object], texts: list[str], k1: float = 1.2,
                 b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.index = {pid: i for i, pid in enumerate(product_ids)}
        self.docs = [Counter(tokenize(t)) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=float)
        self.avg_len = float(self.lengths.mean()) if len(self.docs) else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: float(np.log(1.0 + (n - c + 0.5) / (c + 0.5))) for t, c in df.items()}

    def score(self, query: str, product_ids: list[object] | np.ndarray) -> np.ndarray:
        """BM25 of ``query`` against each product (0 for unknown products)."""
        terms = tokenize(query)
        out = np.zeros(len(product_ids))
        for j, pid in enumerate(product_ids):
            i = self.index.get(pid)
            if i is None:
                continue
            doc, norm = self.docs[i], self.k1 * (1 - self.b + self.b * self.lengths[i] /
                                                 max(self.avg_len, 1e-9))
            for t in terms:
                f = doc.get(t, 0)
                if f:
                    out[j] += self.idf.get(t, 0.0) * f * (self.k1 + 1) / (f + norm)
        return out
