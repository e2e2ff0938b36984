r"""Query-product interaction features from their embeddings.

For a query embedding :math:`q` and a product embedding :math:`p` in :math:`\mathbb{R}^d`:

* ``cosine`` (width 1):
  :math:`\cos(q, p) = q^\top p \,/\, (\max(\lVert q\rVert_2, \epsilon)\,\max(\lVert p\rVert_2, \epsilon))`;
* ``product`` (width d): element-wise :math:`q \odot p`;
* ``abs_diff`` (width d): element-wise :math:`\lvert q - p \rvert`;
* ``concat`` (width 2d): :math:`[q; p]`.

Features are concatenated in the order the config lists them, so the output width is the
sum of the widths, e.g. ``[cosine, product, abs_diff, concat]`` gives ``1 + 4d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ltr.text.config import validate_interactions

EPS = 1e-8


def interaction_width(names: Sequence[str], dim: int, key: str = "text.interactions") -> int:
    """Output width of ``names`` for embeddings of width ``dim``.

    Raises:
        ConfigError: an unknown, repeated or empty list of names (naming ``key``).
    """
    validate_interactions(list(names), key=key)
    widths = {"cosine": 1, "product": dim, "abs_diff": dim, "concat": 2 * dim}
    return sum(widths[n] for n in names)


def cosine(q: torch.Tensor, p: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Cosine similarity over the last axis, ``[..., d]`` x ``[..., d]`` -> ``[...]``."""
    qn = q / q.norm(dim=-1, keepdim=True).clamp(min=eps)
    pn = p / p.norm(dim=-1, keepdim=True).clamp(min=eps)
    return (qn * pn).sum(dim=-1)


def interaction_features(
    q: torch.Tensor, p: torch.Tensor, names: Sequence[str], key: str = "text.interactions"
) -> torch.Tensor:
    """Concatenate the named features of ``q`` and ``p`` (``[..., d]`` each) -> ``[..., width]``."""
    validate_interactions(list(names), key=key)
    if q.shape != p.shape:
        raise ValueError(
            f"query and product embeddings differ in shape: {tuple(q.shape)} vs {tuple(p.shape)}"
        )
    parts = []
    for name in names:
        if name == "cosine":
            parts.append(cosine(q, p).unsqueeze(-1))
        elif name == "product":
            parts.append(q * p)
        elif name == "abs_diff":
            parts.append((q - p).abs())
        else:  # concat
            parts.extend([q, p])
    return torch.cat(parts, dim=-1)


class InteractionFeatures(nn.Module):
    """:func:`interaction_features` as a module with a known :attr:`output_dim`.

    Args:
        names: features from ``cosine``, ``product``, ``abs_diff``, ``concat``, in output order.
        dim: embedding width ``d``.
        key: config key named in errors.
    """

    def __init__(self, names: Sequence[str], dim: int, key: str = "text.interactions") -> None:
        super().__init__()
        self.names = tuple(names)
        self.dim = int(dim)
        self.key = key
        self.output_dim = interaction_width(self.names, self.dim, key)

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``[..., d]`` query and product embeddings -> ``[..., output_dim]``."""
        return interaction_features(q, p, self.names, self.key)

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, dim={self.dim}, output_dim={self.output_dim}"


def rowwise_cosine(
    query_embeddings: np.ndarray,
    query_index: np.ndarray,
    product_embeddings: np.ndarray,
    product_index: np.ndarray,
    chunk_size: int = 262_144,
) -> np.ndarray:
    """Cosine of each log row's query and product, from unique embeddings and row indices.

    Normalises the unique embeddings once, then takes row-wise dot products in chunks,
    so a million-row log never materialises two ``[n_rows, d]`` copies.

    Returns:
        float32 ``[n_rows]`` with ``out[i] = cos(Q[query_index[i]], P[product_index[i]])``.
    """
    query_index = np.asarray(query_index, dtype=np.int64)
    product_index = np.asarray(product_index, dtype=np.int64)
    if query_index.shape != product_index.shape:
        raise ValueError("query_index and product_index must have the same length")
    qn = _unit(np.asarray(query_embeddings, dtype=np.float32))
    pn = _unit(np.asarray(product_embeddings, dtype=np.float32))
    out = np.empty(len(query_index), dtype=np.float32)
    for start in range(0, len(out), chunk_size):
        sl = slice(start, start + chunk_size)
        out[sl] = np.einsum("ij,ij->i", qn[query_index[sl]], pn[product_index[sl]])
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), EPS)
