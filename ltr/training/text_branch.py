"""Query and product embeddings for a batch, from frozen tables or a fine-tuned top.

* frozen (``trainable_layers = 0``): the embeddings of every unique text were computed
  once (and cached on disk) by :class:`ltr.text.TextEncoder`; a batch looks them up
  (:class:`FrozenTextTables`). The zero-shot cosine the model is residual over always
  comes from these tables, tuned or not.
* fine-tuned (``trainable_layers = k > 0``): the bottom layers' token states are cached
  per unique text by :class:`ltr.text.CachedBottomEncoder`; each step runs only the top
  ``k`` layers, once per unique text of the batch. :class:`QueryTunedText` tunes a copy of
  the encoder for queries only, so the catalog's embeddings stay as they are (nothing to
  re-encode at export; a new product is encoded by the frozen encoder);
  :class:`FineTunedText` tunes one encoder shared by queries and products.

A tuned branch returns ``(q, p)`` with ``None`` for the side it leaves frozen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FrozenTextTables(nn.Module):
    """Lookup of precomputed embeddings (non-persistent buffers: they are data)."""

    def __init__(self, query_embeddings: np.ndarray, product_embeddings: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("queries", torch.as_tensor(query_embeddings, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("products", torch.as_tensor(product_embeddings,
                                                         dtype=torch.float32),
                             persistent=False)

    @property
    def dim(self) -> int:
        return int(self.queries.shape[1])

    def forward(self, query_text: torch.Tensor, product_text: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.queries[query_text], self.products[product_text]


class FineTunedText(nn.Module):
    """The top layers of an encoder over cached bottom states (one bank for queries and
    one for products, sharing the encoder's weights: shared towers)."""

    def __init__(self, encoder, query_texts: list[str], product_texts: list[str]) -> None:
        super().__init__()
        from ltr.text import CachedBottomEncoder

        self.queries = CachedBottomEncoder(encoder, progress=False)
        self.query_ids = torch.as_tensor(self.queries.add_texts(query_texts))
        self.products = CachedBottomEncoder(encoder, progress=False)
        self.product_ids = torch.as_tensor(self.products.add_texts(product_texts))
        self.dim = int(encoder.dim)

    @staticmethod
    def _encode(bank, ids: torch.Tensor) -> torch.Tensor:
        uniq, inverse = torch.unique(ids, return_inverse=True)
        return bank(uniq)[inverse]

    def forward(self, query_text: torch.Tensor, product_text: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._encode(self.queries, self.query_ids.to(query_text.device)[query_text])
        p = self._encode(self.products, self.product_ids.to(product_text.device)[product_text])
        return q, p

    def encode(self, texts: list[str]) -> np.ndarray:
        """Tuned embeddings of any texts (a full forward pass, no cache)."""
        enc = self.queries.encoder
        was = enc.training
        enc.eval()
        try:
            return enc.encode_unique(list(texts), progress=False)
        finally:
            enc.train(was)


class QueryTunedText(nn.Module):
    """The query tower: the top ``k`` layers of its own copy of the encoder over cached
    bottom states; products stay frozen (``p`` is ``None``)."""

    def __init__(self, encoder, query_texts: list[str]) -> None:
        super().__init__()
        from ltr.text import CachedBottomEncoder

        self.encoder = encoder
        self.queries = CachedBottomEncoder(encoder, progress=False)
        self.query_ids = torch.as_tensor(self.queries.add_texts(query_texts))
        self.dim = int(encoder.dim)

    def forward(self, query_text: torch.Tensor, product_text: torch.Tensor
                ) -> tuple[torch.Tensor, None]:
        ids = self.query_ids.to(query_text.device)[query_text]
        uniq, inverse = torch.unique(ids, return_inverse=True)
        return self.queries(uniq)[inverse], None

    def encode(self, texts: list[str]) -> np.ndarray:
        """Tuned embeddings of any query texts (a full forward pass, no cache)."""
        was = self.encoder.training
        self.encoder.eval()
        try:
            return self.encoder.encode_unique(list(texts), progress=False)
        finally:
            self.encoder.train(was)
