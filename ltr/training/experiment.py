"""Fit and evaluate one model configuration programmatically (used by the k-fold and
ablation scripts; ``ltr fit`` is the CLI equivalent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ltr.training.datamodule import DEFAULT_RATES, LtrDataModule
from ltr.training.module import LtrModule
from ltr.training.trainer import fit_best


def fit_and_test(dm: LtrDataModule, model_kwargs: dict[str, Any], max_epochs: int = 8,
                 patience: int = 3, seed: int = 0, root: str = "runs/experiments",
                 sampling: str | None = None, run_test: bool = True,
                 callbacks: list[pl.Callback] | None = None) -> Any:
    """Train ``LtrModule(**model_kwargs)`` on ``dm`` with :func:`ltr.training.trainer.fit_best`
    (early stopping on val/ndcg@10, the best epoch restored), and return its test metrics
    plus training time and rows/s.
    With ``run_test=False`` return ``(fit info, the module with the best weights)``."""
    pl.seed_everything(seed, verbose=False)
    if sampling is not None:
        dm.rates = None if sampling == "uniform" else \
            (dm.hparams.sampling_rates or DEFAULT_RATES)
    model = LtrModule(**{"tasks": dm.tasks, **model_kwargs}, feature_dims=dm.feature_dims)
    Path(root).mkdir(parents=True, exist_ok=True)
    fit = fit_best(model, datamodule=dm, max_epochs=max_epochs, patience=patience,
                   callbacks=callbacks, root=root)
    train = dm.prepared.train
    rows = float(train.mask.sum()) * fit.epochs if train is not None else float("nan")
    if not run_test:
        return {"train_seconds": fit.seconds, "epochs": fit.epochs}, model
    results = fit.trainer.test(model, dm, verbose=False)  # the restored best weights
    merged: dict[str, float] = {}
    for r in results:
        merged.update({k.split("/dataloader_idx")[0]: float(v) for k, v in r.items()})
    merged.update({"train_seconds": fit.seconds, "epochs": fit.epochs,
                   "train_rows_per_s": rows / max(fit.seconds, 1e-9)})
    return merged
