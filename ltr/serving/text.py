"""Query and product embeddings at request time.

* Queries the package knows (every query of the training data) and catalog products
  have precomputed embeddings: the exact vectors the model was trained and evaluated
  with.
* Any other query or product record is encoded on the fly by the packaged encoder and
  kept in a bounded LRU cache (``cache_size`` texts per kind).

Thread safety: the fast tokenizer is not safe to call from several threads at once
(its padding/truncation state is shared), so tokenising holds a lock; the forward pass
is a pure function of the frozen weights and runs outside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ltr.text.batching import pad, tokenize


class EmbeddingCache:
    """A thread-safe LRU map text -> vector."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get(text)
            if vec is not None:
                self._items.move_to_end(text)
            return vec

    def put(self, text: str, vec: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[text] = vec
            self._items.move_to_end(text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class PackagedText:
    """Embeddings for a package: known tables first, then the cache, then the encoder."""

    def __init__(self, encoder, known_queries: Sequence[str], query_embeddings: np.ndarray,
                 cache_size: int = 10_000, onnx=None) -> None:
        self.encoder = encoder
        self.onnx = onnx  # OnnxEncoder: the same computation, faster (onnx_encoder.py)
        self.query_index = {q: i for i, q in enumerate(known_queries)}
        self.query_embeddings = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        self.query_cache = EmbeddingCache(cache_size)
        self.product_cache = EmbeddingCache(cache_size)
        self._tokenizer_lock = threading.Lock()
        self.encoded = 0  # texts encoded on the fly since loading

    @property
    def dim(self) -> int:
        return int(self.query_embeddings.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, d]`` float32 for texts, one forward pass (eval mode, no autograd)."""
        enc = self.encoder
        with self._tokenizer_lock:
            ids = tokenize(enc.tokenizer, list(texts), enc.max_length)
        input_ids, mask = pad(ids, enc.pad_id)
        if self.onnx is not None:
            out = self.onnx(input_ids.numpy(), mask.numpy())
        else:
            with torch.inference_mode():
                out = enc.forward(input_ids, mask).float().numpy()
        self.encoded += len(texts)
        return out

    def _lookup(self, texts: Sequence[str], cache: EmbeddingCache,
                table: dict[str, int] | None, matrix: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            row = table.get(text) if table is not None else None
            if row is not None:
                out[i] = matrix[row]
                continue
            vec = cache.get(text)
            if vec is not None:
                out[i] = vec
            else:
                todo.setdefault(text, []).append(i)
        if todo:
            if self.encoder is None:
                raise RuntimeError("this package has no text encoder")
            fresh = self.encode(list(todo))
            for vec, (text, rows) in zip(fresh, todo.items(), strict=True):
                cache.put(text, vec)
                out[rows] = vec
        return out

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, d]`` query embeddings."""
        return self._lookup(texts, self.query_cache, self.query_index, self.query_embeddings)

    def products(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, d]`` embeddings of product texts not in the catalog table."""
        return self._lookup(texts, self.product_cache, None, None)
