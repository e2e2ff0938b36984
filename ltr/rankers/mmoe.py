"""The MMoE (full, and tabular-only) behind the common ranker interface.

Training is the Lightning module of :mod:`ltr.training.module` on the data module
:meth:`~ltr.training.datamodule.LtrDataModule.from_prepared` builds over the shared
:class:`~ltr.training.prepare.PreparedData`, with early stopping on ``val/ndcg@10``; the
best epoch's weights are kept. The text encoder is used frozen (cached embeddings);
fine-tuning its top layers goes through ``ltr fit`` (the encoder must be loaded there).
Saved as safetensors (weights) + JSON (the module's constructor arguments).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ltr.errors import ConfigError
from ltr.io import atomic_path, write_json
from ltr.rankers.base import Ranker
from ltr.training.lists import ListDataset
from ltr.training.module import LtrModule
from ltr.training.text_branch import FrozenTextTables

TRAINER_KEYS = {"max_epochs": 8, "patience": 3, "batch_size": 64, "seed": 0,
                "sampling": "diverse"}


class MMoERanker(Ranker):
    """Multi-task MMoE over tabular + text features. Parameters: any
    :class:`~ltr.training.module.LtrModule` argument plus ``max_epochs``, ``patience``,
    ``batch_size``, ``seed``, ``sampling``."""

    kind = "mmoe"
    use_text_default = True

    def __init__(self, **params: Any) -> None:
        params = {**TRAINER_KEYS, "use_text": self.use_text_default, **params}
        if params.get("trainable_layers", 0):
            raise ConfigError("model.params.trainable_layers", "the ranker interface uses the "
                              "frozen encoder; fine-tune with `ltr fit` instead")
        super().__init__(**params)
        self.module_: LtrModule | None = None
        self.train_seconds_ = float("nan")

    def _module_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k not in TRAINER_KEYS}

    def _attach(self, data: Any) -> None:
        if self.module_.use_text:
            if data.query_embeddings is None:
                raise ConfigError("data.text", "the MMoE uses text but the data has none")
            self.module_.attach_text(FrozenTextTables(data.query_embeddings,
                                                      data.product_embeddings))

    def _fit(self, data: Any) -> None:
        from ltr.training.datamodule import LtrDataModule
        from ltr.training.experiment import fit_and_test

        p = self.params
        dm = LtrDataModule.from_prepared(data, batch_size=p["batch_size"], seed=p["seed"],
                                         sampling=p["sampling"])
        kwargs = self._module_kwargs()
        t0 = time.perf_counter()
        _, module = fit_and_test(dm, kwargs, max_epochs=p["max_epochs"], patience=p["patience"],
                                 seed=p["seed"], run_test=False)
        self.train_seconds_ = time.perf_counter() - t0
        self.module_ = module.eval()

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        self._attach(data)
        self.module_.eval()
        out = []
        with torch.inference_mode():
            for batch in DataLoader(ListDataset(lists), batch_size=256):
                out.append(self.module_.predict_scores(batch)["score"].numpy())
        return np.concatenate(out) if out else np.zeros(lists.mask.shape)

    def _save_state(self, folder: Path) -> None:
        from safetensors.torch import save_file

        hp = dict(self.module_.hparams)
        write_json(hp, folder / "module.json")
        state = {k: v.contiguous() for k, v in self.module_.state_dict().items()
                 if not k.startswith("text_branch.")}
        with atomic_path(folder / "weights.safetensors") as tmp:
            save_file(state, str(tmp))

    def _load_state(self, folder: Path) -> None:
        from safetensors.torch import load_file

        hp = json.loads((folder / "module.json").read_text())
        self.module_ = LtrModule(**hp)
        self.module_.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        self.module_.eval()


class TabularMMoERanker(MMoERanker):
    """The MMoE without any text feature."""

    kind = "mmoe_tabular"
    use_text_default = False

