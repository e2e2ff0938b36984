r"""Pooling token states into one vector per text.

With token states :math:`h_{t} \in \mathbb{R}^d` and attention mask
:math:`m_t \in \{0, 1\}` for positions :math:`t = 1..T`:

* mean pooling (masked): :math:`e = \sum_t m_t h_t \,/\, \max(\sum_t m_t, 1)`;
  padded positions contribute nothing, whatever their states hold;
* CLS pooling: :math:`e = h_1`, the state of the first (``[CLS]``) token.

With ``normalize=True`` the result is divided by its L2 norm,
:math:`e / \max(\lVert e \rVert_2, \epsilon)`, as sentence-transformers does for
all-MiniLM-L6-v2.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ltr.errors import ConfigError

EPS = 1e-12


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens: ``[B, T, d]``, ``[B, T]`` -> ``[B, d]``."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def cls_pool(hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """State of the first token: ``[B, T, d]`` -> ``[B, d]`` (``mask`` is unused)."""
    return hidden[:, 0]


def pool(
    hidden: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "mean",
    normalize: bool = False,
    key: str = "text.pooling",
) -> torch.Tensor:
    """Pool ``[B, T, d]`` token states with ``mode`` (``mean`` or ``cls``) to ``[B, d]``.

    Raises:
        ConfigError: unknown ``mode``, naming ``key``.
    """
    if mode == "mean":
        out = mean_pool(hidden, mask)
    elif mode == "cls":
        out = cls_pool(hidden, mask)
    else:
        raise ConfigError(key, f"{mode!r} is not one of ['mean', 'cls']")
    if normalize:
        out = F.normalize(out, p=2.0, dim=-1, eps=EPS)
    return out
