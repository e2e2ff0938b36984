"""The one training loop of every neural ranker: a CPU Lightning trainer with early stopping
on a validation metric and the best epoch's weights restored.

``MMoERanker`` / ``PLERanker`` (through :func:`ltr.training.experiment.fit_and_test`) and
the single-score rankers (DCN-V2, TabNet, FT-Transformer: :mod:`ltr.rankers.neural`) call
:func:`fit_best`; ranker-specific callbacks (Optuna pruning) go in ``callbacks``. ``ltr fit``
is the configurable equivalent (LightningCLI builds its trainer from the config).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl

from ltr.checks import Range
from ltr.errors import TrainingError

MONITOR = "val/ndcg@10"
# the loop's own settings, as every neural ranker takes them (ltr.checks)
TRAINING_RANGES = {"max_epochs": Range(ge=1, integer=True),
                   "patience": Range(ge=0, integer=True),
                   "batch_size": Range(ge=1, integer=True), "seed": Range(integer=True)}


class KeepBest(pl.Callback):
    """Keeps an in-memory copy of the module's state (parameters and buffers, e.g. the
    validated score weights) at its best ``monitor`` value."""

    def __init__(self, monitor: str = MONITOR) -> None:
        self.monitor = monitor
        self.best_score = -math.inf
        self.best_state: dict[str, Any] | None = None

    # on_validation_end, not on_validation_epoch_end: callbacks' epoch-end hooks run
    # before the module's, which logs this epoch's metric
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or math.isnan(float(value)):
            return
        if float(value) > self.best_score:
            self.best_score = float(value)
            self.best_state = {k: v.detach().clone() for k, v in
                               pl_module.state_dict().items()}

    def restore(self, module: pl.LightningModule) -> bool:
        """Load the best state into ``module``; False when no epoch was validated."""
        if self.best_state is None:
            return False
        module.load_state_dict(self.best_state)
        return True


@dataclass
class FitResult:
    seconds: float
    epochs: int
    best_score: float  # the monitored metric at the restored epoch (NaN: none)
    trainer: pl.Trainer


def fit_best(module: pl.LightningModule, *, datamodule: Any = None,
             train_dataloaders: Any = None, val_dataloaders: Any = None,
             max_epochs: int = 8, patience: int = 3, callbacks: list[pl.Callback] | None = None,
             root: str | None = None, monitor: str = MONITOR) -> FitResult:
    """Train ``module`` with early stopping on ``monitor`` (``patience`` epochs) and restore
    the best epoch's weights."""
    keep = KeepBest(monitor)
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=root,
                         callbacks=[pl.callbacks.EarlyStopping(monitor, mode="max",
                                                               patience=patience),
                                    keep, *(callbacks or [])])
    t0 = time.perf_counter()
    if datamodule is not None:
        trainer.fit(module, datamodule=datamodule)
    else:
        trainer.fit(module, train_dataloaders, val_dataloaders)
    seconds = time.perf_counter() - t0
    if trainer.global_step == 0:
        raise TrainingError(f"{type(module).__name__} took no training step in "
                            f"{trainer.current_epoch} epoch(s): the training lists gave no "
                            "batch (empty training window, or every list masked out); "
                            "nothing was trained, so nothing is saved or scored")
    restored = keep.restore(module)
    return FitResult(seconds, int(trainer.current_epoch),
                     keep.best_score if restored else float("nan"), trainer)
