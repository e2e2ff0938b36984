"""Running a BERT-style encoder one piece at a time: embeddings, then any slice of layers.

Fine-tuning only the top ``k`` layers needs the model split in two: a frozen bottom
(embeddings + layers ``0 .. L-k-1``) whose output can be cached, and a trainable top
(layers ``L-k .. L-1``). BERT, MiniLM, TinyBERT, RoBERTa and ELECTRA all expose
``model.embeddings`` and ``model.encoder.layer``; other architectures can still be used
frozen (``trainable_layers: 0``) through their ordinary forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ltr.errors import ConfigError


def transformer_parts(
    model: nn.Module, key: str = "text.trainable_layers"
) -> tuple[nn.Module, nn.ModuleList]:
    """``(embeddings, layers)`` of a BERT-style model.

    Raises:
        ConfigError: the model does not have ``embeddings`` and ``encoder.layer`` (naming ``key``,
            since only splitting it into frozen and trainable layers needs them).
    """
    embeddings = getattr(model, "embeddings", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if embeddings is None or not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            key,
            f"{type(model).__name__} is not a BERT-style encoder (model.embeddings and "
            "model.encoder.layer); fine-tuning top layers needs one. Use 0 (frozen) instead.",
        )
    return embeddings, layers


def attention_bias(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> Any:
    """The attention mask in the form the model's layers take, as its own forward builds it.

    Uses transformers' ``create_bidirectional_mask`` (transformers 5) when present, else the
    classic additive ``[B, 1, 1, T]`` mask of ``get_extended_attention_mask``.
    """
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers 4.x
        return model.get_extended_attention_mask(mask, mask.shape)  # type: ignore[operator]
    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)


def run_layers(
    layers: nn.ModuleList | list[nn.Module], hidden: torch.Tensor, bias: Any
) -> torch.Tensor:
    """Apply ``layers`` in order to ``hidden`` ``[B, T, d]`` with the attention ``bias``."""
    for layer in layers:
        out = layer(hidden, bias)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def bottom_forward(
    model: nn.Module, n_bottom: int, input_ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Token states after the embeddings and the first ``n_bottom`` layers: ``[B, T, d]``."""
    embeddings, layers = transformer_parts(model)
    hidden = embeddings(input_ids=input_ids)
    if n_bottom == 0:
        return hidden
    return run_layers(layers[:n_bottom], hidden, attention_bias(model, hidden, mask))
