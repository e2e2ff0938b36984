"""Query and product embeddings at request time.

* Queries the package knows (every query of the training data) and catalog products
  have precomputed embeddings: the exact vectors the model was trained and evaluated
  with.
* Any other query or product record is encoded on the fly by the packaged encoder and
  kept in a bounded LRU cache (``cache_size`` texts per kind).

A model that fine-tuned its text encoder needs two embeddings of a text: the frozen one
(the zero-shot cosine, the neighbour features) and the tuned one (the model's own text
features). Such a package holds both tables for known texts, and encodes an unseen text
once through an encoder *pair* that shares the frozen bottom layers (ONNX, or two PyTorch
passes without ONNX Runtime); tables and caches then hold ``[frozen | tuned]`` rows.

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
                 cache_size: int = 10_000, onnx=None, tuned=None,
                 tuned_query_embeddings: np.ndarray | None = None) -> None:
        self.encoder = encoder
        self.tuned = tuned  # the fine-tuned TextEncoder, or None
        self.onnx = onnx  # OnnxEncoder (a pair's when tuned): the same computation, faster
        self.query_index = {q: i for i, q in enumerate(known_queries)}
        if tuned is not None:
            query_embeddings = np.concatenate([query_embeddings, tuned_query_embeddings],
                                              axis=1)
        self.query_embeddings = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        self.width = int(self.query_embeddings.shape[1])  # d, or 2d with a tuned encoder
        self.query_cache = EmbeddingCache(cache_size)
        self.product_cache = EmbeddingCache(cache_size)
        self._tokenizer_lock = threading.Lock()
        self.encoded = 0  # texts encoded on the fly since loading

    @property
    def dim(self) -> int:
        """Width of one embedding (frozen or tuned)."""
        return self.width // 2 if self.tuned is not None else self.width

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, width]`` float32 for texts, one forward pass (eval mode, no autograd):
        the frozen embedding, followed by the tuned one for a tuned package."""
        enc = self.encoder
        with self._tokenizer_lock:
            ids = tokenize(enc.tokenizer, list(texts), enc.max_length)
        input_ids, mask = pad(ids, enc.pad_id)
        if self.onnx is not None:
            out = self.onnx(input_ids.numpy(), mask.numpy())
            out = np.concatenate(out, axis=1) if isinstance(out, tuple) else out
        else:
            with torch.inference_mode():
                out = enc.forward(input_ids, mask).float().numpy()
                if self.tuned is not None:
                    out = np.concatenate(
                        [out, self.tuned.forward(input_ids, mask).float().numpy()], axis=1)
        self.encoded += len(texts)
        return out

    def _lookup(self, texts: Sequence[str], cache: EmbeddingCache,
                table: dict[str, int] | None, matrix: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(texts), self.width), dtype=np.float32)
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

    def query_rows(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, width]``: frozen (and tuned) query embeddings."""
        return self._lookup(texts, self.query_cache, self.query_index, self.query_embeddings)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, d]`` frozen query embeddings."""
        return self.query_rows(texts)[:, : self.dim]

    def product_rows(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, width]``: frozen (and tuned) embeddings of product texts not in the
        catalog table."""
        return self._lookup(texts, self.product_cache, None, None)

    def products(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, d]`` frozen embeddings of product texts not in the catalog table."""
        return self.product_rows(texts)[:, : self.dim]
