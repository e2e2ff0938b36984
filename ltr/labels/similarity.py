"""Query-product semantic similarity from the text encoder (:mod:`ltr.text`).

``cos(q, d) = <e_q, e_d> / (|e_q| |e_d|)`` with ``e_q`` the pooled embedding of the query
text and ``e_d`` that of the product text (title plus the configured fields). Unique
queries and unique products are encoded once (and cached on disk when the encoder has a
``cache_dir``), then the cosine is taken per pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError


def pair_similarity(encoder, products: pd.DataFrame, queries: np.ndarray,
                    product_ids: np.ndarray, fields: Sequence[str] = (),
                    separator: str = " | ") -> np.ndarray:
    """Cosine between each query and product text; ``encoder`` is a :class:`ltr.text.TextEncoder`."""
    from ltr.text import product_text, rowwise_cosine

    rows = pd.Index(products["product_id"]).get_indexer(product_ids)
    if (rows < 0).any():
        bad = np.asarray(product_ids)[rows < 0][:5].tolist()
        raise DataValidationError("products", f"product_id(s) {bad} have no catalog entry, so "
                                  "no text to compare with the query", column="product_id")
    texts = product_text(products, tuple(fields), separator=separator).to_numpy()
    used, used_inverse = np.unique(rows, return_inverse=True)
    q = encoder.encode_texts(np.asarray(queries, dtype=str))
    p = encoder.encode_texts(texts[used])
    return rowwise_cosine(q.embeddings, q.inverse, p.embeddings, p.inverse[used_inverse])


def lexical_text(products: pd.DataFrame, fields: Sequence[str] = ()) -> pd.Series:
    """The product text lexical matching reads: title, category path and ``fields``."""
    from ltr.text import product_text

    extra = [c for c in dict.fromkeys(["category", *fields]) if c in products.columns]
    return product_text(products, tuple(extra), separator=" ")


def pair_coverage(products: pd.DataFrame, queries: np.ndarray, product_ids: np.ndarray,
                  fields: Sequence[str] = ()) -> np.ndarray:
    """Query-term coverage of each pair (:func:`ltr.text.lexical.coverage`) over
    :func:`lexical_text`."""
    from ltr.text.lexical import coverage

    rows = pd.Index(products["product_id"]).get_indexer(product_ids)
    if (rows < 0).any():
        bad = np.asarray(product_ids)[rows < 0][:5].tolist()
        raise DataValidationError("products", f"product_id(s) {bad} have no catalog entry, so "
                                  "no text to match the query", column="product_id")
    texts = lexical_text(products, fields).to_numpy()
    return coverage(np.asarray(queries, dtype=object), texts[rows])
