r"""The Lightning module of every neural ranker: multi-task (MMoE, PLE) and single-score
(DCN-V2, TabNet, FT-Transformer).

**Multi-task backbones** (``model.backbone``: ``mmoe``, ``ple``). Inputs per list slot:
the tabular encoding (numeric features + categorical embeddings, customer features
included: personalisation) concatenated with text interaction features of the query and
product embeddings (projected to ``text_proj`` dims). The MMoE
(:mod:`ltr.models.mmoe`) gives one output per task; a *wide* term adds
``a_t * cos(q, p) + b_t`` to each task output, so the semantic match reaches every output
directly. Each task has its own loss over the query group (:mod:`ltr.losses`), weighted
fixed or by learned uncertainty.

**Residual over the zero-shot cosine.** The last layer of every task tower starts at
zero and the wide term at ``cosine_scale * cos(q, p)``, so before any step each output
ranks exactly as the zero-shot cosine; training moves an output away from it only where
the labels say so.

**Ranking score**, chosen on validation (:mod:`ltr.training.score_selection`):
``sum_k w_k * output_k`` over the cosine and the task outputs, with one weight vector for
*cold* lists (query without (query, product) history) and one for *warm* lists, fitted at
the end of every validation epoch (``score_selection: validation``, the default) and saved
with the weights (buffers ``score_weights_cold`` / ``score_weights_warm``). With
``score_selection: fixed`` both are ``score_weights`` (cosine weight 0).

Metrics (:mod:`ltr.metrics`), logged per epoch:
* ``val/ndcg@10_cold`` and ``val/ndcg@10_warm``: NDCG@10 of the ranking score on the cold
  and warm validation lists against their target (the derived relevance grade on
  candidate pools; graded engagement — 0 none, 1 click, 2 add-to-cart, 3 purchase — on
  validation sessions), ``val/ndcg@10_score`` their mean;
  ``val/ndcg@10_<case>_<output>`` for each output alone;
* ``val/ndcg@10``, what early stopping and checkpoints watch: the mean over the two cases
  of the learned relevance output's NDCG@10 (the model itself, on queries it never trained
  on; the served score is chosen for each epoch on top of it), or, without the relevance
  task, of the ranking score's;
* ``val/mrr@10_<task>`` for each binary task on validation sessions;
* in test, every metric of the one evaluation engine (:mod:`ltr.evaluation.engine`):
  on test sessions ``test/engagement_ndcg@10``, ``test/mrr@10_<task>``,
  ``test/auc_<task>``; on the judged pools of queries never trained on
  ``test/human_ndcg@10`` (and ``@5``, ``_linear``); on those of the queries trained on
  ``test/known_human_ndcg@10`` with ``test/known_labels_human_ndcg@10`` (the training
  labels themselves on the same pools).

**Single-score backbones** (``model.backbone``: ``dcnv2``, ``tabnet``, ``ft_transformer``;
:data:`ltr.models.registry.SCORERS`), the baselines of :mod:`ltr.rankers.neural`. The
backbone is a row scorer :math:`f` with its own categorical embeddings; a batch of ``B``
padded lists of ``L`` slots is flattened to ``B * L`` rows and scored

.. math::
    s_{bl} = f\big([\,x_{bl} \,;\, \cos(q_b, p_{bl})\,],\ c_{bl}\big),

with :math:`x` the preprocessed numeric features, :math:`c` the categorical codes and
the cosine of the frozen query and product embeddings appended only with ``use_text``.
The one task is ``relevance``: its loss (``losses.relevance``, default ``lambda_ndcg``)
compares the ``[B, L]`` scores with the derived relevance grade within each list, slots
without a grade left out. No tabular encoder, text interaction, wide term, evidence or
score selection: the ranking score is :math:`s`. In validation
``val/ndcg@10`` is NDCG@10 of :math:`s` against the relevance grade over every
validation list, pooled over processes:
:math:`\sum_p \sum_{g \in G_p} \mathrm{NDCG@10}_g \,/\, \sum_p |G_p|` (each process
sums over its lists :math:`G_p` and counts them; sums and counts are added, then divided);
``val/mrr@10_<task>`` as for the multi-task backbones.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError
from ltr.features.spec import BINARY_TASKS, check_tasks
from ltr.losses.contrastive import lce_loss
from ltr.losses.registry import get_loss
from ltr.losses.weighting import FixedWeighting, UncertaintyWeighting
from ltr.metrics import mrr, ndcg, neutral_order, reorder
from ltr.models.blocks import TabularEncoder
from ltr.models.registry import BACKBONES, SCORERS, build_backbone, build_scorer
from ltr.text.interactions import cosine
from ltr.training.lists import engagement_grade
from ltr.training.score_selection import CASES, REFERENCES, select_weights


def check_distill(value: dict[str, Any] | None) -> dict[str, Any]:
    """``model.distill`` with its defaults, checked."""
    d = {"rounds": 0, "alpha": 0.5, "every": 2, **(value or {})}
    unknown = set(d) - {"rounds", "alpha", "every"}
    if unknown:
        raise ConfigError(f"model.distill.{sorted(unknown)[0]}",
                          "unknown key; known: ['alpha', 'every', 'rounds']")
    if not isinstance(d["rounds"], int) or d["rounds"] < 0:
        raise ConfigError("model.distill.rounds", f"must be an integer >= 0, got {d['rounds']!r}")
    if not isinstance(d["every"], int) or d["every"] < 1:
        raise ConfigError("model.distill.every", f"must be an integer >= 1, got {d['every']!r}")
    if not 0.0 <= float(d["alpha"]) <= 1.0:
        raise ConfigError("model.distill.alpha", f"must be in [0, 1], got {d['alpha']!r}")
    return d


DEFAULT_LOSSES = {"click": "bce", "add_to_cart": "bce", "purchase": "bce",
                  "relevance": "lambda_ndcg"}


def default_tasks(backbone: str) -> list[str]:
    """The tasks of a backbone when ``model.tasks`` is not given: all four, or relevance
    alone for a single-score backbone."""
    return ["relevance"] if backbone in SCORERS else list(DEFAULT_LOSSES)

# arguments only multi-task backbones read: a single-score backbone refuses other values
# than the defaults (they would be ignored)
MULTI_TASK_ONLY = ("score_weights", "interactions", "text_proj", "trainable_layers",
                   "tuned_tower", "lce_weight", "lce_temperature", "distill", "n_experts",
                   "bottom", "expert_hidden", "tower_hidden", "dropout", "position_tower",
                   "score_selection", "score_outputs", "cosine_scale")


class LtrModule(pl.LightningModule):
    """Multi-task (MMoE, PLE) or single-score (DCN-V2, TabNet, FT-Transformer) ranker over
    tabular and text features (see the module docstring).

    Args:
        tasks: subset of click, add_to_cart, purchase, relevance (a single-score
            backbone: relevance only, the default there).
        losses: loss name per task (``bce``, ``mse``, ``softmax_ce``, ``listnet``,
            ``lambda_ndcg``); defaults: BCE for binary tasks, LambdaLoss for relevance.
        task_weighting: ``fixed`` (``task_weights``) or ``uncertainty`` (learned).
        task_weights: weight per task for ``fixed`` (default 1 each).
        score_weights: weight per task output in the ranking score with
            ``score_selection: fixed``, and the starting weights otherwise (default 1 each).
        score_selection: ``validation`` (fit the score's weights on the validation lists,
            per case) or ``fixed`` (``score_weights``).
        score_outputs: the outputs the selected score may use (default: the relevance
            evidence — cosine, history_label, neighbour_label — and the relevance output;
            without the relevance task, every task output). Engagement outputs (click,
            add-to-cart, purchase) predict what users do, not what is relevant: on the
            benchmarks they won validation mixes and lost on relevance grades.
        cosine_scale: starting weight of the cosine in every task output.
        use_text: feed text interaction features (needs data.text).
        interactions: which of cosine, product, abs_diff, concat.
        text_proj: width the interaction features are projected to (0: no projection).
        trainable_layers: top encoder layers fine-tuned (0: frozen, embeddings cached).
        tuned_tower: ``query`` (default: a copy of the encoder tuned for queries only, the
            catalog's embeddings stay fixed) or ``shared`` (one tuned encoder for both).
        lce_weight: weight of the Localized Contrastive Estimation loss on the tuned text
            embeddings (:func:`ltr.losses.lce`; needs ``trainable_layers > 0``), 0: off.
        lce_temperature: its softmax temperature.
        distill: multi-round self-distillation against label noise, ``{rounds, alpha,
            every}``: after every ``every`` epochs (``rounds`` times) the relevance target of
            the training lists becomes ``alpha * label + (1 - alpha) * teacher``, the
            teacher being the model as it is then (its relevance output, mapped to the
            label scale by rank within the list).
        backbone: a registered backbone (:mod:`ltr.models.registry`): multi-task ``mmoe``
            (multi-gate mixture of experts) or ``ple`` (progressive layered extraction), or
            single-score ``dcnv2``, ``tabnet``, ``ft_transformer`` (which read only
            ``tasks``, ``losses``, the task weighting, ``use_text``, ``backbone_args``,
            ``lr`` and ``weight_decay``).
        backbone_args: the backbone's own arguments (PLE: ``n_shared``, ``n_task``,
            ``levels``; single-score: the ``arch`` keys of docs/rankers_neural.md).
        n_experts: the MMoE's experts (kept for configs written before backbones).
        bottom, expert_hidden, tower_hidden, dropout: the experts' shape.
        position_tower: additive position-bias tower on the click logit in training.
        lr, weight_decay: AdamW.
        feature_dims: filled in from the data module (numeric width, cardinalities,
            text dim); do not set by hand. (A single-score backbone does not need the
            text dim: it reads only the cosine.)
    """

    # numeric constraints of the arguments (ltr.checks), checked before anything is built
    RANGES = {"lr": Range(gt=0), "weight_decay": Range(ge=0), "dropout": Range(ge=0, lt=1),
              "n_experts": Range(ge=1, integer=True), "text_proj": Range(ge=0, integer=True),
              "trainable_layers": Range(ge=0, integer=True), "lce_weight": Range(ge=0),
              "lce_temperature": Range(gt=0), "cosine_scale": Range(ge=0)}

    @classmethod
    def check_args(cls, args: dict[str, Any]) -> None:
        """The argument checks that need no data: ranges, task, loss, weighting and backbone
        names. ``ltr fit`` runs them before the data are prepared."""
        check_ranges(args, cls.RANGES, "model")
        backbone = args.get("backbone", "mmoe")
        if backbone not in BACKBONES and backbone not in SCORERS:
            raise ConfigError("model.backbone", f"unknown backbone {backbone!r}; choose one "
                              f"of {sorted(BACKBONES) + sorted(SCORERS)}")
        tasks = check_tasks(args.get("tasks") or default_tasks(backbone), "model.tasks")
        if backbone in SCORERS:
            cls._check_single_score(args, backbone, tasks)
        losses = args.get("losses") or {}
        stray = set(losses) - set(tasks)
        if stray:
            raise ConfigError(f"model.losses.{sorted(stray)[0]}", "is not one of model.tasks")
        for task, name in losses.items():
            get_loss(name, f"model.losses.{task}")
        weighting = args.get("task_weighting", "fixed")
        if weighting not in ("fixed", "uncertainty"):
            raise ConfigError("model.task_weighting",
                              f"must be 'fixed' or 'uncertainty', got {weighting!r}")

    @classmethod
    def _check_single_score(cls, args: dict[str, Any], backbone: str, tasks: list[str]
                            ) -> None:
        """A single-score backbone trains the relevance task alone and reads none of
        :data:`MULTI_TASK_ONLY` (each must keep its default)."""
        if tasks != ["relevance"]:
            raise ConfigError("model.tasks", f"the single-score backbone {backbone!r} trains "
                              f"one score on the relevance task: set [relevance], got {tasks}")
        defaults = inspect.signature(cls.__init__).parameters
        for key in MULTI_TASK_ONLY:
            if key in args and args[key] != defaults[key].default:
                raise ConfigError(f"model.{key}", f"is not read by the single-score backbone "
                                  f"{backbone!r} (multi-task backbones only); leave it out, "
                                  f"got {args[key]!r}")

    def __init__(self, tasks: list[str] | None = None, losses: dict[str, str] | None = None,
                 task_weighting: str = "fixed", task_weights: dict[str, float] | None = None,
                 score_weights: dict[str, float] | None = None, use_text: bool = True,
                 interactions: list[str] | None = None, text_proj: int = 32,
                 trainable_layers: int = 0, tuned_tower: str = "query",
                 lce_weight: float = 0.0, lce_temperature: float = 0.05,
                 distill: dict[str, Any] | None = None, backbone: str = "mmoe",
                 backbone_args: dict[str, Any] | None = None, n_experts: int = 4,
                 bottom: list[int] | None = None, expert_hidden: list[int] | None = None,
                 tower_hidden: list[int] | None = None, dropout: float = 0.1,
                 position_tower: bool = True, lr: float = 1e-3, weight_decay: float = 1e-5,
                 score_selection: str = "validation", score_outputs: list[str] | None = None,
                 cosine_scale: float = 5.0,
                 feature_dims: dict[str, Any] | None = None) -> None:
        self.check_args(locals())
        super().__init__()
        self.save_hyperparameters()
        # tasks, loss names and the weighting were checked by check_args
        self.tasks = check_tasks(tasks or default_tasks(backbone), "model.tasks")
        losses = {**{t: DEFAULT_LOSSES[t] for t in self.tasks}, **(losses or {})}
        self.loss_fns = {t: get_loss(losses[t], f"model.losses.{t}") for t in self.tasks}
        self.weighting: nn.Module = (
            FixedWeighting(task_weights or {}, tasks=self.tasks) if task_weighting == "fixed"
            else UncertaintyWeighting(self.tasks))
        self.score_weights = {**{t: 1.0 for t in self.tasks}, **(score_weights or {})}
        evidence_names = {"cosine", "text_similarity", "coverage", "history_label",
                          "history_behaviour", "neighbour_label"}
        stray = set(self.score_weights) - set(self.tasks) - evidence_names
        if stray:
            raise ConfigError(f"model.score_weights.{sorted(stray)[0]}", "is not a task or "
                              f"one of {sorted(evidence_names)}")
        if score_selection not in ("validation", "fixed"):
            raise ConfigError("model.score_selection",
                              f"must be 'validation' or 'fixed', got {score_selection!r}")
        if tuned_tower not in ("query", "shared"):
            raise ConfigError("model.tuned_tower", f"must be 'query' or 'shared', got "
                              f"{tuned_tower!r}")
        if lce_weight > 0 and not trainable_layers:  # its range: RANGES
            raise ConfigError("model.lce_weight", "must be >= 0, and > 0 only with "
                              "model.trainable_layers > 0 (it trains the text encoder)")
        self.distill = check_distill(distill)
        dims = feature_dims or {}
        for key in ("n_numeric", "cardinalities"):
            if key not in dims:
                raise ConfigError(f"model.feature_dims.{key}", "missing: the data module "
                                  "fills feature_dims; build the model through it")
        self.use_text = bool(use_text)
        self.single_score = backbone in SCORERS
        self.tabular: TabularEncoder | None = None
        self.interaction: nn.Module | None = None
        self.text_proj: nn.Module | None = None
        self.experts: nn.Module | None = None
        self.text_wide: nn.Linear | None = None
        self.scorer: nn.Module | None = None
        self.evidence: dict[str, dict[str, Any]] = {}
        self.lexical_weight = 0.0
        if self.single_score:  # with text, the cosine is one more numeric column
            self.scorer = build_scorer(backbone, int(dims["n_numeric"]) + self.use_text,
                                       dims["cardinalities"], backbone_args)
            self.output_names = list(self.tasks)
        else:
            self._build_multi_task(dims)
        start = torch.tensor([self.score_weights.get(n, 0.0) for n in self.output_names],
                             dtype=torch.float32)
        for case in CASES:
            self.register_buffer(f"score_weights_{case}", start.clone())
        if score_outputs is None:
            score_outputs = [n for n in self.output_names if n not in BINARY_TASKS] \
                if "relevance" in self.tasks else list(self.output_names)
        bad = [n for n in score_outputs if n not in self.output_names]
        if bad:
            raise ConfigError("model.score_outputs", f"{bad} not among the outputs "
                              f"{self.output_names}")
        self.score_menu = [n for n in self.output_names if n in score_outputs]
        self.selection_report: dict[str, Any] = {}
        self.text_branch: nn.Module | None = None  # tuned text (trainable_layers > 0)
        self.frozen_text: nn.Module | None = None  # precomputed embeddings
        self._tuned_encoder = None  # a loaded model's fine-tuned encoder
        self._distill_round = 0
        self._labels_before_distill: np.ndarray | None = None
        self._sums: dict[str, list[float]] = {}
        self._val_parts: list[dict[str, np.ndarray]] = []

    def _build_multi_task(self, dims: dict[str, Any]) -> None:
        """The tabular encoder, text interaction features, backbone and wide term of a
        multi-task backbone, and the outputs its ranking score may mix."""
        hp = self.hparams
        text_dim = int(dims.get("text_dim") or 0)
        if self.use_text and not text_dim:
            raise ConfigError("model.use_text", "is true but the data has no text "
                              "embeddings (set data.text)")
        self.tabular = TabularEncoder(int(dims["n_numeric"]), list(dims["cardinalities"]))
        in_dim = self.tabular.out_dim
        if self.use_text:
            from ltr.text import InteractionFeatures

            self.interaction = InteractionFeatures(hp.interactions or ["cosine", "product",
                                                                      "abs_diff"],
                                                   text_dim, "model.interactions")
            width = self.interaction.output_dim
            if hp.text_proj:
                self.text_proj = nn.Sequential(nn.Linear(width, hp.text_proj), nn.ReLU())
                width = hp.text_proj
            in_dim += width
        args = dict(hp.backbone_args or {})
        if hp.backbone == "mmoe":
            args.setdefault("n_experts", hp.n_experts)
        self.experts = build_backbone(
            hp.backbone, in_dim, self.tasks, args,
            bottom=hp.bottom if hp.bottom is not None else [128],
            expert_hidden=hp.expert_hidden, tower_hidden=hp.tower_hidden, dropout=hp.dropout,
            position_tower=hp.position_tower)
        # wide path: each task output also gets a learned multiple of the raw cosine, so
        # the semantic match reaches the outputs directly, not only through the experts
        if self.use_text:
            self.text_wide = nn.Linear(1, len(self.tasks))
            nn.init.constant_(self.text_wide.weight, float(hp.cosine_scale))
            nn.init.zeros_(self.text_wide.bias)
        for tower in self.experts.towers.values():  # residual: outputs start at the wide term
            nn.init.zeros_(tower[-1].weight)
            nn.init.zeros_(tower[-1].bias)
        self.evidence = {k: dict(v) for k, v in (dims.get("evidence") or {}).items()}
        self.lexical_weight = float(dims.get("lexical_weight") or 0.0)
        hybrid = self.use_text and "coverage" in self.evidence
        self.output_names = (["cosine"] if self.use_text else []) + \
            (["text_similarity"] if hybrid else []) + \
            (["tuned_cosine"] if self.use_text and hp.trainable_layers else []) + \
            list(self.evidence) + list(self.tasks)

    # ------------------------------------------------------------------ text
    def attach_text(self, frozen: nn.Module, tuned: nn.Module | None = None) -> None:
        """Give the module its text lookups: the frozen tables and, when fine-tuning, the
        tuned branch (:mod:`ltr.training.text_branch`)."""
        self.frozen_text = frozen
        self.text_branch = tuned

    @property
    def tunes_text(self) -> bool:
        return bool(self.use_text and self.hparams.trainable_layers)

    @property
    def tuned_encoder(self):
        """The fine-tuned :class:`ltr.text.TextEncoder` (None when the text is frozen)."""
        if not self.tunes_text:
            return None
        if self._tuned_encoder is not None:
            return self._tuned_encoder
        branch = self.text_branch
        if branch is None:
            return None
        return getattr(branch, "encoder", None) or branch.queries.encoder

    def set_tuned_encoder(self, encoder) -> None:
        """The fine-tuned encoder of a model loaded for inference (no training branch).
        Held outside the module's submodules: its weights are saved on their own."""
        object.__setattr__(self, "_tuned_encoder", encoder)

    def tuned_vectors(self, query_texts: list[str], product_texts: list[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
        """Tuned embeddings of query texts and, with a shared tuned tower, of product texts
        (``None`` with the query tower: products keep their frozen embeddings)."""
        enc = self.tuned_encoder
        if enc is None:
            raise RuntimeError("this model has no fine-tuned text encoder")
        was = enc.training
        enc.eval()
        try:
            q = enc.encode_unique(list(query_texts), progress=False)
            p = None
            if self.hparams.tuned_tower == "shared" and product_texts is not None:
                p = enc.encode_unique(list(product_texts), progress=False)
        finally:
            enc.train(was)
        return q, p

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.use_text and self.frozen_text is None and dm is not None:
            tuned = dm.text_branch(self.hparams.trainable_layers, self.hparams.tuned_tower) \
                if self.tunes_text else None
            self.attach_text(dm.frozen_text(), tuned)

    def on_fit_start(self) -> None:
        """Save the fitted preprocessing (``preprocessor.json``) and, when the run writes
        checkpoints, the whole fitted feature pipeline (``pipeline/``,
        :mod:`ltr.features.pipeline`) beside the logs:
        the same transform must be applied at inference, and ``ltr export`` reads the
        pipeline instead of preparing the data again (every checkpoint records where)."""
        dm = getattr(self.trainer, "datamodule", None)
        folder = self.trainer.log_dir or self.trainer.default_root_dir
        if dm is not None and hasattr(dm, "prepared") and folder and self.trainer.is_global_zero:
            dm.prepared.preprocessor.save(Path(folder) / "preprocessor.json")
            # the pipeline serves the checkpoints that record it: a run without checkpoints
            # (a ranker's fit, which keeps its own pipeline) has no use for a copy on disk
            if self.trainer.checkpoint_callback is not None:
                from ltr.features.pipeline import FittedPipeline

                path = FittedPipeline.from_prepared(dm.prepared).save(Path(folder) /
                                                                      "pipeline")
                self.pipeline_path = str(Path(path).resolve())

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False):
        """As :meth:`torch.nn.Module.load_state_dict`; weights saved before the backbone
        was named ``experts`` (``mmoe.*``, ltr <= the backbone registry) load too."""
        if any(k.startswith("mmoe.") for k in state_dict):
            state_dict = {("experts." + k[5:] if k.startswith("mmoe.") else k): v
                          for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the fitted pipeline's folder (a plain string) in the checkpoint."""
        path = getattr(self, "pipeline_path", None)
        if path:
            checkpoint["ltr_pipeline"] = path

    # ------------------------------------------------------------------ forward
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Task outputs ``{task: [B, L]}``. Text comes from the attached branch via
        ``query_text``/``product_text`` indices, or directly as ``query_vec`` ``[B, d]`` and
        ``product_vec`` ``[B, L, d]`` (no module state involved: safe across threads)."""
        return self.outputs(batch)[0]

    def outputs(self, batch: dict[str, torch.Tensor]
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(task outputs, evidence)``: the evidence the score may use besides the task
        outputs, each ``[B, L]``: the cosine (with text) and the label evidence columns
        (history label, neighbour label; a missing one counts as a label of 0)."""
        out, cos = self._task_outputs(batch)
        evidence = {} if cos is None else {"cosine": cos[0]}
        if cos is not None and self.tunes_text:
            evidence["tuned_cosine"] = cos[1]
        for name, where in self.evidence.items():
            x = batch["numeric"][..., where["index"]]
            if where["missing_index"] is not None:
                missing = batch["numeric"][..., where["missing_index"]] > 0.5
                x = torch.where(missing, torch.full_like(x, where["zero"]), x)
            evidence[name] = x
        if "text_similarity" in self.output_names:  # cosine + w * coverage (raw units)
            where = self.evidence["coverage"]
            raw = evidence["coverage"] * where["std"] + where["mean"]
            evidence["text_similarity"] = evidence["cosine"] + self.lexical_weight * raw
        return out, evidence

    def text_vectors(self, batch: dict[str, torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(q0 [B, d], p0 [B, L, d], q [B, d], p [B, L, d])``: the frozen (zero-shot)
        embeddings and the ones the model uses (tuned where a tower is fine-tuned).

        A batch may carry them: ``query_vec``/``product_vec`` (frozen) and, for a tuned
        model, ``query_vec_tuned``/``product_vec_tuned`` (ranking services: no module
        state involved, safe across threads); else they are looked up by
        ``query_text``/``product_text`` in the attached branches."""
        if "query_vec" in batch:
            q0, p0 = batch["query_vec"], batch["product_vec"]
            q = batch.get("query_vec_tuned", q0)
            p = batch.get("product_vec_tuned", p0)
            if self.tunes_text and "query_vec_tuned" not in batch and \
                    "product_vec_tuned" not in batch:
                raise RuntimeError("this model fine-tunes its text encoder: pass the tuned "
                                   "embeddings (query_vec_tuned) with the batch")
            return q0, p0, q, p
        if self.frozen_text is None:
            raise RuntimeError("text features are on but no text branch is attached")
        q0, p0 = self.frozen_text(batch["query_text"], batch["product_text"])
        q, p = q0, p0
        if self.text_branch is not None:
            tq, tp = self.text_branch(batch["query_text"], batch["product_text"])
            q = q if tq is None else tq
            p = p if tp is None else tp
        return q0, p0, q, p

    def _task_outputs(self, batch: dict[str, torch.Tensor],
                      vectors: tuple[torch.Tensor, ...] | None = None
                      ) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]:
        """Task outputs and ``(zero-shot cosine, the model's cosine)`` (None without
        text, and for a single-score backbone)."""
        if self.scorer is not None:
            return {self.tasks[0]: self._single_scores(batch, vectors)}, None
        x = self.tabular(batch["numeric"], batch["categorical"])
        if self.use_text:
            q0, p0, q, p = vectors if vectors is not None else self.text_vectors(batch)
            q = q.unsqueeze(1).expand_as(p)
            t = self.interaction(q, p)
            x = torch.cat([x, self.text_proj(t) if self.text_proj is not None else t], dim=-1)
            out = self.experts(x, batch.get("position"))
            tuned = cosine(q, p)
            wide = self.text_wide(tuned.unsqueeze(-1))
            zero_shot = cosine(q0.unsqueeze(1).expand_as(p0), p0)
            return ({task: out[task] + wide[..., i] for i, task in enumerate(self.tasks)},
                    (zero_shot, tuned))
        return self.experts(x, batch.get("position")), None

    def _single_scores(self, batch: dict[str, torch.Tensor],
                       vectors: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        r"""``[B, L]`` scores of a single-score backbone: the ``B * L`` slots as rows,
        :math:`s_{bl} = f([x_{bl} ; \cos(q_b, p_{bl})], c_{bl})` (the cosine of the frozen
        embeddings, with text only)."""
        numeric = batch["numeric"]
        if self.use_text:
            q0, p0, _, _ = vectors if vectors is not None else self.text_vectors(batch)
            cos = cosine(q0.unsqueeze(1).expand_as(p0), p0)
            numeric = torch.cat([numeric, cos.unsqueeze(-1).to(numeric.dtype)], dim=-1)
        b, l_ = numeric.shape[:2]
        flat = self.scorer(numeric.reshape(b * l_, -1),
                           batch["categorical"].reshape(b * l_, -1))
        return flat.reshape(b, l_)

    def _stack(self, outputs: dict[str, torch.Tensor], evidence: dict[str, torch.Tensor]
               ) -> torch.Tensor:
        parts = [evidence[n] if n in evidence else outputs[n] for n in self.output_names]
        return torch.stack(parts, dim=-1)  # [B, L, K]

    def score(self, outputs: dict[str, torch.Tensor], evidence: dict[str, torch.Tensor],
              warm: torch.Tensor | None = None) -> torch.Tensor:
        """The ranking score: the selected weights over evidence and task outputs
        (:attr:`output_names`), per list the warm or the cold ones (``warm`` ``[B]``;
        absent: cold)."""
        stacked = self._stack(outputs, evidence)
        w = self.score_weights_cold.expand(stacked.shape[0], -1)
        if warm is not None:
            w = torch.where(warm.reshape(-1, 1).bool(), self.score_weights_warm, w)
        return (stacked * w[:, None, :].to(stacked.dtype)).sum(dim=-1)

    def predict_scores(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eval-mode outputs and score for a batch (no position term)."""
        out, evidence = self.outputs(batch)
        return {"score": self.score(out, evidence, batch.get("warm")), **out}

    def set_score_weights(self, case: str, weights: np.ndarray | list[float]) -> None:
        """Set the ranking score's weights of ``case`` (cold or warm), in
        :attr:`output_names` order."""
        buf = getattr(self, f"score_weights_{case}")
        buf.copy_(torch.as_tensor(np.asarray(weights, dtype=np.float32)))

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
        vectors = self.text_vectors(batch) if self.use_text else None
        out, _ = self._task_outputs(batch, vectors)
        losses = self._losses(batch, out)
        total = self.weighting(losses)
        n = batch["mask"].shape[0]
        if self.hparams.lce_weight > 0 and "y_relevance" in batch:
            _, _, q, p = vectors
            lce = lce_loss(q, p, batch["y_relevance"], batch["mask"], batch["query_text"],
                           self.hparams.lce_temperature)
            self.log("train/loss_lce", lce, batch_size=n)
            total = total + self.hparams.lce_weight * lce
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

    @staticmethod
    def _target(batch: dict[str, torch.Tensor], mask: np.ndarray) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        """Graded engagement on sessions, the derived relevance grade on candidate pools
        (lists without any behaviour label): ``(target, known)``."""
        labels = {t: batch[f"y_{t}"].cpu().numpy() for t in BINARY_TASKS
                  if f"y_{t}" in batch}
        target = engagement_grade(labels, mask.shape)
        known = np.isfinite(target)
        target = np.nan_to_num(target)
        if "y_relevance" in batch:
            rel = batch["y_relevance"].cpu().numpy()
            pool = ~known.any(axis=1, keepdims=True)
            target = np.where(pool, np.nan_to_num(rel), target)
            known = np.where(pool, np.isfinite(rel), known)
        return target, known

    def _evaluate_batch(self, batch: dict[str, torch.Tensor], prefix: str,
                        dataloader_idx: int = 0) -> None:
        out, evidence = self.outputs(batch)
        warm = batch.get("warm")
        score = self.score(out, evidence, warm).detach().float().cpu().numpy()
        # ties fall in a neutral order, never in the logged or the file order
        keys = batch["tie_key"] if "tie_key" in batch else batch["product_text"]
        order = neutral_order(keys.cpu().numpy(), batch["mask"].cpu().numpy())
        mask, score = reorder(order, batch["mask"].cpu().numpy(), score)
        batch = {k: (torch.from_numpy(reorder(order, v.cpu().numpy())[0])
                     if k.startswith("y_") else v) for k, v in batch.items()}
        if prefix != "val":  # test: the one evaluation engine, summed over batches
            from ltr.evaluation.engine import array_results

            labels = {k[2:]: v.cpu().numpy() for k, v in batch.items() if k.startswith("y_")}
            pools = "human" in labels
            name = f"{prefix}/known_" if "label" in labels else f"{prefix}/"
            for metric, r in array_results(score, mask, labels).items():
                if not pools or "human_" in metric:  # pools: the human-grade metrics
                    self._accumulate(name + metric, r.values, r.included)
            return
        if self.single_score:  # the one score against the grade it trains on, pooled
            rel = batch["y_relevance"].cpu().numpy()
            r = ndcg(score, np.nan_to_num(rel), mask & np.isfinite(rel), k=10)
            self._accumulate(f"{prefix}/ndcg@10", r.values, r.included)
        else:  # kept for the score's selection at the end of the epoch
            target, known = self._target(batch, mask)
            stacked = self._stack(out, evidence).detach().float().cpu().numpy()
            self._val_parts.append({
                "outputs": reorder(order, stacked)[0], "target": target,
                "valid": mask & known, "warm": np.zeros(len(mask), bool) if warm is None
                else warm.cpu().numpy().astype(bool)})
        for task in BINARY_TASKS:
            key = f"y_{task}"
            if key in batch:
                y = batch[key].cpu().numpy()
                v = mask & np.isfinite(y)
                r = mrr(score, np.nan_to_num(y), v, k=10)
                self._accumulate(f"{prefix}/mrr@10_{task}", r.values, r.included)

    def _select_and_score(self) -> None:
        """End of a validation epoch: fit the score's weights per case (unless fixed or
        sanity checking), then log NDCG@10 of the score per case and their mean."""
        parts, self._val_parts = self._gather(self._val_parts), []
        if not parts:
            return
        width = max(p["outputs"].shape[1] for p in parts)

        def cat(key: str, fill: Any) -> np.ndarray:
            arrays = []
            for p in parts:
                a = p[key]
                if a.ndim > 1 and a.shape[1] < width:
                    pad = [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
                    a = np.pad(a, pad, constant_values=fill)
                arrays.append(a)
            return np.concatenate(arrays)

        outputs, target = cat("outputs", 0.0), cat("target", 0.0)
        valid, warm = cat("valid", False), cat("warm", False)
        sanity = self._trainer is not None and self.trainer.sanity_checking
        select = self.hparams.score_selection == "validation" and not sanity
        names = self.output_names
        means: list[float] = []
        learned: list[float] = []
        report: dict[str, Any] = {}
        for case in CASES:
            rows = warm if case == "warm" else ~warm
            if not (valid[rows]).any():
                continue
            o = [outputs[rows][..., j] for j in range(len(names))]
            t, v = target[rows], valid[rows]
            for j, name in enumerate(names):  # each output alone, for diagnosis
                r = ndcg(o[j], t, v, k=10)
                if r.included.any():
                    self.log(f"val/ndcg@10_{case}_{name}", float(r.mean), sync_dist=True)
            menu = [j for j, n in enumerate(names) if n in self.score_menu]
            reference = next((n for n in REFERENCES[case] if n in self.score_menu), None)
            chosen = select_weights([o[j] for j in menu], t, v, [names[j] for j in menu],
                                    reference=reference) if select else None
            if chosen is not None:
                weights = np.zeros(len(names))
                weights[menu] = chosen.weights
                self.set_score_weights(case, weights)
                report[case] = {"weights": dict(zip(names, map(float, weights), strict=True)),
                                "ndcg@10": chosen.ndcg, "single": chosen.single,
                                "lists": chosen.lists, "reference": reference,
                                "gain": chosen.gain, "gain_se": chosen.gain_se,
                                "kept_reference": chosen.kept_reference}
            w = getattr(self, f"score_weights_{case}").cpu().numpy()
            score = sum(w[j] * o[j] for j in range(len(names)) if w[j])
            if isinstance(score, int):  # all weights zero
                score = np.zeros_like(t)
            r = ndcg(score, t, v, k=10)
            if r.included.any():
                self.log(f"val/ndcg@10_{case}", float(r.mean), sync_dist=True)
                means.append(float(r.mean))
                if "relevance" in names:  # the learned relevance output on its own
                    own = ndcg(o[names.index("relevance")], t, v, k=10)
                    learned.append(float(own.mean))
        if select and report:
            self.selection_report = report
        if means:
            self.log("val/ndcg@10_score", float(np.mean(means)), sync_dist=True)
            # what early stopping and checkpoints watch: how well the model itself ranks
            # queries it never trained on (the served score is then chosen for that epoch)
            monitored = learned if len(learned) == len(means) else means
            self.log("val/ndcg@10", float(np.mean(monitored)), prog_bar=True, sync_dist=True)

    def _gather(self, parts: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Every process's validation outputs, on every process (several processes each
        validate a share of the lists; the score is chosen on all of them, the same way
        everywhere)."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return parts
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.trainer.world_size
        dist.all_gather_object(gathered, parts)
        return [p for rank in gathered for p in rank]

    def _flush(self) -> dict[str, float]:
        logged = {}
        sums = dict(self._sums)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1 and sums:
            # pool sums and counts over processes, then divide: a mean of per-process
            # means would weight a process's few lists like another's many
            names = sorted(sums)
            pooled = trainer.strategy.reduce(
                torch.tensor([[float(sums[n][0]), float(sums[n][1])] for n in names],
                             device=self.device), reduce_op="sum")
            sums = {n: (float(t), float(c)) for n, (t, c) in zip(names, pooled.tolist(),
                                                                 strict=True)}
        for name, (total, count) in sums.items():
            value = total / count if count else float("nan")
            self.log(name, value, prog_bar=name.endswith("ndcg@10"), sync_dist=True)
            logged[name] = value
        self._sums = {}
        return logged

    # ------------------------------------------------------------------ distillation
    def on_train_epoch_end(self) -> None:
        d = self.distill
        if not d["rounds"] or self._distill_round >= d["rounds"]:
            return
        if (self.current_epoch + 1) % d["every"]:
            return
        dm = getattr(self.trainer, "datamodule", None)
        data = getattr(getattr(dm, "prepared", None), "train", None)
        if data is None or "relevance" not in data.labels:
            raise ConfigError("model.distill", "self-distillation needs the relevance task "
                              "and in-memory training lists (not data.stream_dir)")
        labels = data.labels["relevance"]
        if self._labels_before_distill is None:
            self._labels_before_distill = labels.copy()
        teacher = self._teacher_grades(data)
        base = self._labels_before_distill
        mixed = np.where(np.isfinite(base), d["alpha"] * base + (1 - d["alpha"]) * teacher,
                         np.nan).astype(labels.dtype)
        labels[...] = mixed  # in place: the training DataLoader's tensors share this memory
        self._distill_round += 1
        self.log("train/distill_round", float(self._distill_round))

    @torch.no_grad()
    def _teacher_grades(self, data: Any) -> np.ndarray:
        """The relevance output on every training list, as a grade: the rank percentile
        within the list times the list's largest label."""
        from ltr.training.lists import ListDataset

        was = self.training
        self.eval()
        ds = ListDataset(data)
        parts = []
        for start in range(0, len(data), 512):
            batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                     for k, v in ds.batch(slice(start, start + 512)).items()}
            out, _ = self._task_outputs(batch)
            parts.append(out["relevance"].float().cpu().numpy())
        self.train(was)
        score = np.concatenate(parts)
        base = self._labels_before_distill
        known = data.mask & np.isfinite(base)
        s = np.where(known, score, -np.inf)
        ranks = np.argsort(np.argsort(s, axis=1, kind="stable"), axis=1, kind="stable")
        n = known.sum(axis=1, keepdims=True)
        pct = (ranks - (data.mask.shape[1] - n) + 0.5) / np.maximum(n, 1)
        top = np.nanmax(np.where(known, base, np.nan), axis=1, keepdims=True)
        return np.where(known, np.clip(pct, 0, 1) * np.nan_to_num(top), np.nan)

    def on_fit_end(self) -> None:
        """Give the training lists their own labels back (other rankers may share them)."""
        if self._labels_before_distill is not None:
            dm = getattr(self.trainer, "datamodule", None)
            data = getattr(getattr(dm, "prepared", None), "train", None)
            if data is not None:
                data.labels["relevance"][...] = self._labels_before_distill
            self._labels_before_distill = None

    def on_validation_epoch_start(self) -> None:
        self._sums = {}
        self._val_parts = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_batch(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.single_score:  # one output: nothing to select
            self._select_and_score()
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
