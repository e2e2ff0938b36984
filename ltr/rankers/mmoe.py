"""The MMoE (full, and tabular-only) behind the common ranker interface.

Training is the Lightning module of :mod:`ltr.training.module` on the data module
:meth:`~ltr.training.datamodule.LtrDataModule.from_prepared` builds over the shared
:class:`~ltr.training.prepare.PreparedData`, with early stopping on ``val/ndcg@10``; the
best epoch's weights (and its validated ranking score) are kept. With
``trainable_layers > 0`` the top layers of the text encoder are fine-tuned (query tower,
or both towers with ``tuned_tower: shared``).
Saved as safetensors (weights) + JSON (the module's constructor arguments), and the
fine-tuned encoder, when there is one, as safetensors + tokenizer in ``tuned_encoder/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltr.errors import ConfigError, DataValidationError
from ltr.io import atomic_path, read_json, write_json
from ltr.rankers.base import Capabilities, Ranker
from ltr.training.lists import ListDataset
from ltr.training.module import LtrModule

EVAL_BATCH = 256  # lists per forward pass when scoring
TUNED_DIR = "tuned_encoder"
TRAINER_KEYS = {"max_epochs": 8, "patience": 3, "batch_size": 64, "seed": 0,
                "sampling": "diverse"}


class MMoERanker(Ranker):
    """Multi-task MMoE over tabular + text features. Parameters: any
    :class:`~ltr.training.module.LtrModule` argument plus ``max_epochs``, ``patience``,
    ``batch_size``, ``seed``, ``sampling``."""

    kind = "mmoe"
    capabilities = Capabilities(text="optional", multi_task=True, prunable="lightning", streams=True)
    use_text_default = True
    backbone = "mmoe"

    def __init__(self, **params: Any) -> None:
        from ltr.config_schema import validate
        from ltr.training.sections import ranker_schema

        validate(ranker_schema(), params, "model.params")  # the model section + loop keys
        params = {**TRAINER_KEYS, "use_text": self.use_text_default,
                  "backbone": self.backbone, **params}
        super().__init__(**params)
        self.callbacks: list[Any] = []  # extra Lightning callbacks (e.g. Optuna pruning)
        self.module_: LtrModule | None = None
        self.train_seconds_ = float("nan")

    @classmethod
    def param_names(cls) -> set[str]:
        """The trainer keys and every :class:`LtrModule` argument."""
        import inspect

        args = set(inspect.signature(LtrModule.__init__).parameters) - {"self",
                                                                        "feature_dims"}
        return set(TRAINER_KEYS) | args

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
        if self.params.get("trainable_layers") and getattr(data, "encoder", None) is None:
            raise ConfigError("model.params.trainable_layers", "fine-tuning needs the text "
                              "encoder the data was prepared with (data.text)")
        kwargs = self._module_kwargs()
        t0 = time.perf_counter()
        _, module = fit_and_test(dm, kwargs, max_epochs=p["max_epochs"], patience=p["patience"],
                                 seed=p["seed"], run_test=False, callbacks=self.callbacks)
        self.train_seconds_ = time.perf_counter() - t0
        self.module_ = module.eval()

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        return self._score_outputs(lists, data)["score"]

    def all_outputs(self, lists: Any, data: Any) -> dict[str, np.ndarray]:
        """Every output the ranking score may mix (:attr:`LtrModule.output_names`: the
        evidence and the task outputs) and the score, ``[G, L]`` each: for diagnosis."""
        self._check_fitted("score")
        return self._score_outputs(lists, data, evidence=True)

    def _score_outputs(self, lists: Any, data: Any, evidence: bool = False
                       ) -> dict[str, np.ndarray]:
        """Score and task outputs (and the evidence outputs with ``evidence``),
        ``EVAL_BATCH`` lists at a time. Text embeddings go in with each batch (looked up in
        ``data``'s tables), so the module is never changed and concurrent calls are
        safe."""
        module = self.module_
        queries = products = tuned_q = tuned_p = None
        if module.use_text:
            if getattr(data, "query_embeddings", None) is None:
                raise ConfigError("data.text", "this ranker uses text (use_text: true) but "
                                  "the data has no text embeddings")
            queries = torch.from_numpy(np.ascontiguousarray(data.query_embeddings, np.float32))
            products = torch.from_numpy(np.ascontiguousarray(data.product_embeddings,
                                                             np.float32))
            if module.tunes_text:
                tuned_q, tuned_p = self._tuned_tables(lists, data)
        parts: dict[str, list[np.ndarray]] = {}
        dataset = ListDataset(lists)
        with torch.inference_mode():
            for start in range(0, len(lists), EVAL_BATCH):
                batch = dataset.batch(slice(start, start + EVAL_BATCH))
                if queries is not None:
                    batch["query_vec"] = queries[batch["query_text"]]
                    batch["product_vec"] = products[batch["product_text"]]
                if tuned_q is not None:
                    batch["query_vec_tuned"] = tuned_q[batch["query_text"]]
                    if tuned_p is not None:
                        batch["product_vec_tuned"] = tuned_p[batch["product_text"]]
                values = module.predict_scores(batch)
                if evidence:
                    values.update(module.outputs(batch)[1])
                for name, value in values.items():
                    parts.setdefault(name, []).append(value.float().numpy())
        if not parts:
            return {name: np.zeros(lists.mask.shape) for name in ("score", *module.tasks)}
        return {name: np.concatenate(values) for name, values in parts.items()}

    def _tuned_tables(self, lists: Any, data: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tuned embeddings laid out like ``data``'s tables (rows the lists use are
        encoded; the others stay 0). A request batch may carry them ready
        (``tuned_query_embeddings`` / ``tuned_product_embeddings``)."""
        ready = getattr(data, "tuned_query_embeddings", None)
        if ready is not None:
            p = getattr(data, "tuned_product_embeddings", None)
            return (torch.from_numpy(np.ascontiguousarray(ready, np.float32)),
                    None if p is None else torch.from_numpy(np.ascontiguousarray(p, np.float32)))
        module = self.module_
        used_q = np.unique(lists.query_text)
        used_p = np.unique(lists.product_text[lists.mask])
        shared = module.hparams.tuned_tower == "shared"
        q_emb, p_emb = module.tuned_vectors(
            [data.query_texts[i] for i in used_q],
            [data.product_texts[i] for i in used_p] if shared else None)
        q = np.zeros(data.query_embeddings.shape, np.float32)
        q[used_q] = q_emb
        p = None
        if p_emb is not None:
            p = np.zeros(data.product_embeddings.shape, np.float32)
            p[used_p] = p_emb
        return torch.from_numpy(q), None if p is None else torch.from_numpy(p)

    def _save_state(self, folder: Path) -> None:
        from safetensors.torch import save_file

        hp = dict(self.module_.hparams)
        write_json(hp, folder / "module.json")
        # copies: tied weights (e.g. TabNet's shared GLU layers) share memory, which
        # safetensors refuses; every key is still written and loads strictly
        state = {k: v.detach().clone(memory_format=torch.contiguous_format)
                 for k, v in self.module_.state_dict().items()
                 if not k.startswith("text_branch.")}
        with atomic_path(folder / "weights.safetensors") as tmp:
            save_file(state, str(tmp))
        if self.module_.tunes_text:
            write_json(save_tuned_encoder(self.module_.tuned_encoder, folder / TUNED_DIR),
                       folder / "tuned_encoder.json")

    def _load_state(self, folder: Path) -> None:
        from safetensors.torch import load_file

        hp = read_json(folder / "module.json")
        self.module_ = LtrModule(**hp)
        self.module_.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        if self.module_.tunes_text:
            info = read_json(folder / "tuned_encoder.json")
            self.module_.set_tuned_encoder(load_tuned_encoder(folder / TUNED_DIR, info))
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
    module = LtrModule(**hp)
    data_hp = {k: v for k, v in (ckpt.get("datamodule_hyper_parameters") or {}).items()
               if not k.startswith("_")}
    if module.tunes_text:
        module.set_tuned_encoder(_tuned_from_checkpoint(ckpt["state_dict"], hp, data_hp, path))
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("text_branch.")}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataValidationError(str(path), f"weights do not fit the model its "
                                  f"hyper-parameters describe: {exc}") from exc
    module.eval()
    cls = PLERanker if module.hparams.get("backbone") == "ple" else \
        MMoERanker if module.use_text else TabularMMoERanker
    params = {k: v for k, v in hp.items() if k not in ("feature_dims", "use_text")}
    ranker = cls(**params, use_text=module.use_text)
    ranker.module_ = module
    dims = hp["feature_dims"]
    ranker.input_widths_ = {"numeric": int(dims["n_numeric"]),
                            "categorical": len(dims["cardinalities"])}
    from ltr.rankers.base import _json_safe

    ranker.data_config_ = _json_safe({**data_hp, "tasks": list(module.tasks)})
    ranker.pipeline_path_ = ckpt.get("ltr_pipeline")  # the fitted feature pipeline, if any
    ranker.fitted_ = True
    return ranker


