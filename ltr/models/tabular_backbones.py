r"""TabNet and FT-Transformer scorers built from pytorch-tabular's backbone modules.

pytorch-tabular (1.2) splits each of its models into an *embedding layer*, a *backbone*
and a *head*, all plain ``nn.Module``\ s, and wires them together in a
``LightningModule`` (``BaseModel``) trained through ``TabularModel`` with pointwise
losses. ltr needs only the modules: the scorers below build the backbone from the config
object it reads (the model's ``ModelConfig`` dataclass merged with an ``InferredConfig``,
exactly as ``BaseModel`` does), add what pytorch-tabular would add around it, and map
ltr's ``(numeric [N, F], categorical [N, C])`` rows to ``[N]`` scores, so that
:class:`~ltr.training.module.LtrModule` can train them as single-score backbones
(:data:`ltr.models.registry.SCORERS`) with ranking losses over query groups.
pytorch-tabular is imported only when a scorer is built.

**TabNet** (Arik & Pfister, AAAI 2021) — :class:`TabNetScorer`. pytorch-tabular's
``TabNetBackbone`` wraps pytorch-tabnet's ``TabNet``, which has its *own* categorical
embeddings (``EmbeddingGenerator``, one ``nn.Embedding(cardinality, width)`` per column)
and its own linear output mapping, so pytorch-tabular uses no embedding layer and no head
for it (both ``nn.Identity``); we do the same, with ``output_dim = 1`` so that TabNet's
final linear map is the scoring head. At each of ``n_steps`` decision steps an attentive
transformer picks a sparse feature mask

.. math::
    M_i = \mathrm{sparsemax}\big(P_{i-1} \odot h_i(a_{i-1})\big), \qquad
    P_i = \prod_{j \le i} (\gamma - M_j),

a feature transformer (GLU blocks, ``n_shared`` shared + ``n_independent`` step-specific
layers, ghost batch norm over ``virtual_batch_size`` rows) maps :math:`M_i \odot x` to
:math:`[d_i ; a_i]` (widths ``n_d``, ``n_a``), and the score is
:math:`s = w^\top \sum_i \mathrm{ReLU}(d_i) + c`. As in pytorch-tabular, TabNet's
mask-sparsity regulariser (the second output of ``TabNet.forward``) is not added to the
loss. Categorical codes reach TabNet as float columns (its input is one float matrix);
they are cast back to ``long`` for the lookup, exact for codes below :math:`2^{24}`.

**FT-Transformer** (Gorishniy et al., NeurIPS 2021) — :class:`FTTransformerScorer`.
pytorch-tabular builds its embedding layer (``Embedding2dLayer``) separately from
``FTTransformerBackbone``, via ``FTTransformerBackbone._build_embedding_layer``; we
call that same method, so every feature becomes a ``d``-dimensional token:

.. math::
    t_j = x_j\, e_j + b_j \ \text{(numeric } j\text{)}, \qquad
    t_j = E_j[c_j] + b_j \ \text{(categorical } j\text{)},

a learned ``[CLS]`` token is appended, ``num_attn_blocks`` transformer blocks mix the
tokens, and a linear head (``nn.Linear(d, 1)``, pytorch-tabular's default ``LinearHead``
with no hidden layers) scores the ``[CLS]`` output. pytorch-tabular always uses *shared*
embeddings for categorical columns (``share_embedding_strategy``: ``"fraction"`` reserves
the first ``shared_embedding_fraction * d`` dimensions for a per-column vector, ``"add"``
adds one) and their tables have ``padding_idx = 0``: ltr's code 0 (missing) therefore
embeds as the zero vector plus the column's shared part and bias, while code 1 (unknown)
and the vocabulary are learned rows. Table sizes are ltr's ``cardinalities``.

Embedding widths for TabNet follow ltr's rule (the one of
:class:`~ltr.models.blocks.TabularEncoder`), not pytorch-tabular's ``min(50, (c+1)//2)``.
Configuration errors raise :class:`~ltr.errors.ConfigError` naming the key under
``config_key`` (default ``model.params.arch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.models.dcnv2 import (
    ARCH_KEY,
    check_bool,
    check_choice,
    check_float,
    check_int,
)

MASK_TYPES = ("sparsemax", "entmax")
SHARE_STRATEGIES = ("fraction", "add")
GATED_ACTIVATIONS = ("GEGLU", "ReGLU", "SwiGLU")  # pytorch-tabular's gated feed-forwards
PLAIN_ACTIVATIONS = ("ReLU", "GELU", "SiLU", "ELU", "LeakyReLU", "SELU", "Mish", "Tanh")
TRANSFORMER_ACTIVATIONS = GATED_ACTIVATIONS + PLAIN_ACTIVATIONS


def embedding_widths(cardinalities: Sequence[int], emb_dim: int | None = None,
                     max_dim: int = 16) -> list[int]:
    """Embedding width per categorical column: ``emb_dim`` if given, else
    ``min(max_dim, max(2, round(1.6 * c ** 0.56)))`` (as in ``TabularEncoder``)."""
    return [emb_dim or min(max_dim, max(2, round(1.6 * c ** 0.56))) for c in cardinalities]


def _merged_config(model_config: Any, n_numeric: int, cardinalities: Sequence[int],
                   embedding_dims: list[tuple[int, int]] | None) -> Any:
    """pytorch-tabular's hparams: the model config merged with the inferred data config
    (what ``BaseModel.__init__`` does through ``safe_merge_config``)."""
    from omegaconf import OmegaConf
    from pytorch_tabular.config import InferredConfig

    inferred = InferredConfig(categorical_dim=len(cardinalities), continuous_dim=n_numeric,
                              output_dim=1, categorical_cardinality=list(cardinalities),
                              embedding_dims=embedding_dims)
    return OmegaConf.merge(OmegaConf.to_container(OmegaConf.structured(model_config)),
                           OmegaConf.to_container(OmegaConf.structured(inferred)))


# ---------------------------------------------------------------------- TabNet
def check_tabnet_arch(n_d: int, n_a: int, n_steps: int, gamma: float, n_independent: int,
                      n_shared: int, virtual_batch_size: int, mask_type: str,
                      emb_dim: int | None, max_emb_dim: int,
                      config_key: str = ARCH_KEY) -> None:
    """Validate :class:`TabNetScorer`'s architecture arguments."""
    for name, value in (("n_d", n_d), ("n_a", n_a), ("n_steps", n_steps),
                        ("n_independent", n_independent), ("n_shared", n_shared),
                        ("max_emb_dim", max_emb_dim)):
        check_int(value, f"{config_key}.{name}")
    check_int(virtual_batch_size, f"{config_key}.virtual_batch_size", minimum=2)
    check_float(gamma, f"{config_key}.gamma", 1.0, float("inf"))
    check_choice(mask_type, f"{config_key}.mask_type", MASK_TYPES)
    check_int(emb_dim, f"{config_key}.emb_dim", optional=True)


