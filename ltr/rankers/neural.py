r"""Neural single-score rankers trained with the project's ranking losses.

The DCN-V2, TabNet and FT-Transformer baselines (``docs/rankers_neural.md``) train on the
one training stack of every neural ranker: :class:`~ltr.training.module.LtrModule` with a
*single-score backbone* (:data:`ltr.models.registry.SCORERS`, named as the ranker kind),
driven by :func:`~ltr.training.trainer.fit_best`. The backbone is a row scorer
:math:`f(x, c)` of the numeric features :math:`x` (with ``use_text``, the query-product
cosine appended as one more column) and the categorical codes :math:`c`; the module lays a
batch of ``B`` lists out as ``B * L`` rows and their scores back as ``[B, L]``, so the
configured loss (:mod:`ltr.losses`, default ``lambda_ndcg``) compares whole lists with the
relevance grade, e.g. LambdaLoss

.. math::
    \ell = \sum_{y_i > y_j} |\Delta \mathrm{NDCG}_{ij}|\, \log_2\!\big(1 + e^{-(s_i - s_j)}\big)

over the pairs of one list (slots without a grade left out). Early stopping watches
NDCG@10 of the validation lists against the same grade; the best epoch's weights are
kept (:attr:`NeuralRanker.best_score_`).

:class:`NeuralRanker` is the MMoE's ranker (:class:`~ltr.rankers.mmoe.MMoERanker`:
an ``LtrModule`` behind the ranker interface, which scores, saves and loads it) with the
baselines' own parameters (:attr:`NeuralRanker.DEFAULTS`, an ``arch`` dict per backbone)
and training lists:

* **in memory** (``data.train``): every list once per epoch, shuffled (no
  outcome-balanced sampling: the relevance grade is the only target);
* **streamed** (``data.stream_dir``: ``data.train`` is None and ``data.train_stream``
  reads ``train.parquet`` one row group at a time):
  :class:`~ltr.training.stream.ListTensorStream` over that file, one pass per epoch, the
  lists of :data:`STREAM_BUFFER` row groups shuffled together.

Validation lists stay in memory. **Validation NDCG@10 across processes**: each process
sums NDCG@10 over its lists and counts them; the sums and counts are added over processes
before dividing (``LtrModule``'s pooled metric sums).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError, DataValidationError, check_known_keys
from ltr.io import read_json
from ltr.losses.registry import get_loss
from ltr.models.dcnv2 import check_dcnv2_arch
from ltr.models.tabular_backbones import check_ft_transformer_arch, check_tabnet_arch
from ltr.rankers.base import Capabilities, Ranker
from ltr.rankers.mmoe import EVAL_BATCH, MMoERanker
from ltr.training.lists import ListData, ListDataset
from ltr.training.module import LtrModule
from ltr.training.stream import ListTensorStream
from ltr.training.text_branch import FrozenTextTables
from ltr.training.trainer import TRAINING_RANGES, fit_best

STREAM_BUFFER = 4  # row groups whose lists are shuffled together when training streams
LEGACY_DIMS = "dims.json"  # the layout before LtrModule: input widths + bare backbone


def list_tensors(lists: ListData) -> dict[str, torch.Tensor]:
    """The module's batch tensors of every list of ``lists`` (``[G, L, ...]``)."""
    return ListDataset(lists).batch(slice(None))


