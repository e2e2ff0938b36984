"""References that need no training, behind the same interface: BM25 over the product
text (:mod:`ltr.rankers.bm25`) and the zero-shot encoder cosine between query and product
embeddings. ``fit`` only records the inputs they need; ``save`` writes the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ltr.errors import ConfigError
from ltr.rankers.base import Ranker, pair_cosine
from ltr.rankers.bm25 import BM25


class BM25Ranker(Ranker):
    """BM25 of the query against each product's text (title plus the text fields the
    data was prepared with). Parameters: ``k1`` (1.2), ``b`` (0.75)."""

    kind = "bm25"

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError("model.params", f"BM25 needs k1 >= 0 and 0 <= b <= 1, got "
                              f"k1={k1}, b={b}")
        super().__init__(k1=k1, b=b)
        self._index: BM25 | None = None
        self._index_of: int | None = None

    def _bm25(self, data: Any) -> BM25:
        if self._index is None or self._index_of != id(data):
            self._index = BM25(list(range(len(data.product_texts))), data.product_texts,
                               self.params["k1"], self.params["b"])
            self._index_of = id(data)
        return self._index

    def _fit(self, data: Any) -> None:
        self._bm25(data)

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        index = self._bm25(data)
        out = np.zeros(lists.mask.shape)
        for g in range(len(lists)):
            query = data.query_texts[int(lists.query_text[g])]
            out[g] = index.score(query, lists.product_text[g].tolist())
        return out

    def _save_state(self, folder: Path) -> None:
        """Nothing learned: the index is rebuilt from the data's product texts."""

    def _load_state(self, folder: Path) -> None:
        """Nothing to read besides the manifest."""


class CosineRanker(Ranker):
    """Zero-shot cosine between the query and product embeddings of the data's encoder."""

    kind = "cosine"

    def _fit(self, data: Any) -> None:
        if data.query_embeddings is None:
            raise ConfigError("data.text", "the cosine reference needs text embeddings")

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        return pair_cosine(lists, data)

    def _save_state(self, folder: Path) -> None:
        """Nothing learned: the encoder is part of the data configuration."""

    def _load_state(self, folder: Path) -> None:
        """Nothing to read besides the manifest."""