class TabNetScorer(nn.Module):
    """pytorch-tabular's ``TabNetBackbone`` as an ltr scorer (see the module docstring).

    ``forward(numeric [N, F], categorical [N, C]) -> [N]``. Arguments are TabNet's
    (``n_d``, ``n_a``, ``n_steps``, ``gamma``, ``n_independent``, ``n_shared``,
    ``virtual_batch_size``, ``mask_type``) plus the categorical embedding width
    (``emb_dim``, or ltr's rule capped at ``max_emb_dim``).
    """

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], n_d: int = 8,
                 n_a: int = 8, n_steps: int = 3, gamma: float = 1.3, n_independent: int = 1,
                 n_shared: int = 1, virtual_batch_size: int = 128,
                 mask_type: str = "sparsemax", emb_dim: int | None = None,
                 max_emb_dim: int = 16, config_key: str = ARCH_KEY) -> None:
        super().__init__()
        check_tabnet_arch(n_d, n_a, n_steps, gamma, n_independent, n_shared,
                          virtual_batch_size, mask_type, emb_dim, max_emb_dim, config_key)
        from pytorch_tabular.models.tabnet.config import TabNetModelConfig
        from pytorch_tabular.models.tabnet.tabnet_model import TabNetBackbone

        widths = embedding_widths(cardinalities, emb_dim, max_emb_dim)
        config = TabNetModelConfig(task="backbone", head=None, n_d=n_d, n_a=n_a,
                                   n_steps=n_steps, gamma=float(gamma),
                                   n_independent=n_independent, n_shared=n_shared,
                                   virtual_batch_size=virtual_batch_size, mask_type=mask_type)
        hparams = _merged_config(config, n_numeric, cardinalities,
                                 [(int(c), w) for c, w in zip(cardinalities, widths,
                                                              strict=True)])
        self.backbone = TabNetBackbone(hparams)  # its final mapping (n_d -> 1) is the head

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        out = self.backbone({"continuous": numeric,
                             "categorical": categorical.to(numeric.dtype)})
        return out.squeeze(-1)


