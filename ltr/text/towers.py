"""Query and product towers, and the product text they read.

The product text is the title followed by the configured catalog fields, for example
``"oak dining table | Ashley | Furniture / Tables"``; missing fields are skipped.

With ``shared_towers: true`` one encoder (one set of weights) embeds both queries and
products; with ``false`` each side has its own copy, starting from the same weights, so
fine-tuning can specialise them. Both towers share one embedding cache folder; entries
are keyed by each tower's weights, so identical towers share entries and diverged towers
never mix them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ltr.errors import ConfigError
from ltr.text.config import TextConfig
from ltr.text.encoder import EncodedTexts, TextEncoder


def product_text(
    products: pd.DataFrame,
    fields: Sequence[str] = (),
    *,
    title_column: str = "title",
    separator: str = " | ",
    key: str = "text.product_fields",
) -> pd.Series:
    """Title plus ``fields`` of each product, joined by ``separator``; missing values skipped.

    Raises:
        ConfigError: the title column or a field is not in ``products`` (naming ``key``).
    """
    for column in (title_column, *fields):
        if column not in products.columns:
            where = key if column in fields else "title column"
            raise ConfigError(
                where, f"products have no column {column!r}; columns: {list(products.columns)}"
            )
    parts = [
        products[c].astype("string").str.strip().replace("", pd.NA) for c in (title_column, *fields)
    ]
    out = parts[0]
    for part in parts[1:]:
        out = (out + separator + part).fillna(out).fillna(part)  # skip whichever side is missing
    return pd.Series(
        out.fillna("").to_numpy(dtype=object), index=products.index, name="product_text"
    )


class TextTowers(nn.Module):
    """A query encoder and a product encoder (the same object when towers are shared).

    Args:
        query: the query tower.
        product: the product tower; ``None`` shares ``query``.
        product_fields: catalog columns appended to the title in :meth:`product_texts`.
        separator: joins title and fields.
    """

    def __init__(
        self,
        query: TextEncoder,
        product: TextEncoder | None = None,
        product_fields: Sequence[str] = (),
        separator: str = " | ",
    ) -> None:
        super().__init__()
        self.query = query
        self.product = query if product is None else product
        self.product_fields = tuple(product_fields)
        self.separator = separator

    @property
    def shared(self) -> bool:
        return self.product is self.query

    @classmethod
    def from_config(cls, config: TextConfig | dict | None = None) -> TextTowers:
        """Load the encoder once; copy it for the product side when ``shared_towers`` is false."""
        cfg = config if isinstance(config, TextConfig) else TextConfig.from_mapping(config)
        query = TextEncoder.from_config(cfg)
        product = None if cfg.shared_towers else copy.deepcopy(query)
        return cls(query, product, cfg.product_fields, cfg.product_separator)

    def product_texts(self, products: pd.DataFrame, title_column: str = "title") -> pd.Series:
        """The text each product is encoded from (see :func:`product_text`)."""
        return product_text(
            products, self.product_fields, title_column=title_column, separator=self.separator
        )

    def encode_queries(
        self, queries: Sequence[str] | np.ndarray | pd.Series, **kwargs: Any
    ) -> EncodedTexts:
        """:meth:`TextEncoder.encode_texts` with the query tower."""
        return self.query.encode_texts(queries, **kwargs)

    def encode_products(
        self, texts: Sequence[str] | np.ndarray | pd.Series, **kwargs: Any
    ) -> EncodedTexts:
        """:meth:`TextEncoder.encode_texts` with the product tower (pass product texts)."""
        return self.product.encode_texts(texts, **kwargs)
