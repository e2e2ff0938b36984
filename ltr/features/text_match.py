"""Query-product lexical match columns of a row table (training rows or a request).

``lex_coverage``: the share of the query's content tokens found in the product's title,
category path and configured text fields (:func:`ltr.text.lexical.coverage`). Computed the
same way for training rows (a DataFrame) and a ranking service's request (a mapping of
column name -> array), from the row's ``query`` and product columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltr.errors import DataValidationError
from ltr.features.columns import ColumnTable, n_rows, text_column

COVERAGE_COLUMN = "lex_coverage"


def lexical_fields(product_fields: Sequence[str] = ()) -> list[str]:
    """The product columns lexical matching reads: title, category and ``product_fields``."""
    return list(dict.fromkeys(["title", "category", *product_fields]))


def row_texts(table: ColumnTable, fields: Sequence[str]) -> np.ndarray:
    """The text lexical matching reads for each row: ``fields`` joined by spaces, a
    missing value skipped (fields absent from the table too)."""
    import pandas as pd

    n = n_rows(table)
    parts, key = [], np.zeros(n, dtype=np.int64)
    for col in fields:
        if col in table:
            values, missing = text_column(table, col)
            codes, uniques = pd.factorize(np.where(missing, "", values.astype(object)))
            parts.append((codes, np.asarray(uniques, dtype=object)))
            key = pd.factorize(key * (len(uniques) + 1) + codes)[0]  # < n each: no overflow
    if not parts:
        return np.full(n, "", dtype=object)
    # join the fields once per distinct combination (a product's, in a row table), not
    # once per row
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    text = parts[0][1][parts[0][0][first]].astype(object)
    for codes, uniques in parts[1:]:
        text = text + " " + uniques[codes[first]]
    return text[inverse]


def coverage_column(table: ColumnTable, fields: Sequence[str], source: str = "rows"
                    ) -> np.ndarray:
    """``lex_coverage`` of every row of ``table`` (columns ``query`` and ``fields``; a
    missing field value is skipped)."""
    from ltr.text.lexical import coverage

    for col in ("query", "title"):
        if col not in table:
            raise DataValidationError(source, "lexical matching needs it", column=col)
    queries, _ = text_column(table, "query")
    return coverage(queries, row_texts(table, fields))