class TabularMMoERanker(MMoERanker):
    """The MMoE without any text feature."""

    kind = "mmoe_tabular"
    use_text_default = False


class PLERanker(MMoERanker):
    """Progressive Layered Extraction (:mod:`ltr.models.ple`) instead of the MMoE: task
    and shared experts in stacked levels; everything else (features, tasks, losses, the
    validated ranking score, export) is the MMoE's."""

    kind = "ple"
    backbone = "ple"



def _tuned_from_checkpoint(state: dict[str, Any], hp: dict[str, Any], data_hp: dict[str, Any],
                           path: Path):
    """The fine-tuned encoder of an ``ltr fit`` checkpoint: the base encoder of its data
    settings with the checkpoint's tuned weights (``text_branch.*``) loaded into it."""
    from ltr.text import TextConfig, TextEncoder

    if not data_hp.get("text"):
        raise DataValidationError(str(path), "fine-tunes its text encoder but records no "
                                  "data.text settings to rebuild the encoder from",
                                  column="datamodule_hyper_parameters")
    encoder = TextEncoder.from_config(TextConfig.from_mapping(
        {**data_hp["text"], "cache_dir": None, "progress": False}, "data.text"))
    prefix = "text_branch.encoder.model." if hp.get("tuned_tower", "query") == "query" \
        else "text_branch.queries.encoder.model."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise DataValidationError(str(path), "fine-tunes its text encoder but holds no "
                                  f"tuned encoder weights ({prefix}*)", column="state_dict")
    try:
        encoder.model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise DataValidationError(str(path), f"its tuned encoder weights do not fit "
                                  f"{data_hp['text'].get('model_name')}: {exc}") from exc
    encoder.eval()
    return encoder


def save_tuned_encoder(encoder, folder: Path) -> dict[str, Any]:
    """Write a fine-tuned encoder (safetensors + tokenizer, no pickle); return its
    description (pooling, normalisation, maximum length, fingerprint)."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(str(folder), safe_serialization=True)
    encoder.tokenizer.save_pretrained(str(folder))
    for stray in folder.glob("*.bin"):
        stray.unlink()
    info = {"model_name": encoder.name, "pooling": encoder.pooling,
            "normalize": encoder.normalize, "max_length": encoder.max_length,
            "dim": encoder.dim}
    info["fingerprint"] = load_tuned_encoder(folder, info, check=False).fingerprint()
    return info


def load_tuned_encoder(folder: Path, info: dict[str, Any], check: bool = True):
    """A fine-tuned encoder written by :func:`save_tuned_encoder`, checked against its
    recorded fingerprint."""
    from ltr.serving.encoder import _load_encoder

    encoder = _load_encoder(folder, info)
    if check and encoder.fingerprint() != info.get("fingerprint"):
        raise DataValidationError(str(folder), "the fine-tuned encoder's weights or tokenizer "
                                  "changed since it was saved (fingerprint mismatch)",
                                  column="fingerprint")
    return encoder.eval()
