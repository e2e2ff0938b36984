"""Neural single-score rankers trained with the project's ranking losses.

:class:`NeuralRanker` trains any *backbone* — an ``nn.Module`` mapping one row's
``numeric [N, F]`` and ``categorical [N, C]`` inputs to ``N`` scores — over query groups:
scores of a batch of lists are laid out ``[B, L]`` and the configured loss
(:mod:`ltr.losses`, default ``lambda_ndcg``) compares them with the relevance target
(:func:`ltr.rankers.base.ranking_target`). Early stopping watches NDCG@10 of the
validation lists against the same target; the best epoch's weights are kept.
Subclasses only say how to build their backbone (:meth:`NeuralRanker.build_backbone`).
Weights are saved as safetensors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ltr.errors import ConfigError
from ltr.io import atomic_path, write_json
from ltr.losses.registry import get_loss
from ltr.metrics import ndcg
from ltr.rankers.base import Ranker, ranker_inputs, ranking_target


class _ScoreModule(pl.LightningModule):
    def __init__(self, backbone: nn.Module, loss: str, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss_fn = get_loss(loss, "model.params.loss")
        self.lr, self.weight_decay = lr, weight_decay
        self._val: list[float] = [0.0, 0.0]

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        b, l_ = numeric.shape[:2]
        flat = self.backbone(numeric.reshape(b * l_, -1), categorical.reshape(b * l_, -1))
        return flat.reshape(b, l_)

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
        total, count = self._val
        self.log("val/ndcg@10", total / count if count else 0.0)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _tensors(lists: Any, data: Any, use_text: bool) -> tuple[torch.Tensor, ...]:
    numeric, categorical = ranker_inputs(lists, data, use_text)
    return (torch.from_numpy(np.ascontiguousarray(numeric, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(categorical, dtype=np.int64)),
            torch.from_numpy(ranking_target(lists)))


class NeuralRanker(Ranker):
    """Base of the neural single-score rankers (see the module docstring).

    Parameters (constructor keywords, all saved): ``loss`` (default ``lambda_ndcg``),
    ``lr``, ``weight_decay``, ``max_epochs``, ``patience``, ``batch_size`` (lists),
    ``use_text`` (append the query-product cosine), ``seed``, plus the backbone's own
    ``arch`` dict.
    """

    kind = "neural"
    DEFAULTS: dict[str, Any] = {"loss": "lambda_ndcg", "lr": 1e-3, "weight_decay": 1e-5,
                                "max_epochs": 10, "patience": 3, "batch_size": 64,
                                "use_text": True, "seed": 0, "arch": {}}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ConfigError(f"model.params.{sorted(unknown)[0]}",
                              f"unknown parameter for '{self.kind}'; known: "
                              f"{sorted(self.DEFAULTS)}")
        super().__init__(**{**self.DEFAULTS, **params})
        get_loss(self.params["loss"], "model.params.loss")
        self.backbone_: nn.Module | None = None
        self.dims_: dict[str, Any] = {}
        self.train_seconds_ = float("nan")

    def build_backbone(self, n_numeric: int, cardinalities: list[int],
                       arch: dict[str, Any]) -> nn.Module:
        """Return the backbone: ``forward(numeric [N, F], categorical [N, C]) -> [N]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Ranker
    def _fit(self, data: Any) -> None:
        p = self.params
        pl.seed_everything(p["seed"], verbose=False)
        train = _tensors(data.train, data, p["use_text"])
        valid = _tensors(data.valid, data, p["use_text"])
        self.dims_ = {"n_numeric": int(train[0].shape[-1]),
                      "cardinalities": list(data.preprocessor.cardinalities)}
        self.backbone_ = self.build_backbone(self.dims_["n_numeric"],
                                             self.dims_["cardinalities"], dict(p["arch"]))
        module = _ScoreModule(self.backbone_, p["loss"], p["lr"], p["weight_decay"])
        best: dict[str, Any] = {"score": -1.0, "state": None}

        class KeepBest(pl.Callback):
            def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
                score = float(trainer.callback_metrics.get("val/ndcg@10", -1.0))
                if score > best["score"]:
                    best["score"] = score
                    best["state"] = {k: v.detach().clone() for k, v in
                                     pl_module.backbone.state_dict().items()}

        trainer = pl.Trainer(max_epochs=p["max_epochs"], accelerator="cpu", devices=1,
                             logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[pl.callbacks.EarlyStopping("val/ndcg@10", mode="max",
                                                                   patience=p["patience"]),
                                        KeepBest()])
        t0 = time.perf_counter()
        trainer.fit(module, DataLoader(TensorDataset(*train), batch_size=p["batch_size"],
                                       shuffle=True),
                    DataLoader(TensorDataset(*valid), batch_size=256))
        self.train_seconds_ = time.perf_counter() - t0
        if best["state"] is not None:
            self.backbone_.load_state_dict(best["state"])
        self.backbone_.eval()

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        numeric, categorical, _ = _tensors(lists, data, self.params["use_text"])
        module = _ScoreModule(self.backbone_, self.params["loss"], 0.0, 0.0).eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(numeric), 256):
                out.append(module(numeric[i:i + 256], categorical[i:i + 256]).numpy())
        return np.concatenate(out) if out else np.zeros(lists.mask.shape)

    def _save_state(self, folder: Path) -> None:
        from safetensors.torch import save_file

        write_json(self.dims_, folder / "dims.json")
        with atomic_path(folder / "weights.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.backbone_.state_dict().items()},
                      str(tmp))

    def _load_state(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.dims_ = json.loads((folder / "dims.json").read_text())
        self.backbone_ = self.build_backbone(self.dims_["n_numeric"],
                                             self.dims_["cardinalities"],
                                             dict(self.params["arch"]))
        self.backbone_.load_state_dict(load_file(str(folder / "weights.safetensors")))
        self.backbone_.eval()
