r"""Fine-tuning the top layers without recomputing the frozen bottom.

With ``L`` layers of which the top ``k`` train, the bottom (embeddings and layers
``0 .. L-k-1``) never changes, so its token states
:math:`H^{(L-k)}_x \in \mathbb{R}^{T_x \times d}` are a fixed function of the text
:math:`x`. :class:`CachedBottomEncoder` computes them once per unique text (in eval mode,
without autograd), keeps them in an :class:`~ltr.text.cache.EmbeddingStore` (one row per
token; on disk too when ``cache_dir`` is set), and in training runs only

.. math::  e_x = \mathrm{pool}\big(f_{L-1} \circ \dots \circ f_{L-k}(H^{(L-k)}_x),\ m_x\big)

on a batch of cached states, padded to the batch's longest text with mask :math:`m_x`.
The output equals the encoder's full forward pass (same weights, same masks; dropout off
in the frozen bottom in both), and each step costs ``k / L`` of the layers.

Typical use in a model::

    bank = CachedBottomEncoder(encoder)          # encoder.trainable_layers = k > 0
    ids = bank.add_texts(log["query"])           # row-aligned int64 ids, bottom computed once
    emb = bank(torch.as_tensor(ids[batch_rows])) # [B, d], gradients reach the top k layers
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.text.batching import length_sorted_batches, tokenize
from ltr.text.cache import EmbeddingStore
from ltr.text.encoder import TextEncoder
from ltr.text.hashing import text_keys, unique_texts
from ltr.text.layers import attention_bias, bottom_forward, run_layers, transformer_parts
from ltr.text.loading import weights_fingerprint
from ltr.text.pooling import pool


class CachedBottomEncoder(nn.Module):
    """The top ``k`` layers of ``encoder`` run over cached bottom states.

    The top layers are the encoder's own modules (not copies): training this module
    trains ``encoder``, and ``encoder`` keeps producing matching full-pass embeddings.

    Args:
        encoder: a :class:`TextEncoder` whose ``trainable_layers`` is ``k >= 0`` (``-1``,
            trainable embeddings, leaves nothing to cache).
        cache_dir: persist bottom states there (keyed by the bottom's weights and the
            tokenizer); defaults to the encoder's ``cache_dir``. Memory: about
            ``tokens * d * 4`` bytes, e.g. 60,000 texts x 20 tokens x 384 -> 1.8 GB.
        batch_size: texts per forward pass while computing bottom states.
        progress: tqdm bar while computing bottom states.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> None:
        super().__init__()
        k = encoder.trainable_layers
        if k < 0:
            raise ConfigError(
                f"{encoder.key_prefix}.trainable_layers",
                "-1 trains the embeddings too, so there is no frozen bottom to cache; use 0..num_layers",
            )
        self.encoder = encoder
        self.n_bottom = encoder.num_layers - k
        _, layers = transformer_parts(encoder.model, f"{encoder.key_prefix}.trainable_layers")
        # a plain list, not a registered submodule: the layers already belong to ``encoder``,
        # so parameters and state_dict keys are not listed twice
        self.top: list[nn.Module] = list(layers[self.n_bottom :])
        self.batch_size = batch_size or encoder.batch_size
        self.progress = encoder.progress if progress is None else progress
        fp = weights_fingerprint(encoder.frozen_modules(), encoder.model.config)
        namespace = {
            "fingerprint": hashlib.blake2b(
                f"{fp}:{encoder._tokenizer_fp}".encode(), digest_size=16
            ).hexdigest(),
            "max_length": encoder.max_length,
            "layer": self.n_bottom,
        }
        root = encoder.cache_dir if cache_dir is None else str(cache_dir)
        self.store = EmbeddingStore(root, namespace, encoder.dim, info={"model": encoder.name})
        self._frozen_state = self._bottom_state()

    @property
    def num_texts(self) -> int:
        """Texts whose bottom states are cached."""
        return len(self.store)

    def _bottom_state(self) -> tuple[tuple[int, int], ...]:
        return tuple(
            (t.data_ptr(), t._version)
            for m in self.encoder.frozen_modules()
            for t in m.state_dict().values()
        )

    def add_texts(self, texts: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Cache the bottom states of texts not seen yet; return row-aligned ids ``[n_rows]``.

        The ids index this module's bank and are what :meth:`forward` takes. Repeated and
        already-cached texts cost nothing.
        """
        if self._bottom_state() != self._frozen_state:
            raise RuntimeError("the encoder's frozen layers changed since their states were cached")
        uniques, inverse = unique_texts(texts)
        keys = text_keys(uniques)
        positions = self.store.lookup(keys)
        missing = np.flatnonzero(positions < 0)
        if missing.size:
            values, lengths = self._compute_bottom([uniques[i] for i in missing])
            positions[missing] = self.store.add(keys[missing], values, lengths)
            self.store.flush()
        return positions[inverse]

    @torch.inference_mode()
    def _compute_bottom(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.encoder
        ids = tokenize(enc.tokenizer, texts, enc.max_length)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        per_text: list[np.ndarray | None] = [None] * len(texts)
        for rows, input_ids, mask in length_sorted_batches(
            ids,
            self.batch_size,
            enc.pad_id,
            self.progress,
            desc=f"caching bottom of {len(texts):,} texts",
            delay=enc.progress_delay,
        ):
            hidden = bottom_forward(
                enc.model, self.n_bottom, input_ids.to(enc.device), mask.to(enc.device)
            )
            hidden = hidden.float().cpu().numpy()
            for j, r in enumerate(rows):
                per_text[r] = hidden[j, : lengths[r]]
        return np.concatenate(per_text), lengths  # type: ignore[arg-type]

    def gather(self, ids: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached bottom states of ``ids`` padded to the longest: ``([B, T, d], mask [B, T])``."""
        values, starts, lengths = self.store.arrays()
        ids_np = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        ids_np = ids_np.astype(np.int64, copy=False).reshape(-1)
        if ids_np.size and (ids_np.min() < 0 or ids_np.max() >= len(starts)):
            raise IndexError(f"text ids must be in [0, {len(starts)}); call add_texts first")
        lens = lengths[ids_np]
        width = int(lens.max()) if lens.size else 1
        offsets = np.arange(width, dtype=np.int64)
        mask = offsets[None, :] < lens[:, None]
        rows = np.where(mask, starts[ids_np][:, None] + offsets[None, :], 0)
        hidden = torch.from_numpy(values[rows] * mask[..., None])
        device = self.encoder.device
        return hidden.to(device), torch.from_numpy(mask.astype(np.int64)).to(device)

    def forward(self, ids: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Pooled embeddings ``[B, d]`` of the texts with bank ids ``ids`` (differentiable in the top layers)."""
        hidden, mask = self.gather(ids)
        if self.top:
            hidden = run_layers(self.top, hidden, attention_bias(self.encoder.model, hidden, mask))
        enc = self.encoder
        return pool(hidden, mask, enc.pooling, enc.normalize, key=f"{enc.key_prefix}.pooling")

    def train(self, mode: bool = True) -> CachedBottomEncoder:
        """Train mode for the top layers; the frozen bottom stays in eval mode (see :meth:`TextEncoder.train`)."""
        super().train(mode)
        self.encoder.train(mode)
        return self
