"""References that need no training, behind the same interface: BM25 over the product
text (:mod:`ltr.rankers.bm25`) and the zero-shot encoder cosine between query and product
embeddings. BM25's ``fit`` builds its index over the training data's product texts and
``save`` writes the corpus statistics (``bm25.json``); the cosine keeps nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_json, write_json
from ltr.rankers.base import NotFittedError, Ranker, pair_cosine
from ltr.rankers.bm25 import BM25

BM25_STATE = "bm25.json"


class BM25Ranker(Ranker):
    """BM25 of the query against each product's text (title plus the text fields the
    data was prepared with). Parameters: ``k1`` (1.2), ``b`` (0.75).

    ``fit`` builds the index over ``data.product_texts`` once; scoring reads each slot's
    text from the scoring data (``data.product_texts[i]`` for ``i`` in
    ``lists.product_text``) but weighs it with the fitted corpus statistics (IDF, mean
    length, N), so a loaded ranker scores a request's products, seen or not, as in
    training."""

    kind = "bm25"

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError("model.params", f"BM25 needs k1 >= 0 and 0 <= b <= 1, got "
                              f"k1={k1}, b={b}")
        super().__init__(k1=k1, b=b)
        self.index_: BM25 | None = None

    def _fit(self, data: Any) -> None:
        texts = list(data.product_texts)
        self.index_ = BM25(list(range(len(texts))), texts, self.params["k1"],
                           self.params["b"])

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        if self.index_ is None:
            raise NotFittedError(f"ranker '{self.kind}' has no BM25 index")
        texts = data.product_texts
        out = np.zeros(lists.mask.shape)
        for g in range(len(lists)):
            query = data.query_texts[int(lists.query_text[g])]
            out[g] = self.index_.score_texts(query, [texts[int(i)] for i in
                                                     lists.product_text[g]])
        return out

    def _save_state(self, folder: Path) -> None:
        """``bm25.json``: the fitted corpus statistics (:meth:`BM25.to_dict`)."""
        if self.index_ is None:
            raise NotFittedError(f"ranker '{self.kind}' has no BM25 index to save")
        write_json(self.index_.to_dict(), folder / BM25_STATE)

    def _load_state(self, folder: Path) -> None:
        path = folder / BM25_STATE
        if not path.exists():
            raise DataValidationError(str(path), "is missing: the BM25 corpus statistics "
                                      "are needed to score")
        state = read_json(path)
        try:
            index = BM25.from_dict(state)
        except ValueError as exc:
            raise DataValidationError(str(path), str(exc)) from exc
        for key in ("k1", "b"):
            if getattr(index, key) != float(self.params[key]):
                raise DataValidationError(str(path), f"{key}={getattr(index, key)} differs "
                                          f"from the manifest's {self.params[key]}",
                                          column=key)
        self.index_ = index


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
