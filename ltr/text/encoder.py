"""The text encoder: a BERT-family model, its tokenizer, pooling and an embedding cache.

Typical use, for relevance labels or frozen-text features::

    enc = TextEncoder.from_config(TextConfig(cache_dir="runs/cache/text"))
    q = enc.encode_texts(log["query"])        # EncodedTexts(embeddings, inverse, texts)
    q.embeddings                              # [n_unique, d] float32, one row per unique text
    q.inverse                                 # [n_rows] int64: row i is q.embeddings[q.inverse[i]]

``encode_texts`` de-duplicates first, so a log of a million rows over 60,000 distinct
texts costs about as much as encoding the 60,000 texts; the vectors go to a persistent
:class:`~ltr.text.cache.EmbeddingStore` keyed by the text and by a fingerprint of the
weights, so later runs (and later calls) encode only texts never seen before.

For training, :meth:`TextEncoder.forward` is the full differentiable pass with the top
``trainable_layers`` layers unfrozen; :class:`~ltr.text.finetune.CachedBottomEncoder`
does the same without recomputing the frozen layers.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.progress import enabled as progress_enabled
from ltr.text.batching import length_sorted_batches, tokenize
from ltr.text.cache import EmbeddingStore
from ltr.text.config import POOLINGS, TextConfig
from ltr.text.hashing import text_keys, unique_texts
from ltr.text.layers import transformer_parts
from ltr.text.loading import load_backbone, tokenizer_fingerprint, weights_fingerprint
from ltr.text.pooling import pool


class EncodedTexts(NamedTuple):
    """Embeddings of the unique texts of a sequence, and the row -> unique index.

    Attributes:
        embeddings: ``[n_unique, d]`` float32, in order of first appearance.
        inverse: ``[n_rows]`` int64; row ``i`` of the input is ``embeddings[inverse[i]]``.
        texts: the ``n_unique`` unique texts.
    """

    embeddings: np.ndarray
    inverse: np.ndarray
    texts: list[str]

    def rows(self) -> np.ndarray:
        """Row-aligned ``[n_rows, d]`` copy (memory: ``n_rows * d * 4`` bytes)."""
        return self.embeddings[self.inverse]


@dataclass
class EncodeStats:
    """What the last :meth:`TextEncoder.encode_texts` call did."""

    rows: int = 0
    unique: int = 0
    cache_hits: int = 0
    encoded: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0  # of ``seconds``, time spent in the model (tokenising included)


class TextEncoder(nn.Module):
    """A BERT-family encoder with pooling, a trainable top and a de-duplicating cache.

    Args:
        model: a transformers model returning ``last_hidden_state``.
        tokenizer: its fast tokenizer.
        name: how the model was named (config value, directory); kept in cache metadata.
        pooling: ``mean`` (masked mean over tokens) or ``cls``.
        normalize: L2-normalise pooled vectors.
        max_length: maximum tokens per text, special tokens included.
        trainable_layers: top transformer layers left trainable; 0 freezes everything,
            -1 trains everything including the embeddings.
        batch_size: texts per forward pass in :meth:`encode_unique`.
        cache_dir: folder of the persistent embedding cache; ``None``: in memory only.
        progress: show a tqdm bar while encoding (once an encode has run
            ``progress_delay`` = 1 s, so short ones stay quiet).
        device: torch device for encoding.
        key_prefix: config section named in errors (``text`` -> ``text.pooling``...).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name: str = "custom",
        pooling: str = "mean",
        normalize: bool = False,
        max_length: int = 128,
        trainable_layers: int = 0,
        batch_size: int = 128,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        device: str | torch.device = "cpu",
        key_prefix: str = "text",
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = str(name)
        self.key_prefix = key_prefix
        if pooling not in POOLINGS:
            raise ConfigError(
                f"{key_prefix}.pooling", f"{pooling!r} is not one of {list(POOLINGS)}"
            )
        self.pooling = pooling
        self.normalize = bool(normalize)
        limit = int(getattr(model.config, "max_position_embeddings", max_length))
        if not 2 <= max_length <= limit:
            raise ConfigError(
                f"{key_prefix}.max_length",
                f"must be in [2, {limit}] for this model, got {max_length}",
            )
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.progress = bool(progress)
        self.progress_delay = 1.0  # seconds before the bar appears: only long encodes show one
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._tokenizer_fp = tokenizer_fingerprint(tokenizer)
        self._fp_memo: tuple[tuple[Any, ...], str] | None = None
        self._stores: dict[str, EmbeddingStore] = {}
        self.last_stats = EncodeStats()
        self.trainable_layers = 0
        self.set_trainable_layers(trainable_layers)
        self.to(device)
        self.train(False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: TextConfig | dict[str, Any] | None = None) -> TextEncoder:
        """Load the model named by ``config.model_name`` and apply the other keys."""
        cfg = config if isinstance(config, TextConfig) else TextConfig.from_mapping(config)
        model, tokenizer, _ = load_backbone(cfg.model_name, key=f"{cfg.prefix}.model_name")
        return cls(
            model,
            tokenizer,
            name=cfg.model_name,
            pooling=cfg.pooling,
            normalize=cfg.normalize,
            max_length=cfg.max_length,
            trainable_layers=cfg.trainable_layers,
            batch_size=cfg.batch_size,
            cache_dir=cfg.cache_dir,
            progress=cfg.progress,
            device=cfg.device,
            key_prefix=cfg.prefix,
        )

    @classmethod
    def from_pretrained(cls, model_name: str = "all-MiniLM-L6-v2", **kwargs: Any) -> TextEncoder:
        """Load ``model_name`` (hub name, local directory or the offline default) with keyword settings."""
        model, tokenizer, _ = load_backbone(
            model_name, key=f"{kwargs.get('key_prefix', 'text')}.model_name"
        )
        return cls(model, tokenizer, name=model_name, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Width of the pooled embedding (the model's hidden size)."""
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Number of transformer layers."""
        return int(self.model.config.num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ trainable top
    def set_trainable_layers(self, k: int) -> None:
        """Freeze everything but the top ``k`` layers (0: all frozen; -1: nothing frozen).

        Raises:
            ConfigError: ``k`` is out of range, or the model cannot be split into layers.
        """
        key = f"{self.key_prefix}.trainable_layers"
        if isinstance(k, bool) or not isinstance(k, int) or k < -1:
            raise ConfigError(key, f"expected an integer >= -1, got {k!r}")
        if k > self.num_layers:
            raise ConfigError(key, f"the model has {self.num_layers} layers; got {k}")
        self.model.requires_grad_(k == -1)
        if k > 0:
            _, layers = transformer_parts(self.model, key)
            for layer in layers[self.num_layers - k :]:
                layer.requires_grad_(True)
        self.trainable_layers = k
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        """Modules whose weights never change: embeddings and the bottom layers (or the whole model)."""
        if self.trainable_layers == -1:
            return []
        if self.trainable_layers == 0:
            return [self.model]
        embeddings, layers = transformer_parts(self.model, f"{self.key_prefix}.trainable_layers")
        return [embeddings, *layers[: self.num_layers - self.trainable_layers]]

    def train(self, mode: bool = True) -> TextEncoder:
        """Like :meth:`nn.Module.train`, but frozen modules always stay in eval mode (no dropout),
        so the frozen bottom computes the same thing in training as when it is cached."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    # ------------------------------------------------------------------ forward
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded ``input_ids`` and ``attention_mask`` ``[B, T]`` on the encoder's device."""
        enc = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {
            "input_ids": enc["input_ids"].to(self.device),
            "attention_mask": enc["attention_mask"].to(self.device),
        }

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Full forward pass and pooling: ``[B, T]`` token ids -> ``[B, d]`` (differentiable)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(
            hidden, attention_mask, self.pooling, self.normalize, key=f"{self.key_prefix}.pooling"
        )

    def encode_unique(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Encode every text (no de-duplication, no cache): ``[n, d]`` float32, input order.

        Runs in eval mode without autograd, batching texts of similar token length.
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        ids = tokenize(self.tokenizer, texts, self.max_length)
        was_training = self.training
        self.train(False)
        try:
            with torch.inference_mode():
                for rows, input_ids, mask in length_sorted_batches(
                    ids,
                    batch_size or self.batch_size,
                    self.pad_id,
                    progress=(self.progress if progress is None else progress) and
                    progress_enabled(),
                    desc=f"encoding {len(texts):,} texts",
                    delay=self.progress_delay,
                ):
                    emb = self.forward(input_ids.to(self.device), mask.to(self.device))
                    out[rows] = emb.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    # ------------------------------------------------------------------ cached encoding
    def fingerprint(self) -> str:
        """Hash of the weights, config and tokenizer; recomputed only when a weight changed."""
        tensors = list(self.model.state_dict().values())
        state = tuple((t.data_ptr(), t._version) for t in tensors)
        if self._fp_memo is None or self._fp_memo[0] != state:
            fp = weights_fingerprint([self.model], self.model.config)
            self._fp_memo = (
                state,
                hashlib.blake2b(f"{fp}:{self._tokenizer_fp}".encode(), digest_size=16).hexdigest(),
            )
        return self._fp_memo[1]

    def store(self) -> EmbeddingStore:
        """The embedding store for the current weights and settings (pooled vectors)."""
        namespace = {
            "fingerprint": self.fingerprint(),
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "layer": "pooled",
        }
        store = EmbeddingStore(None, namespace, self.dim)  # cheap: only to compute the id
        if store.namespace_id not in self._stores:
            self._stores[store.namespace_id] = EmbeddingStore(
                self.cache_dir, namespace, self.dim, info={"model": self.name}
            )
        return self._stores[store.namespace_id]

    def encode_texts(
        self,
        texts: Sequence[str] | np.ndarray | pd.Series,
        *,
        use_cache: bool = True,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> EncodedTexts:
        """Encode a column of texts with repeats: each unique text at most once, ever.

        Unique texts already in the cache (this process, or earlier runs when
        ``cache_dir`` is set) are read back; only the others go through the model, and are
        then added to the cache and flushed to disk.

        Returns:
            :class:`EncodedTexts` ``(embeddings [n_unique, d], inverse [n_rows], texts)``.

        Raises:
            DataValidationError: a text is missing or not a string.
        """
        t0 = time.perf_counter()
        uniques, inverse = unique_texts(texts)
        if not use_cache:
            t1 = time.perf_counter()
            emb = self.encode_unique(uniques, batch_size=batch_size, progress=progress)
            t2 = time.perf_counter()
            self.last_stats = EncodeStats(
                len(inverse), len(uniques), 0, len(uniques), t2 - t0, t2 - t1
            )
            return EncodedTexts(emb, inverse, uniques)
        store = self.store()
        keys = text_keys(uniques)
        positions = store.lookup(keys)
        missing = np.flatnonzero(positions < 0)
        model_seconds = 0.0
        if missing.size:
            t1 = time.perf_counter()
            emb = self.encode_unique(
                [uniques[i] for i in missing], batch_size=batch_size, progress=progress
            )
            model_seconds = time.perf_counter() - t1
            positions[missing] = store.add(keys[missing], emb)
            store.flush()
        embeddings = store.get_fixed(positions)
        self.last_stats = EncodeStats(
            rows=len(inverse),
            unique=len(uniques),
            cache_hits=len(uniques) - int(missing.size),
            encoded=int(missing.size),
            seconds=time.perf_counter() - t0,
            model_seconds=model_seconds,
        )
        return EncodedTexts(embeddings, inverse, uniques)
