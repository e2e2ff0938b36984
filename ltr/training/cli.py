"""``ltr fit|validate|test|predict --config configs/<model>.yaml`` through LightningCLI.

The config has ``model:`` (:class:`ltr.training.module.LtrModule`), ``data:``
(:class:`ltr.training.datamodule.LtrDataModule`), ``trainer:`` and optional
``optimizer``-free sections; any key can be overridden on the command line
(``--model.n_experts 8``, ``--trainer.max_epochs 3``). ``model.tasks`` is copied to
``data.tasks`` and ``data.feature_dims`` to ``model.feature_dims``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningCLI

from ltr.training.datamodule import LtrDataModule
from ltr.training.module import LtrModule


class WritePredictions(BasePredictionWriter):
    """Writes ``ltr predict`` scores (list id, product_id, score, task outputs) to a file."""

    def __init__(self, path: str = "runs/predictions.parquet") -> None:
        super().__init__(write_interval="epoch")
        self.path = path

    def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Any,
                           batch_indices: Any) -> None:
        outputs = predictions[0] if predictions and isinstance(predictions[0], list) \
            else predictions
        path = trainer.datamodule.write_predictions(outputs, self.path)
        print(f"wrote {path}")


class LtrCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("model.tasks", "data.tasks")
        parser.link_arguments("data.feature_dims", "model.feature_dims", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Check the ``model`` and ``data`` sections against their schemas
        (:mod:`ltr.training.sections`, :meth:`LtrDataModule.check_args`) before the data
        module prepares anything (the model itself is built after, once the data fill in
        its feature widths)."""
        from ltr.training.sections import check_model

        config = self.config[self.subcommand] if self.subcommand else self.config
        model = config.get("model")
        if model is not None:
            check_model(_plain(model))
        data = config.get("data")
        if data is not None:
            LtrDataModule.check_args(_plain(data))


def _plain(section: Any) -> dict[str, Any]:
    """A jsonargparse namespace (or a mapping) as a dict."""
    if isinstance(section, dict):
        return dict(section)
    return section.as_dict() if hasattr(section, "as_dict") else dict(vars(section))


def set_threads() -> int:
    """Torch intra-op threads: ``LTR_NUM_THREADS`` (default 1). The models are small, so
    more threads mostly add contention; measured on 2 cores: 69 ms per training step with
    1 thread vs 877 ms with the default while another process was busy."""
    import os

    import torch

    n = int(os.environ.get("LTR_NUM_THREADS", "1"))
    torch.set_num_threads(max(n, 1))
    return n


def run_lightning(argv: list[str]) -> int:
    """Run a LightningCLI sub-command (fit, validate, test, predict)."""
    import warnings

    set_threads()
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    cli = LtrCLI(LtrModule, LtrDataModule, args=argv, save_config_kwargs={"overwrite": True},
                 auto_configure_optimizers=False)
    if argv and argv[0] == "fit" and cli.trainer.global_step == 0:
        from ltr.errors import TrainingError

        raise TrainingError(f"ltr fit took no training step (trainer.max_epochs="
                            f"{cli.trainer.max_epochs}, trainer.max_steps="
                            f"{cli.trainer.max_steps}): no model was trained; set "
                            "trainer.max_epochs >= 1 and check the training window")
    return 0


def config_path(argv: list[str]) -> Path | None:
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if a.startswith("--config="):
            return Path(a.split("=", 1)[1])
    return None
