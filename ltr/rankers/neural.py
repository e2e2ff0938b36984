"""Neural single-score rankers trained with the project's ranking losses.

:class:`NeuralRanker` trains any *backbone* — an ``nn.Module`` mapping one row's
``numeric [N, F]`` and ``categorical [N, C]`` inputs to ``N`` scores — over query groups:
scores of a batch of lists are laid out ``[B, L]`` and the configured loss
(:mod:`ltr.losses`, default ``lambda_ndcg``) compares them with the relevance target
(:func:`ltr.rankers.base.ranking_target`). Early stopping watches NDCG@10 of the
validation lists against the same target; the best epoch's weights are kept.
Subclasses only say how to build their backbone (:meth:`NeuralRanker.build_backbone`).
Weights are saved as safetensors.

**Streamed training lists** (``data.stream_dir``: ``data.train`` is None and
``data.train_stream`` reads ``train.parquet`` one row group at a time): training reads
:class:`~ltr.training.stream.ListTensorStream` over that file, one pass per epoch, each
row group's lists turned into the same ``(numeric, categorical, target)`` tensors as in
memory (:func:`_tensors`) and shuffled within a buffer of :data:`STREAM_BUFFER` row
groups. Validation lists stay in memory.

**Validation NDCG@10 across processes**: each process sums NDCG@10 over its lists and
counts them; the sums and counts are added over processes before dividing (the pooled
mean over every validation list, not a mean of per-process means).

Baselines (end of this module, ``docs/rankers_neural.md``): :class:`DCNV2Ranker`
(``dcnv2``), :class:`TabNetRanker` (``tabnet``) and :class:`FTTransformerRanker`
(``ft_transformer``), each configured by an ``arch`` dict (:class:`ArchRanker`).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError, DataValidationError, check_known_keys
from ltr.io import atomic_path, read_json, write_json
from ltr.losses.registry import get_loss
from ltr.metrics import ndcg
from ltr.models.dcnv2 import DCNV2, check_dcnv2_arch
from ltr.models.tabular_backbones import (
    FTTransformerScorer,
    TabNetScorer,
    check_ft_transformer_arch,
    check_tabnet_arch,
)
from ltr.rankers.base import Capabilities, Ranker, ranker_inputs, ranking_target
from ltr.training.stream import ListTensorStream
from ltr.training.trainer import TRAINING_RANGES, fit_best

STREAM_BUFFER = 4  # row groups whose lists are shuffled together when training streams


def list_scores(backbone: nn.Module, numeric: torch.Tensor, categorical: torch.Tensor
                ) -> torch.Tensor:
    """``[B, L]`` scores: the backbone applied to every slot of ``[B, L, ...]`` inputs."""
    b, l_ = numeric.shape[:2]
    flat = backbone(numeric.reshape(b * l_, -1), categorical.reshape(b * l_, -1))
    return flat.reshape(b, l_)


class _ScoreModule(pl.LightningModule):
    def __init__(self, backbone: nn.Module, loss: str, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss_fn = get_loss(loss, "model.params.loss")
        self.lr, self.weight_decay = lr, weight_decay
        self._val: list[float] = [0.0, 0.0]

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return list_scores(self.backbone, numeric, categorical)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        numeric, categorical, target = batch
        valid = torch.isfinite(target)
        loss = self.loss_fn(self(numeric, categorical), torch.nan_to_num(target), valid)
        self.log("train/loss", loss, batch_size=numeric.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = [0.0, 0.0]

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        numeric, categorical, target = batch
        y = target.cpu().numpy()
        valid = np.isfinite(y)
        r = ndcg(self(numeric, categorical).float().cpu().numpy(), np.nan_to_num(y), valid,
                 k=10)
        self._val[0] += float(r.values[r.included].sum())
        self._val[1] += float(r.included.sum())

    def on_validation_epoch_end(self) -> None:
        # sums and counts pooled over processes, then divided (one process: as they are)
        pooled = torch.tensor(self._val, dtype=torch.float64)
        if self._trainer is not None:
            pooled = self.trainer.strategy.reduce(pooled, reduce_op="sum")
        total, count = (float(v) for v in pooled)
        # the same value on every process now, so sync_dist's mean leaves it as it is
        self.log("val/ndcg@10", total / count if count else 0.0, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _inputs(lists: Any, data: Any, use_text: bool) -> tuple[torch.Tensor, torch.Tensor]:
    numeric, categorical = ranker_inputs(lists, data, use_text)
    return (torch.from_numpy(np.ascontiguousarray(numeric, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(categorical, dtype=np.int64)))


def _tensors(lists: Any, data: Any, use_text: bool) -> tuple[torch.Tensor, ...]:
    """Inputs and the training target (:func:`ranking_target`)."""
    return (*_inputs(lists, data, use_text), torch.from_numpy(ranking_target(lists)))


class NeuralRanker(Ranker):
    """Base of the neural single-score rankers (see the module docstring).

    Parameters (constructor keywords, all saved): ``loss`` (default ``lambda_ndcg``),
    ``lr``, ``weight_decay``, ``max_epochs``, ``patience``, ``batch_size`` (lists),
    ``use_text`` (append the query-product cosine), ``seed``, plus the backbone's own
    ``arch`` dict.
    """

    kind = "neural"
    capabilities = Capabilities(text="optional", prunable="lightning", streams=True)
    DEFAULTS: dict[str, Any] = {
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

    RANGES = {"lr": Range(gt=0), "weight_decay": Range(ge=0), **TRAINING_RANGES}

    def __init__(self, **params: Any) -> None:
        check_known_keys(params, self.DEFAULTS, "model.params", f"parameter for '{self.kind}'")
        check_ranges(params, self.RANGES, "model.params")
        super().__init__(**{**self.DEFAULTS, **params})
        get_loss(self.params["loss"], "model.params.loss")
        self.backbone_: nn.Module | None = None
        self.dims_: dict[str, Any] = {}
        self.train_seconds_ = float("nan")
        self.best_score_ = float("nan")  # validation NDCG@10 of the kept weights
        # extra Lightning callbacks for the next fit (not saved), e.g. Optuna pruning
        self.callbacks: list[pl.Callback] = []

    def build_backbone(self, n_numeric: int, cardinalities: list[int],
                       arch: dict[str, Any]) -> nn.Module:
        """Return the backbone: ``forward(numeric [N, F], categorical [N, C]) -> [N]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Ranker
    def _fit(self, data: Any) -> None:
        p = self.params
        pl.seed_everything(p["seed"], verbose=False)
        train = self._train_loader(data)
        # validation ranks with row-order ties: put them in the neutral order first
        valid = _tensors(data.valid.in_neutral_order(), data, p["use_text"])
        self.dims_ = {"n_numeric": int(valid[0].shape[-1]),
                      "cardinalities": list(data.preprocessor.cardinalities)}
        self.backbone_ = self.build_backbone(self.dims_["n_numeric"],
                                             self.dims_["cardinalities"], dict(p["arch"]))
        module = _ScoreModule(self.backbone_, p["loss"], p["lr"], p["weight_decay"])
        fit = fit_best(module, train_dataloaders=train,
                       val_dataloaders=DataLoader(TensorDataset(*valid), batch_size=256),
                       max_epochs=p["max_epochs"], patience=p["patience"],
                       callbacks=self.callbacks)
        self.train_seconds_ = fit.seconds
        if not math.isnan(fit.best_score):
            self.best_score_ = fit.best_score
        self.backbone_.eval()

    def _train_loader(self, data: Any) -> DataLoader:
        """Shuffled batches of training lists: in memory (``data.train``), or streamed
        from ``data.train_stream`` (see the module docstring)."""
        p = self.params

        def tensors(lists: Any) -> tuple[torch.Tensor, ...]:
            return _tensors(lists, data, p["use_text"])

        if getattr(data, "train", None) is not None:
            return DataLoader(TensorDataset(*tensors(data.train)), batch_size=p["batch_size"],
                              shuffle=True)
        stream = getattr(data, "train_stream", None)
        if stream is None:
            raise DataValidationError("data.train", "there are no training lists, in memory "
                                      "or streamed (data.stream_dir)")
        return DataLoader(ListTensorStream(stream, tensors, STREAM_BUFFER),
                          batch_size=p["batch_size"])

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        numeric, categorical = _inputs(lists, data, self.params["use_text"])
        out = []
        with torch.inference_mode():  # the backbone is in eval mode since fit / load
            for i in range(0, len(numeric), 256):
                out.append(list_scores(self.backbone_, numeric[i:i + 256],
                                       categorical[i:i + 256]).numpy())
        return np.concatenate(out) if out else np.zeros(lists.mask.shape)

    def _save_state(self, folder: Path) -> None:
        from safetensors.torch import save_file

        write_json(self.dims_, folder / "dims.json")
        with atomic_path(folder / "weights.safetensors") as tmp:
            # copies: tied weights (e.g. TabNet's shared GLU layers) share memory, which
            # safetensors refuses; every key is still written and loads strictly
            save_file({k: v.detach().clone(memory_format=torch.contiguous_format)
                       for k, v in self.backbone_.state_dict().items()}, str(tmp))

    def _load_state(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.dims_ = read_json(folder / "dims.json")
        self.backbone_ = self.build_backbone(self.dims_["n_numeric"],
                                             self.dims_["cardinalities"],
                                             dict(self.params["arch"]))
        self.backbone_.load_state_dict(load_file(str(folder / "weights.safetensors")))
        self.backbone_.eval()


# ---------------------------------------------------------------------- baselines
class ArchRanker(NeuralRanker):
    """A :class:`NeuralRanker` whose backbone is configured by an ``arch`` dict.

    ``ARCH`` holds the defaults; the ``arch`` parameter overrides some of them. Unknown
    keys and bad values raise :class:`~ltr.errors.ConfigError` naming
    ``model.params.arch.<key>`` when the ranker is constructed. The *complete* arch
    (defaults filled in) is what is saved, so a saved ranker rebuilds the same network
    even if the defaults change later.
    """

    ARCH: ClassVar[dict[str, Any]] = {}
    BACKBONE: ClassVar[type[nn.Module]] = nn.Module  # called as BACKBONE(F, cards, **arch)
    ARCH_KEY: ClassVar[str] = "model.params.arch"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.params["arch"] = self.resolve_arch(self.params["arch"])
        self.check_arch(self.params["arch"])

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

    def build_backbone(self, n_numeric: int, cardinalities: list[int],
                       arch: dict[str, Any]) -> nn.Module:
        return self.BACKBONE(n_numeric, cardinalities, **self.resolve_arch(arch),
                             config_key=self.ARCH_KEY)


class DCNV2Ranker(ArchRanker):
    r"""DCN-V2 (:class:`ltr.models.dcnv2.DCNV2`) trained with ranking losses.

    ``arch`` defaults (``ARCH``):

    * ``n_cross`` = 2 — cross layers :math:`x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l`;
    * ``rank`` = None — full-rank :math:`W_l`; an int ``r`` uses :math:`U_l V_l^\top`;
    * ``deep`` = [32, 16] — deep MLP widths;
    * ``structure`` = "stacked" — or "parallel";
    * ``dropout`` = 0.0 — after each deep layer;
    * ``emb_dim`` = None, ``max_emb_dim`` = 16 — categorical embedding widths.
    """

    kind = "dcnv2"
    BACKBONE = DCNV2
    ARCH: ClassVar[dict[str, Any]] = {"n_cross": 2, "rank": None, "deep": [32, 16],
                                      "structure": "stacked", "dropout": 0.0,
                                      "emb_dim": None, "max_emb_dim": 16}

    def check_arch(self, arch: dict[str, Any]) -> None:
        check_dcnv2_arch(**arch, config_key=self.ARCH_KEY)


class TabNetRanker(ArchRanker):
    """TabNet (pytorch-tabular's ``TabNetBackbone``, see
    :class:`ltr.models.tabular_backbones.TabNetScorer`) trained with ranking losses.

    ``arch`` defaults (``ARCH``): ``n_d`` = 8 and ``n_a`` = 8 (decision / attention
    widths), ``n_steps`` = 3 (decision steps), ``gamma`` = 1.3 (mask relaxation, >= 1,
    usually <= 2), ``n_independent`` = 1 and ``n_shared`` = 1 (GLU layers per step / shared),
    ``virtual_batch_size`` = 128 (ghost batch norm rows; a batch of ``B`` lists has
    ``B * L`` rows), ``mask_type`` = "sparsemax" (or "entmax"), ``emb_dim`` = None and
    ``max_emb_dim`` = 16 (categorical embedding widths).
    """

    kind = "tabnet"
    BACKBONE = TabNetScorer
    ARCH: ClassVar[dict[str, Any]] = {"n_d": 8, "n_a": 8, "n_steps": 3, "gamma": 1.3,
                                      "n_independent": 1, "n_shared": 1,
                                      "virtual_batch_size": 128, "mask_type": "sparsemax",
                                      "emb_dim": None, "max_emb_dim": 16}

    def check_arch(self, arch: dict[str, Any]) -> None:
        check_tabnet_arch(**arch, config_key=self.ARCH_KEY)


class FTTransformerRanker(ArchRanker):
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

    kind = "ft_transformer"
    BACKBONE = FTTransformerScorer
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
