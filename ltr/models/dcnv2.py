r"""DCN-V2: deep & cross network, version 2 (Wang et al., WWW 2021), as a row scorer.

A row's input :math:`x_0 \in \mathbb{R}^d` is its tabular encoding
(:class:`~ltr.models.blocks.TabularEncoder`: numeric features and categorical
embeddings, concatenated). A **cross layer** builds explicit feature crosses of bounded
degree:

.. math::
    x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l, \qquad W_l \in \mathbb{R}^{d \times d},

so after :math:`L` layers :math:`x_L` holds polynomial crosses of :math:`x_0` up to degree
:math:`L + 1`. With ``rank`` :math:`r` the weight is **low-rank**,
:math:`W_l = U_l V_l^\top` with :math:`U_l, V_l \in \mathbb{R}^{d \times r}`: per layer
:math:`2dr + d` parameters instead of :math:`d^2 + d`. With :math:`W_l = 0, b_l = 0` a cross
layer is the identity (the residual term), so a deep cross network starts close to its
input when the weights are small.

The **deep** part is an MLP :math:`D` (ReLU). Two structures:

* ``stacked``: :math:`h = D(x_L)` (cross, then deep; just :math:`x_L` when ``deep`` is
  empty);
* ``parallel``: :math:`h = [\,x_L \,;\, D(x_0)\,]` (side by side, concatenated).

The score is linear, :math:`s = w^\top h + c`. (The paper's mixture of low-rank experts
is not implemented.)

Example::

    >>> import torch
    >>> from ltr.models.dcnv2 import DCNV2
    >>> _ = torch.manual_seed(0)
    >>> model = DCNV2(n_numeric=3, cardinalities=[5, 7], n_cross=2, rank=4, deep=[16])
    >>> numeric, categorical = torch.randn(8, 3), torch.randint(0, 5, (8, 2))
    >>> model(numeric, categorical).shape
    torch.Size([8])

Configuration errors raise :class:`~ltr.errors.ConfigError` naming the key under
``config_key`` (default ``model.params.arch``), e.g. ``model.params.arch.structure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.models.blocks import TabularEncoder, mlp

STRUCTURES = ("stacked", "parallel")
ARCH_KEY = "model.params.arch"


# ---------------------------------------------------------------------- value checks
def check_int(value: Any, key: str, minimum: int = 1, optional: bool = False) -> None:
    """``value`` is an int ``>= minimum`` (or None when ``optional``); else ConfigError."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}"
                          f"{' or null' if optional else ''}, got {value!r}")


def check_float(value: Any, key: str, low: float, high: float) -> None:
    """A number with ``low <= value < high``; else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < high:
        raise ConfigError(key, f"must be a number in [{low}, {high}), got {value!r}")


def check_choice(value: Any, key: str, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(key, f"must be one of {list(choices)}, got {value!r}")


def check_widths(value: Any, key: str) -> None:
    """A list of positive integer layer widths (may be empty)."""
    if not isinstance(value, list | tuple) or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in value):
        raise ConfigError(key, f"must be a list of positive integer widths, got {value!r}")


def check_bool(value: Any, key: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")


def check_dcnv2_arch(n_cross: int, rank: int | None, deep: Sequence[int], structure: str,
                     dropout: float, emb_dim: int | None, max_emb_dim: int,
                     config_key: str = ARCH_KEY) -> None:
    """Validate :class:`DCNV2`'s architecture arguments (ConfigError naming the key)."""
    check_int(n_cross, f"{config_key}.n_cross")
    check_int(rank, f"{config_key}.rank", optional=True)
    check_widths(deep, f"{config_key}.deep")
    check_choice(structure, f"{config_key}.structure", STRUCTURES)
    if structure == "parallel" and not deep:
        raise ConfigError(f"{config_key}.deep", "the parallel structure needs at least one "
                          "deep layer (use structure: stacked for a cross-only network)")
    check_float(dropout, f"{config_key}.dropout", 0.0, 1.0)
    check_int(emb_dim, f"{config_key}.emb_dim", optional=True)
    check_int(max_emb_dim, f"{config_key}.max_emb_dim")


# ---------------------------------------------------------------------- layers
class CrossLayer(nn.Module):
    r"""One cross layer, :math:`x_{l+1} = x_0 \odot (W x_l + b) + x_l`.

    Full rank: ``W`` is ``linear`` (``d x d`` plus bias). Low rank ``r``:
    :math:`W = U V^\top`, computed as ``up(down(x))`` with ``down`` :math:`V^\top`
    (``r x d``, no bias) and ``up`` :math:`U` (``d x r``, carrying the bias ``b``).
    """

    def __init__(self, dim: int, rank: int | None = None) -> None:
        super().__init__()
        self.dim, self.rank = dim, rank
        if rank is None:
            self.linear: nn.Module = nn.Linear(dim, dim)
        else:
            self.linear = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class CrossNetwork(nn.Module):
    """``n_layers`` cross layers: ``[..., d] -> [..., d]``."""

    def __init__(self, dim: int, n_layers: int, rank: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossLayer(dim, rank) for _ in range(n_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = layer(x0, x)
        return x


class DCNV2(nn.Module):
    """DCN-V2 scorer: ``forward(numeric [N, F], categorical [N, C]) -> [N]`` scores.

    Args:
        n_numeric: numeric input width ``F``.
        cardinalities: embedding table size per categorical column (codes ``0`` missing,
            ``1`` unknown, vocabulary from ``2``; all are learned rows).
        n_cross: number of cross layers ``L`` (>= 1).
        rank: low-rank ``r`` of each cross weight, or None for full rank.
        deep: hidden widths of the deep MLP (may be empty for ``stacked``).
        structure: ``"stacked"`` or ``"parallel"`` (see the module docstring).
        dropout: dropout after each deep hidden layer.
        emb_dim: fixed categorical embedding width, or None for the
            :class:`~ltr.models.blocks.TabularEncoder` rule of thumb capped at
            ``max_emb_dim``.
        config_key: prefix of the config keys named in errors.
    """

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], n_cross: int = 2,
                 rank: int | None = None, deep: Sequence[int] = (32, 16),
                 structure: str = "stacked", dropout: float = 0.0, emb_dim: int | None = None,
                 max_emb_dim: int = 16, config_key: str = ARCH_KEY) -> None:
        super().__init__()
        check_dcnv2_arch(n_cross, rank, deep, structure, dropout, emb_dim, max_emb_dim,
                         config_key)
        self.structure = structure
        self.encoder = TabularEncoder(n_numeric, list(cardinalities), emb_dim, max_emb_dim)
        d = self.encoder.out_dim
        self.cross = CrossNetwork(d, n_cross, rank)
        deep = list(deep)
        self.deep = mlp(d, deep, dropout)  # empty Sequential (identity) when deep == []
        width = deep[-1] if deep else d
        self.out = nn.Linear(width + d if structure == "parallel" else width, 1)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        x0 = self.encoder(numeric, categorical)
        if self.structure == "stacked":
            h = self.deep(self.cross(x0))
        else:
            h = torch.cat([self.cross(x0), self.deep(x0)], dim=-1)
        return self.out(h).squeeze(-1)