# ---------------------------------------------------------------------- FT-Transformer
def check_ft_transformer_arch(input_embed_dim: int, num_heads: int, num_attn_blocks: int,
                              ff_hidden_multiplier: int, transformer_activation: str,
                              attn_dropout: float, ff_dropout: float, add_norm_dropout: float,
                              embedding_dropout: float, share_embedding_strategy: str,
                              shared_embedding_fraction: float, embedding_bias: bool,
                              batch_norm_continuous_input: bool,
                              config_key: str = ARCH_KEY) -> None:
    """Validate :class:`FTTransformerScorer`'s architecture arguments."""
    for name, value in (("input_embed_dim", input_embed_dim), ("num_heads", num_heads),
                        ("num_attn_blocks", num_attn_blocks),
                        ("ff_hidden_multiplier", ff_hidden_multiplier)):
        check_int(value, f"{config_key}.{name}")
    if input_embed_dim % num_heads:
        raise ConfigError(f"{config_key}.num_heads",
                          f"must divide input_embed_dim ({input_embed_dim}), got {num_heads}")
    check_choice(transformer_activation, f"{config_key}.transformer_activation",
                 TRANSFORMER_ACTIVATIONS)
    for name, value in (("attn_dropout", attn_dropout), ("ff_dropout", ff_dropout),
                        ("add_norm_dropout", add_norm_dropout),
                        ("embedding_dropout", embedding_dropout),
                        ("shared_embedding_fraction", shared_embedding_fraction)):
        check_float(value, f"{config_key}.{name}", 0.0, 1.0)
    check_choice(share_embedding_strategy, f"{config_key}.share_embedding_strategy",
                 SHARE_STRATEGIES)
    check_bool(embedding_bias, f"{config_key}.embedding_bias")
    check_bool(batch_norm_continuous_input, f"{config_key}.batch_norm_continuous_input")


class FTTransformerScorer(nn.Module):
    """pytorch-tabular's ``Embedding2dLayer`` + ``FTTransformerBackbone`` + a linear head
    on the ``[CLS]`` token (see the module docstring).

    ``forward(numeric [N, F], categorical [N, C]) -> [N]``. Arguments keep
    pytorch-tabular's ``FTTransformerConfig`` names. ``batch_norm_continuous_input``
    defaults to False: ltr's numeric features are already standardised.
    """

    def __init__(self, n_numeric: int, cardinalities: Sequence[int],
                 input_embed_dim: int = 16, num_heads: int = 2, num_attn_blocks: int = 2,
                 ff_hidden_multiplier: int = 2, transformer_activation: str = "GEGLU",
                 attn_dropout: float = 0.1, ff_dropout: float = 0.1,
                 add_norm_dropout: float = 0.1, embedding_dropout: float = 0.0,
                 share_embedding_strategy: str = "fraction",
                 shared_embedding_fraction: float = 0.25, embedding_bias: bool = True,
                 batch_norm_continuous_input: bool = False,
                 config_key: str = ARCH_KEY) -> None:
        super().__init__()
        check_ft_transformer_arch(input_embed_dim, num_heads, num_attn_blocks,
                                  ff_hidden_multiplier, transformer_activation, attn_dropout,
                                  ff_dropout, add_norm_dropout, embedding_dropout,
                                  share_embedding_strategy, shared_embedding_fraction,
                                  embedding_bias, batch_norm_continuous_input, config_key)
        from pytorch_tabular.models.ft_transformer.config import FTTransformerConfig
        from pytorch_tabular.models.ft_transformer.ft_transformer import FTTransformerBackbone

        config = FTTransformerConfig(
            task="backbone", head=None, input_embed_dim=input_embed_dim,
            num_heads=num_heads, num_attn_blocks=num_attn_blocks,
            ff_hidden_multiplier=ff_hidden_multiplier,
            transformer_activation=transformer_activation, attn_dropout=float(attn_dropout),
            ff_dropout=float(ff_dropout), add_norm_dropout=float(add_norm_dropout),
            embedding_dropout=float(embedding_dropout), share_embedding=True,
            share_embedding_strategy=share_embedding_strategy,
            shared_embedding_fraction=float(shared_embedding_fraction),
            embedding_bias=embedding_bias,
            batch_norm_continuous_input=batch_norm_continuous_input,
            attn_feature_importance=False,  # do not keep attention maps on every forward
            embedding_initialization="kaiming_uniform")
        hparams = _merged_config(config, n_numeric, cardinalities, None)
        self.backbone = FTTransformerBackbone(hparams)
        self.embedding = self.backbone._build_embedding_layer()
        self.head = nn.Linear(self.backbone.output_dim, 1)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        tokens = self.embedding({"continuous": numeric, "categorical": categorical})
        return self.head(self.backbone(tokens)).squeeze(-1)
