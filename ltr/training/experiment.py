"""Fit and evaluate one model configuration programmatically (used by the k-fold and
ablation scripts; ``ltr fit`` is the CLI equivalent)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from ltr.training.datamodule import DEFAULT_RATES, LtrDataModule
from ltr.training.module import LtrModule


def fit_and_test(dm: LtrDataModule, model_kwargs: dict[str, Any], max_epochs: int = 8,
                 patience: int = 3, seed: int = 0, root: str = "runs/experiments",
                 sampling: str | None = None, run_test: bool = True,
                 callbacks: list[pl.Callback] | None = None) -> Any:
    """Train ``LtrModule(**model_kwargs)`` on ``dm`` with early stopping on val/ndcg@10,
    restore the best epoch, and return its test metrics plus training time and rows/s.
    With ``run_test=False`` return ``(fit info, the module with the best weights)``."""
    pl.seed_everything(seed, verbose=False)
    if sampling is not None:
        dm.rates = None if sampling == "uniform" else \
            (dm.hparams.sampling_rates or DEFAULT_RATES)
    model = LtrModule(**{"tasks": dm.tasks, **model_kwargs}, feature_dims=dm.feature_dims)
    Path(root).mkdir(parents=True, exist_ok=True)
    ckpt = ModelCheckpoint(monitor="val/ndcg@10", mode="max",
                           dirpath=tempfile.mkdtemp(prefix="ckpt-", dir=root))
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=root,
                         callbacks=[EarlyStopping("val/ndcg@10", mode="max",
                                                  patience=patience), ckpt,
                                    *(callbacks or [])])
    t0 = time.perf_counter()
    trainer.fit(model, dm)
    seconds = time.perf_counter() - t0
    train = dm.prepared.train
    rows = float(train.mask.sum()) * trainer.current_epoch if train is not None else float("nan")
    if not run_test:
        if ckpt.best_model_path:
            state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)
            model.load_state_dict(state["state_dict"])
        return {"train_seconds": seconds, "epochs": trainer.current_epoch}, model
    results = trainer.test(model, dm, ckpt_path="best" if ckpt.best_model_path else None,
                           verbose=False, weights_only=False)
    merged: dict[str, float] = {}
    for r in results:
        merged.update({k.split("/dataloader_idx")[0]: float(v) for k, v in r.items()})
    merged.update({"train_seconds": seconds, "epochs": trainer.current_epoch,
                   "train_rows_per_s": rows / max(seconds, 1e-9)})
    return merged