class NeuralRanker(MMoERanker):
    """Base of the single-score rankers (see the module docstring).

    Parameters (constructor keywords, all saved): ``loss`` (default ``lambda_ndcg``),
    ``lr``, ``weight_decay``, ``max_epochs``, ``patience``, ``batch_size`` (lists),
    ``use_text`` (append the query-product cosine), ``seed``, and ``arch``: the backbone's
    own arguments, :attr:`ARCH` updated with the given keys (unknown keys and bad values
    raise :class:`~ltr.errors.ConfigError` naming ``model.params.arch.<key>`` when the
    ranker is constructed). The *complete* arch (defaults filled in) is what is saved, so
    a saved ranker rebuilds the same network even if the defaults change later.
    """

    kind = "neural"
    backbone: ClassVar[str] = ""  # a subclass's single-score backbone (registry.SCORERS)
    capabilities = Capabilities(text="optional", prunable="lightning", streams=True)
    output_names: ClassVar[tuple[str, ...]] = ("relevance",)  # type: ignore[assignment]
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "loss": "lambda_ndcg",  # ranking loss (docs/losses.md)
        "lr": 1e-3,  # AdamW learning rate
        "weight_decay": 1e-5,  # AdamW weight decay
        "max_epochs": 10,  # epochs at most
        "patience": 3,  # early stopping: epochs without a better validation NDCG@10
        "batch_size": 64,  # lists per batch
        "use_text": True,  # append the query-product cosine as a feature
        "seed": 0,  # seeds weights and batches
        "arch": {},  # the backbone's own arguments (pytorch-tabular names)
    }
    RANGES: ClassVar[dict[str, Range]] = {"lr": Range(gt=0), "weight_decay": Range(ge=0),
                                          **TRAINING_RANGES}
    ARCH: ClassVar[dict[str, Any]] = {}
    ARCH_KEY: ClassVar[str] = "model.params.arch"

    def __init__(self, **params: Any) -> None:
        check_known_keys(params, self.DEFAULTS, "model.params", f"parameter for '{self.kind}'")
        check_ranges(params, self.RANGES, "model.params")
        # not MMoERanker.__init__: its parameters are LtrModule's, these rankers' are theirs
        Ranker.__init__(self, **{**self.DEFAULTS, **params})
        get_loss(self.params["loss"], "model.params.loss")
        self.params["arch"] = self.resolve_arch(self.params["arch"])
        self.check_arch(self.params["arch"])
        self.callbacks: list[pl.Callback] = []  # for the next fit (not saved), e.g. pruning
        self.module_: LtrModule | None = None
        self.train_seconds_ = float("nan")
        self.best_score_ = float("nan")  # validation NDCG@10 of the kept weights

    @classmethod
    def param_names(cls) -> set[str]:
        return set(cls.DEFAULTS)

    @classmethod
    def resolve_arch(cls, arch: Any) -> dict[str, Any]:
        """``ARCH`` updated with ``arch`` (unknown keys refused)."""
        if arch is None:
            arch = {}
        if not isinstance(arch, dict):
            raise ConfigError(cls.ARCH_KEY, f"must be a mapping, got {arch!r}")
        unknown = sorted(set(arch) - set(cls.ARCH))
        if unknown:
            raise ConfigError(f"{cls.ARCH_KEY}.{unknown[0]}", f"unknown architecture "
                              f"parameter for '{cls.kind}'; known: {sorted(cls.ARCH)}")
        return {**copy.deepcopy(cls.ARCH), **copy.deepcopy(arch)}

    def check_arch(self, arch: dict[str, Any]) -> None:
        """Validate a resolved arch (ConfigError naming the key)."""

    def _module_kwargs(self) -> dict[str, Any]:
        """The :class:`LtrModule` arguments: the relevance task alone, this kind's
        single-score backbone."""
        p = self.params
        return {"tasks": ["relevance"], "losses": {"relevance": p["loss"]},
                "use_text": p["use_text"], "backbone": self.backbone,
                "backbone_args": dict(p["arch"]), "lr": p["lr"],
                "weight_decay": p["weight_decay"]}

    def _module(self, n_numeric: int, cardinalities: list[int]) -> LtrModule:
        return LtrModule(**self._module_kwargs(),
                         feature_dims={"n_numeric": int(n_numeric),
                                       "cardinalities": [int(c) for c in cardinalities]})

    # ------------------------------------------------------------------ Ranker
    def _fit(self, data: Any) -> None:
        p = self.params
        if "relevance" not in data.valid.labels:
            raise ConfigError("model.tasks", "single-score rankers train on the 'relevance' "
                              "labels; add the relevance task to the data")
        if p["use_text"] and getattr(data, "query_embeddings", None) is None:
            raise ConfigError("data.text", "this ranker uses text (use_text: true) but the "
                              "data has no text embeddings")
        pl.seed_everything(p["seed"], verbose=False)
        train = self._train_loader(data)
        module = self._module(data.preprocessor.numeric_width,
                              data.preprocessor.cardinalities)
        if p["use_text"]:
            module.attach_text(FrozenTextTables(data.query_embeddings, data.product_embeddings))
        fit = fit_best(module, train_dataloaders=train,
                       val_dataloaders=DataLoader(ListDataset(data.valid),
                                                  batch_size=EVAL_BATCH),
                       max_epochs=p["max_epochs"], patience=p["patience"],
                       callbacks=self.callbacks)
        self.train_seconds_ = fit.seconds
        if not math.isnan(fit.best_score):
            self.best_score_ = fit.best_score
        self.module_ = module.eval()

    def _train_loader(self, data: Any) -> DataLoader:
        """Shuffled batches of training lists: in memory (``data.train``), or streamed
        from ``data.train_stream`` (see the module docstring)."""
        batch_size = self.params["batch_size"]
        if getattr(data, "train", None) is not None:
            return DataLoader(ListDataset(data.train), batch_size=batch_size, shuffle=True)
        stream = getattr(data, "train_stream", None)
        if stream is None:
            raise DataValidationError("data.train", "there are no training lists, in memory "
                                      "or streamed (data.stream_dir)")
        return DataLoader(ListTensorStream(stream, list_tensors, STREAM_BUFFER),
                          batch_size=batch_size)

    def _load_state(self, folder: Path) -> None:
        """:meth:`MMoERanker._load_state`, or a folder of the layout before the module
        (``dims.json``: the scorer's input widths, the cosine column included; the bare
        scorer's weights)."""
        if not (folder / LEGACY_DIMS).exists():
            super()._load_state(folder)
            return
        from safetensors.torch import load_file

        dims = read_json(folder / LEGACY_DIMS)
        module = self._module(dims["n_numeric"] - bool(self.params["use_text"]),
                              dims["cardinalities"])
        module.scorer.load_state_dict(load_file(str(folder / "weights.safetensors")))
        self.module_ = module.eval()


