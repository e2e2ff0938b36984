"""The MMoE (full, and tabular-only) behind the common ranker interface.

Training is the Lightning module of :mod:`ltr.training.module` on the data module
:meth:`~ltr.training.datamodule.LtrDataModule.from_prepared` builds over the shared
:class:`~ltr.training.prepare.PreparedData`, with early stopping on ``val/ndcg@10``; the
best epoch's weights are kept. The text encoder is used frozen (cached embeddings);
fine-tuning its top layers goes through ``ltr fit`` (the encoder must be loaded there).
Saved as safetensors (weights) + JSON (the module's constructor arguments).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltr.errors import ConfigError, DataValidationError
from ltr.io import atomic_path, read_json, write_json
from ltr.rankers.base import Ranker
from ltr.training.lists import ListDataset
from ltr.training.module import LtrModule

EVAL_BATCH = 256  # lists per forward pass when scoring
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

    @property
    def output_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.module_.tasks) if self.module_ is not None else ()

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
        return self._score_outputs(lists, data)["score"]

    def _score_outputs(self, lists: Any, data: Any) -> dict[str, np.ndarray]:
        """Score and task outputs, ``EVAL_BATCH`` lists at a time. Text embeddings go in
        with each batch (looked up in ``data``'s tables), so the module is never changed
        and concurrent calls are safe."""
        module = self.module_
        queries = products = None
        if module.use_text:
            if getattr(data, "query_embeddings", None) is None:
                raise ConfigError("data.text", "the MMoE uses text but the data has none")
            queries = torch.from_numpy(np.ascontiguousarray(data.query_embeddings, np.float32))
            products = torch.from_numpy(np.ascontiguousarray(data.product_embeddings,
                                                             np.float32))
        parts: dict[str, list[np.ndarray]] = {}
        dataset = ListDataset(lists)
        with torch.inference_mode():
            for start in range(0, len(lists), EVAL_BATCH):
                batch = dataset.batch(slice(start, start + EVAL_BATCH))
                if queries is not None:
                    batch["query_vec"] = queries[batch["query_text"]]
                    batch["product_vec"] = products[batch["product_text"]]
                for name, value in module.predict_scores(batch).items():
                    parts.setdefault(name, []).append(value.float().numpy())
        if not parts:
            return {name: np.zeros(lists.mask.shape) for name in ("score", *module.tasks)}
        return {name: np.concatenate(values) for name, values in parts.items()}

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

        hp = read_json(folder / "module.json")
        self.module_ = LtrModule(**hp)
        self.module_.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        self.module_.eval()


def from_lightning_checkpoint(path: str | Path) -> MMoERanker:
    """The MMoE of an ``ltr fit`` checkpoint (``.ckpt``) as a ranker: its hyper-parameters,
    weights and data-module arguments (``data_config_``). Read with
    ``torch.load(weights_only=True)``: tensors and plain values only, never code. The
    preprocessing is not in the checkpoint; :func:`ltr.serving.export_package` rebuilds it
    from the data arguments and checks it."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise DataValidationError(str(path), "does not exist") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling or format error
        raise DataValidationError(str(path), f"cannot be read as a Lightning checkpoint: "
                                  f"{str(exc).splitlines()[0]}") from exc
    for key in ("hyper_parameters", "state_dict"):
        if key not in ckpt:
            raise DataValidationError(str(path), f"is not a Lightning checkpoint of ltr fit "
                                      f"(no '{key}')", column=key)
    hp = {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")}
    if hp.get("trainable_layers"):
        raise ConfigError("model.trainable_layers", f"{path} fine-tunes the text encoder "
                          f"({hp['trainable_layers']} layers); exporting fine-tuned encoders "
                          "is not supported yet: export a frozen-encoder model")
    module = LtrModule(**hp)
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("text_branch.")}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataValidationError(str(path), f"weights do not fit the model its "
                                  f"hyper-parameters describe: {exc}") from exc
    module.eval()
    cls = MMoERanker if module.use_text else TabularMMoERanker
    params = {k: v for k, v in hp.items() if k not in ("feature_dims", "use_text")}
    ranker = cls(**params, use_text=module.use_text)
    ranker.module_ = module
    dims = hp["feature_dims"]
    ranker.input_widths_ = {"numeric": int(dims["n_numeric"]),
                            "categorical": len(dims["cardinalities"])}
    from ltr.rankers.base import _json_safe

    data = {k: v for k, v in (ckpt.get("datamodule_hyper_parameters") or {}).items()
            if not k.startswith("_")}
    ranker.data_config_ = _json_safe({**data, "tasks": list(module.tasks)})
    ranker.fitted_ = True
    return ranker


class TabularMMoERanker(MMoERanker):
    """The MMoE without any text feature."""

    kind = "mmoe_tabular"
    use_text_default = False

