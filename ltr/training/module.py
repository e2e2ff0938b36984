"""The Lightning module of the multi-task MMoE ranker.

Inputs per list slot: the tabular encoding (numeric features + categorical embeddings,
customer features included: personalisation) concatenated with text interaction features
of the query and product embeddings (projected to ``text_proj`` dims). The MMoE
(:mod:`ltr.models.mmoe`) gives one output per task; a *wide* term adds
``a_t * cos(q, p) + b_t`` to each task output, so the semantic match reaches every output
directly. Each task has its own loss over the query group (:mod:`ltr.losses`), weighted
fixed or by learned uncertainty.

Ranking score at inference: ``sum_t score_weights[t] * output_t`` (task logits / scores).

Metrics (:mod:`ltr.metrics`), logged per epoch:
* ``val/ndcg@10``: NDCG@10 of the ranking score against graded engagement
  (0 none, 1 click, 2 add-to-cart, 3 purchase) on validation sessions, and against the
  derived relevance grade on candidate-pool lists (validation queries, with folds);
  early stopping and checkpoints watch it;
* ``val/mrr@10_<task>`` for each binary task;
* in test: the same on test sessions, plus ``test/ndcg@10_human`` on the judged pools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.features.spec import BINARY_TASKS, check_tasks
from ltr.losses.registry import get_loss
from ltr.losses.weighting import FixedWeighting, UncertaintyWeighting
from ltr.metrics import mrr, ndcg
from ltr.models.blocks import TabularEncoder
from ltr.models.mmoe import MMoE
from ltr.text.interactions import cosine
from ltr.training.lists import engagement_grade

DEFAULT_LOSSES = {"click": "bce", "add_to_cart": "bce", "purchase": "bce",
                  "relevance": "lambda_ndcg"}


class LtrModule(pl.LightningModule):
    """Multi-task MMoE ranker over tabular and text features.

    Args:
        tasks: subset of click, add_to_cart, purchase, relevance.
        losses: loss name per task (``bce``, ``mse``, ``softmax_ce``, ``listnet``,
            ``lambda_ndcg``); defaults: BCE for binary tasks, LambdaLoss for relevance.
        task_weighting: ``fixed`` (``task_weights``) or ``uncertainty`` (learned).
        task_weights: weight per task for ``fixed`` (default 1 each).
        score_weights: weight per task output in the ranking score (default 1 each).
        use_text: feed text interaction features (needs data.text).
        interactions: which of cosine, product, abs_diff, concat.
        text_proj: width the interaction features are projected to (0: no projection).
        trainable_layers: top encoder layers fine-tuned (0: frozen, embeddings cached).
        n_experts, bottom, expert_hidden, tower_hidden, dropout: MMoE shape.
        position_tower: additive position-bias tower on the click logit in training.
        lr, weight_decay: AdamW.
        feature_dims: filled in from the data module (numeric width, cardinalities,
            text dim); do not set by hand.
    """

    def __init__(self, tasks: list[str] | None = None, losses: dict[str, str] | None = None,
                 task_weighting: str = "fixed", task_weights: dict[str, float] | None = None,
                 score_weights: dict[str, float] | None = None, use_text: bool = True,
                 interactions: list[str] | None = None, text_proj: int = 32,
                 trainable_layers: int = 0, n_experts: int = 4,
                 bottom: list[int] | None = None, expert_hidden: list[int] | None = None,
                 tower_hidden: list[int] | None = None, dropout: float = 0.1,
                 position_tower: bool = True, lr: float = 1e-3, weight_decay: float = 1e-5,
                 feature_dims: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tasks = check_tasks(tasks or list(DEFAULT_LOSSES), "model.tasks")
        losses = {**{t: DEFAULT_LOSSES[t] for t in self.tasks}, **(losses or {})}
        stray = set(losses) - set(self.tasks)
        if stray:
            raise ConfigError(f"model.losses.{sorted(stray)[0]}", "is not one of model.tasks")
        self.loss_fns = {t: get_loss(losses[t], f"model.losses.{t}") for t in self.tasks}
        if task_weighting == "fixed":
            self.weighting: nn.Module = FixedWeighting(task_weights or {}, tasks=self.tasks)
        elif task_weighting == "uncertainty":
            self.weighting = UncertaintyWeighting(self.tasks)
        else:
            raise ConfigError("model.task_weighting",
                              f"must be 'fixed' or 'uncertainty', got {task_weighting!r}")
        self.score_weights = {**{t: 1.0 for t in self.tasks}, **(score_weights or {})}
        stray = set(self.score_weights) - set(self.tasks)
        if stray:
            raise ConfigError(f"model.score_weights.{sorted(stray)[0]}", "is not a task")
        if trainable_layers < 0:
            raise ConfigError("model.trainable_layers", "must be >= 0")
        dims = feature_dims or {}
        for key in ("n_numeric", "cardinalities"):
            if key not in dims:
                raise ConfigError(f"model.feature_dims.{key}", "missing: the data module "
                                  "fills feature_dims; build the model through it")
        self.use_text = bool(use_text)
        text_dim = int(dims.get("text_dim") or 0)
        if self.use_text and not text_dim:
            raise ConfigError("model.use_text", "is true but the data has no text "
                              "embeddings (set data.text)")
        self.tabular = TabularEncoder(int(dims["n_numeric"]), list(dims["cardinalities"]))
        in_dim = self.tabular.out_dim
        self.interaction = self.text_proj = None
        if self.use_text:
            from ltr.text import InteractionFeatures

            self.interaction = InteractionFeatures(interactions or ["cosine", "product",
                                                                   "abs_diff"],
                                                   text_dim, "model.interactions")
            width = self.interaction.output_dim
            if text_proj:
                self.text_proj = nn.Sequential(nn.Linear(width, text_proj), nn.ReLU())
                width = text_proj
            in_dim += width
        self.mmoe = MMoE(in_dim, self.tasks, bottom if bottom is not None else [128], n_experts,
                         expert_hidden, tower_hidden, dropout, position_tower)
        # wide path: each task output also gets a learned multiple of the raw cosine, so
        # the semantic match reaches the outputs directly, not only through the experts
        self.text_wide = nn.Linear(1, len(self.tasks)) if self.use_text else None
        self.text_branch: nn.Module | None = None
        self._sums: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ text
    def attach_text(self, branch: nn.Module) -> None:
        """Give the module its text lookup (frozen tables or fine-tuned top layers)."""
        self.text_branch = branch

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.use_text and self.text_branch is None and dm is not None:
            self.attach_text(dm.text_branch(self.hparams.trainable_layers))

    def on_fit_start(self) -> None:
        """Save the fitted preprocessing beside the logs (``preprocessor.json``): the same
        transform must be applied at inference."""
        dm = getattr(self.trainer, "datamodule", None)
        folder = self.trainer.log_dir or self.trainer.default_root_dir
        if dm is not None and hasattr(dm, "prepared") and folder and self.trainer.is_global_zero:
            dm.prepared.preprocessor.save(Path(folder) / "preprocessor.json")

    # ------------------------------------------------------------------ forward
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Task outputs ``{task: [B, L]}``. Text comes from the attached branch via
        ``query_text``/``product_text`` indices, or directly as ``query_vec`` ``[B, d]`` and
        ``product_vec`` ``[B, L, d]`` (no module state involved: safe across threads)."""
        x = self.tabular(batch["numeric"], batch["categorical"])
        if self.use_text:
            if "query_vec" in batch:  # embeddings given with the batch (ranking services)
                q, p = batch["query_vec"], batch["product_vec"]
            elif self.text_branch is None:
                raise RuntimeError("text features are on but no text branch is attached")
            else:
                q, p = self.text_branch(batch["query_text"], batch["product_text"])
            q = q.unsqueeze(1).expand_as(p)
            t = self.interaction(q, p)
            x = torch.cat([x, self.text_proj(t) if self.text_proj is not None else t], dim=-1)
            out = self.mmoe(x, batch.get("position"))
            wide = self.text_wide(cosine(q, p).unsqueeze(-1))
            return {task: out[task] + wide[..., i] for i, task in enumerate(self.tasks)}
        return self.mmoe(x, batch.get("position"))

    def score(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ranking score: weighted sum of task outputs."""
        return sum(self.score_weights[t] * outputs[t] for t in self.tasks if
                   self.score_weights[t] != 0)

    def predict_scores(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eval-mode outputs and score for a batch (no position term)."""
        out = self(batch)
        return {"score": self.score(out), **out}

    # ------------------------------------------------------------------ training
    def _losses(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        losses = {}
        for t in self.tasks:
            y = batch[f"y_{t}"]
            valid = batch["mask"] & torch.isfinite(y)
            losses[t] = self.loss_fns[t](out[t], torch.nan_to_num(y), valid)
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        losses = self._losses(batch, out)
        total = self.weighting(losses)
        n = batch["mask"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=n)
        for t, v in losses.items():
            self.log(f"train/loss_{t}", v, batch_size=n)
        return total

    def configure_optimizers(self):
        """AdamW; the learned task log-variances (uncertainty weighting) get no weight
        decay, which would pull every task weight back towards 1."""
        weighting = {id(p) for p in self.weighting.parameters()}
        params = [p for p in self.parameters() if id(p) not in weighting]
        groups = [{"params": params, "weight_decay": self.hparams.weight_decay}]
        if weighting:
            groups.append({"params": list(self.weighting.parameters()), "weight_decay": 0.0})
        return torch.optim.AdamW(groups, lr=self.hparams.lr)

    # ------------------------------------------------------------------ evaluation
    def _accumulate(self, name: str, values: np.ndarray, included: np.ndarray) -> None:
        s = self._sums.setdefault(name, [0.0, 0.0])
        s[0] += float(values[included].sum())
        s[1] += float(included.sum())

    def _evaluate_batch(self, batch: dict[str, torch.Tensor], prefix: str,
                        dataloader_idx: int = 0) -> None:
        out = self.predict_scores(batch)
        score = out["score"].detach().float().cpu().numpy()
        mask = batch["mask"].cpu().numpy()
        if "y_human" in batch:
            human = batch["y_human"].cpu().numpy()
            valid = mask & np.isfinite(human)
            for suffix, gain in (("", "exponential"), ("_linear", "linear")):
                r = ndcg(score, np.nan_to_num(human), valid, k=10, gain=gain)
                self._accumulate(f"{prefix}/ndcg@10_human{suffix}", r.values, r.included)
            return
        labels = {t: batch[f"y_{t}"].cpu().numpy() for t in BINARY_TASKS
                  if f"y_{t}" in batch}
        target = engagement_grade(labels, mask.shape)
        known = np.isfinite(target)
        target = np.nan_to_num(target)
        if "y_relevance" in batch:  # candidate-pool lists: the derived relevance grade
            rel = batch["y_relevance"].cpu().numpy()
            pool = ~known.any(axis=1, keepdims=True)
            target = np.where(pool, np.nan_to_num(rel), target)
            known = np.where(pool, np.isfinite(rel), known)
        valid = mask & known
        if valid.any():
            r = ndcg(score, target, valid, k=10)
            self._accumulate(f"{prefix}/ndcg@10", r.values, r.included)
        for task in BINARY_TASKS:
            key = f"y_{task}"
            if key in batch:
                y = batch[key].cpu().numpy()
                v = mask & np.isfinite(y)
                r = mrr(score, np.nan_to_num(y), v, k=10)
                self._accumulate(f"{prefix}/mrr@10_{task}", r.values, r.included)

    def _flush(self) -> dict[str, float]:
        logged = {}
        for name, (total, count) in self._sums.items():
            value = total / count if count else float("nan")
            self.log(name, value, prog_bar=name.endswith("ndcg@10"), sync_dist=True)
            logged[name] = value
        self._sums = {}
        return logged

    def on_validation_epoch_start(self) -> None:
        self._sums = {}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_batch(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._flush()

    def on_test_epoch_start(self) -> None:
        self._sums = {}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int,
                  dataloader_idx: int = 0) -> None:
        self._evaluate_batch(batch, "test", dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._flush()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int,
                     dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        out = self.predict_scores(batch)
        return {k: v.detach().cpu() for k, v in out.items()} | {"index": batch["index"].cpu()}
