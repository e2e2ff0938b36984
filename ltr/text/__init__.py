"""Text: a BERT-family encoder, its embedding cache and query-product interaction features.

Public API (import from ``ltr.text``):

* :class:`TextConfig` - the validated ``text`` config section.
* :class:`TextEncoder` - model + tokenizer + pooling; ``encode_texts`` de-duplicates and
  caches; ``forward`` is the differentiable pass with the top ``trainable_layers`` unfrozen.
* :class:`EncodedTexts` - ``(embeddings [n_unique, d], inverse [n_rows], texts)``.
* :class:`CachedBottomEncoder` - fine-tunes the top layers over cached bottom states.
* :class:`TextTowers`, :func:`product_text` - query/product towers and product text.
* :class:`InteractionFeatures`, :func:`interaction_features`, :func:`interaction_width`,
  :func:`rowwise_cosine` - query-product features.
* :class:`EmbeddingStore` - the persistent text -> vector store.
* :func:`load_backbone`, :func:`resolve_model_source` - model loading.

Submodules import torch and transformers only when used.
"""

from __future__ import annotations

from ltr._lazy import lazy_exports

_EXPORTS = {
    "TextConfig": "ltr.text.config",
    "TextEncoder": "ltr.text.encoder",
    "EncodedTexts": "ltr.text.encoder",
    "EncodeStats": "ltr.text.encoder",
    "CachedBottomEncoder": "ltr.text.finetune",
    "TextTowers": "ltr.text.towers",
    "product_text": "ltr.text.towers",
    "InteractionFeatures": "ltr.text.interactions",
    "interaction_features": "ltr.text.interactions",
    "interaction_width": "ltr.text.interactions",
    "rowwise_cosine": "ltr.text.interactions",
    "cosine": "ltr.text.interactions",
    "EmbeddingStore": "ltr.text.cache",
    "load_backbone": "ltr.text.loading",
    "resolve_model_source": "ltr.text.loading",
    "mean_pool": "ltr.text.pooling",
    "cls_pool": "ltr.text.pooling",
    "pool": "ltr.text.pooling",
    "unique_texts": "ltr.text.hashing",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
