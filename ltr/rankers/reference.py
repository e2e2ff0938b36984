"""References that need no training, behind the same interface: BM25 over the product
text (:mod:`ltr.rankers.bm25`), the zero-shot encoder cosine between query and product
embeddings, and the query-term coverage (``lexical``). BM25's ``fit`` builds its index
over the training data's product texts and ``save`` writes the corpus statistics
(``bm25.json``); the cosine and the coverage keep nothing. ``hybrid`` (cosine + w x
coverage) learns one number from clicks: the coverage weight the labels calibrated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_json, write_json
from ltr.rankers.base import Capabilities, NotFittedError, Ranker, pair_cosine
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
    capabilities = Capabilities(text="texts", trained=False)
    RANGES = {"k1": Range(ge=0), "b": Range(ge=0, le=1)}  # ltr.checks

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        """
        Args:
            k1: term-frequency saturation (>= 0).
            b: length normalisation, 0..1.
        """
        check_ranges({"k1": k1, "b": b}, self.RANGES, "model.params")
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
    capabilities = Capabilities(text="embeddings", trained=False)
    DEFAULTS: dict[str, Any] = {}  # no parameters

    def _fit(self, data: Any) -> None:
        if data.query_embeddings is None:
            raise ConfigError("data.text", "the cosine reference needs text embeddings")

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        return pair_cosine(lists, data)

    def _save_state(self, folder: Path) -> None:
        """Nothing learned: the encoder is part of the data configuration."""

    def _load_state(self, folder: Path) -> None:
        """Nothing to read besides the manifest."""


def _coverage(lists: Any, data: Any) -> np.ndarray:
    """The query-term coverage of each slot (:mod:`ltr.text.lexical`), read back from the
    preprocessed ``lex_coverage`` feature."""
    from ltr.features.text_match import COVERAGE_COLUMN

    pre = data.preprocessor
    names = pre.numeric_names
    if COVERAGE_COLUMN not in names:
        raise ConfigError("data.features.numeric", f"the '{COVERAGE_COLUMN}' feature is "
                          "needed by the lexical references; add it to the feature spec")
    x = lists.numeric[..., names.index(COVERAGE_COLUMN)].astype(np.float64)
    return x * pre.stds[COVERAGE_COLUMN] + pre.means[COVERAGE_COLUMN]


class LexicalRanker(Ranker):
    """Zero-shot lexical reference: the share of the query's words found in the product's
    title, category and text fields (query-term coverage)."""

    kind = "lexical"
    capabilities = Capabilities(trained=False)
    DEFAULTS: dict[str, Any] = {}  # no parameters

    def _fit(self, data: Any) -> None:
        from ltr.features.text_match import COVERAGE_COLUMN

        if COVERAGE_COLUMN not in data.preprocessor.numeric_names:
            raise ConfigError("data.features.numeric", f"the lexical reference reads the "
                              f"'{COVERAGE_COLUMN}' feature; add it to the feature spec")

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        return _coverage(lists, data)

    def _save_state(self, folder: Path) -> None:
        """Nothing learned."""

    def _load_state(self, folder: Path) -> None:
        """Nothing to read besides the manifest."""


class HybridRanker(Ranker):
    r"""The library's text similarity as a ranker: :math:`\cos + w \cdot \mathrm{coverage}`,
    with ``w`` the coverage weight the labels calibrated on the log's clicks
    (``data.lexical_weight``) unless ``lexical_weight`` is given. Learned from clicks
    through that one weight; the cold-query reference of the MMoE's ranking score."""

    kind = "hybrid"
    capabilities = Capabilities(text="embeddings", trained=False)
    RANGES = {"lexical_weight": Range(ge=0, optional=True)}  # ltr.checks

    def __init__(self, lexical_weight: float | None = None) -> None:
        """
        Args:
            lexical_weight: weight of the query-term coverage added to the cosine; None:
                the data's calibrated weight (``data.lexical_weight``).
        """
        check_ranges({"lexical_weight": lexical_weight}, self.RANGES, "model.params")
        super().__init__(lexical_weight=lexical_weight)
        self.weight_ = 0.0

    def _fit(self, data: Any) -> None:
        if data.query_embeddings is None:
            raise ConfigError("data.text", "the hybrid reference needs text embeddings")
        w = self.params["lexical_weight"]
        self.weight_ = float(getattr(data, "lexical_weight", 0.0) if w is None else w)

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        return pair_cosine(lists, data) + self.weight_ * _coverage(lists, data)

    def _save_state(self, folder: Path) -> None:
        write_json({"lexical_weight": self.weight_}, folder / "hybrid.json")

    def _load_state(self, folder: Path) -> None:
        self.weight_ = float(read_json(folder / "hybrid.json")["lexical_weight"])