# ---------------------------------------------------------------------- baselines
class DCNV2Ranker(NeuralRanker):
    r"""DCN-V2 (:class:`ltr.models.dcnv2.DCNV2`) trained with ranking losses.

    ``arch`` defaults (``ARCH``):

    * ``n_cross`` = 2 — cross layers :math:`x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l`;
    * ``rank`` = None — full-rank :math:`W_l`; an int ``r`` uses :math:`U_l V_l^\top`;
    * ``deep`` = [32, 16] — deep MLP widths;
    * ``structure`` = "stacked" — or "parallel";
    * ``dropout`` = 0.0 — after each deep layer;
    * ``emb_dim`` = None, ``max_emb_dim`` = 16 — categorical embedding widths.
    """

    kind = backbone = "dcnv2"
    ARCH: ClassVar[dict[str, Any]] = {"n_cross": 2, "rank": None, "deep": [32, 16],
                                      "structure": "stacked", "dropout": 0.0,
                                      "emb_dim": None, "max_emb_dim": 16}

    def check_arch(self, arch: dict[str, Any]) -> None:
        check_dcnv2_arch(**arch, config_key=self.ARCH_KEY)


class TabNetRanker(NeuralRanker):
    """TabNet (pytorch-tabular's ``TabNetBackbone``, see
    :class:`ltr.models.tabular_backbones.TabNetScorer`) trained with ranking losses.

    ``arch`` defaults (``ARCH``): ``n_d`` = 8 and ``n_a`` = 8 (decision / attention
    widths), ``n_steps`` = 3 (decision steps), ``gamma`` = 1.3 (mask relaxation, >= 1,
    usually <= 2), ``n_independent`` = 1 and ``n_shared`` = 1 (GLU layers per step / shared),
    ``virtual_batch_size`` = 128 (ghost batch norm rows; a batch of ``B`` lists has
    ``B * L`` rows), ``mask_type`` = "sparsemax" (or "entmax"), ``emb_dim`` = None and
    ``max_emb_dim`` = 16 (categorical embedding widths).
    """

    kind = backbone = "tabnet"
    ARCH: ClassVar[dict[str, Any]] = {"n_d": 8, "n_a": 8, "n_steps": 3, "gamma": 1.3,
                                      "n_independent": 1, "n_shared": 1,
                                      "virtual_batch_size": 128, "mask_type": "sparsemax",
                                      "emb_dim": None, "max_emb_dim": 16}

    def check_arch(self, arch: dict[str, Any]) -> None:
        check_tabnet_arch(**arch, config_key=self.ARCH_KEY)


class FTTransformerRanker(NeuralRanker):
    """FT-Transformer (pytorch-tabular's ``Embedding2dLayer`` + ``FTTransformerBackbone``,
    see :class:`ltr.models.tabular_backbones.FTTransformerScorer`) trained with ranking
    losses.

    ``arch`` defaults (``ARCH``, pytorch-tabular's names): ``input_embed_dim`` = 16
    (token width ``d``), ``num_heads`` = 2, ``num_attn_blocks`` = 2,
    ``ff_hidden_multiplier`` = 2, ``transformer_activation`` = "GEGLU",
    ``attn_dropout`` = 0.1, ``ff_dropout`` = 0.1, ``add_norm_dropout`` = 0.1,
    ``embedding_dropout`` = 0.0, ``share_embedding_strategy`` = "fraction",
    ``shared_embedding_fraction`` = 0.25, ``embedding_bias`` = True,
    ``batch_norm_continuous_input`` = False.
    """

    kind = backbone = "ft_transformer"
    ARCH: ClassVar[dict[str, Any]] = {"input_embed_dim": 16, "num_heads": 2,
                                      "num_attn_blocks": 2, "ff_hidden_multiplier": 2,
                                      "transformer_activation": "GEGLU", "attn_dropout": 0.1,
                                      "ff_dropout": 0.1, "add_norm_dropout": 0.1,
                                      "embedding_dropout": 0.0,
                                      "share_embedding_strategy": "fraction",
                                      "shared_embedding_fraction": 0.25,
                                      "embedding_bias": True,
                                      "batch_norm_continuous_input": False}

    def check_arch(self, arch: dict[str, Any]) -> None:
        check_ft_transformer_arch(**arch, config_key=self.ARCH_KEY)
