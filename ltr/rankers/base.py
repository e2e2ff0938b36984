"""One interface for every ranker: fit, score, save, load.

A ranker is fitted on :class:`~ltr.training.prepare.PreparedData` (the training and
validation lists of the shared pipeline: same split, same preprocessing, same labels) and
scores :class:`~ltr.training.lists.ListData` (any padded lists of the same pipeline),
returning ``[lists, slots]`` scores, NaN at padded slots.

**Inputs** every ranker sees (:func:`ranker_inputs`): the preprocessed numeric features,
the categorical codes and, when the data has text embeddings and ``use_text`` is on, the
query-product cosine appended as one more numeric column. The MMoE adapter sees the full
embeddings instead.

**Target** (:func:`ranking_target`), the one label-to-gain mapping for single-score
rankers that train outside the Lightning module (XGBoost): the derived relevance grade
(``relevance`` label, 0..4) where known; slots without one are left out of the loss. The
neural single-score rankers read the same ``relevance`` labels through
:class:`ltr.training.module.LtrModule`.

**Folders.** ``save(folder)`` writes ``ranker.json`` (kind, format version, ltr version,
parameters, input widths), ``preprocessor.json`` (the fitted feature preprocessing, to
reuse at inference: :meth:`ltr.features.Preprocessor.from_dict`) and the ranker's own
state files (safetensors, XGBoost JSON; never pickle). ``load_ranker(folder)`` reads
``ranker.json`` and dispatches on the kind; ``SomeRanker.load`` refuses a folder of
another kind or format version.
"""

from __future__ import annotations

import importlib
import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ltr.errors import ConfigError, DataValidationError, LtrError, check_known_keys
from ltr.io import read_json, write_json

FORMAT_VERSION = 1
MANIFEST = "ranker.json"
PIPELINE_DIR = "pipeline"  # the fitted feature pipeline, beside the weights

# name -> "module:Class"
RANKERS: dict[str, str] = {
    "mmoe": "ltr.rankers.mmoe:MMoERanker",
    "mmoe_tabular": "ltr.rankers.mmoe:TabularMMoERanker",
    "xgboost": "ltr.rankers.xgboost:XGBoostRanker",
    "dcnv2": "ltr.rankers.neural:DCNV2Ranker",
    "tabnet": "ltr.rankers.neural:TabNetRanker",
    "ft_transformer": "ltr.rankers.neural:FTTransformerRanker",
    "bm25": "ltr.rankers.reference:BM25Ranker",
    "cosine": "ltr.rankers.reference:CosineRanker",
    "lexical": "ltr.rankers.reference:LexicalRanker",
    "hybrid": "ltr.rankers.reference:HybridRanker",
    "ple": "ltr.rankers.mmoe:PLERanker",
}


def capabilities(name: str, key: str = "model.name") -> Capabilities:
    """The :class:`Capabilities` of a registered ranker kind."""
    return ranker_class(name, key).capabilities


@dataclass(frozen=True)
class Capabilities:
    """What a kind of ranker needs and can do, declared once on its class, so that export,
    sweep and benchmark never switch on kind names.

    text: ``embeddings`` (always reads query and product embeddings), ``optional`` (reads
        them when its ``use_text`` parameter is on), ``texts`` (reads the raw product
        texts, e.g. BM25) or ``none``.
    multi_task: one output per task (click, add-to-cart, purchase, relevance), else one.
    prunable: how a sweep prunes its trials: ``lightning`` (a validation metric per
        epoch), ``xgboost`` (per boosting round) or None.
    streams: trains from training lists streamed from Parquet (``data.stream_dir``).
    trained: learns from the log (False for the zero-shot references).
    """

    text: str = "none"
    multi_task: bool = False
    prunable: str | None = None
    streams: bool = False
    trained: bool = True


class NotFittedError(LtrError, RuntimeError):
    """A ranker was asked to score or save before it was fitted."""


def ranking_target(lists: Any) -> np.ndarray:
    """``[G, L]`` training target of single-score rankers: the relevance grade, NaN where
    unknown or padded."""
    if "relevance" not in lists.labels:
        raise ConfigError("model.tasks", "single-score rankers train on the 'relevance' "
                          "labels; add the relevance task to the data")
    y = lists.labels["relevance"].astype(np.float32)
    return np.where(lists.mask, y, np.nan)


def pair_cosine(lists: Any, data: Any) -> np.ndarray:
    """``[G, L]`` cosine between each list's query and each slot's product embedding."""
    q = data.query_embeddings[lists.query_text]
    p = data.product_embeddings[lists.product_text]
    qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    pn = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    return np.einsum("gd,gld->gl", qn, pn).astype(np.float32)


def ranker_inputs(lists: Any, data: Any, use_text: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(numeric [G, L, F (+1)], categorical [G, L, C])``; with ``use_text`` the cosine
    is the last numeric column."""
    numeric = lists.numeric
    if use_text:
        if data.query_embeddings is None:
            raise ConfigError("data.text", "this ranker uses text (use_text: true) but the "
                              "data has no text embeddings")
        numeric = np.concatenate([numeric, pair_cosine(lists, data)[..., None]], axis=-1)
    return numeric, lists.categorical


class Ranker(ABC):
    """Base class: subclasses implement ``_fit``, ``_score``, ``_save_state``,
    ``_load_state``. Parameters go to the constructor; learned state lives in attributes
    ending in ``_``."""

    kind: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities] = Capabilities()
    # what the single score was trained on (the per-task outputs of score_outputs)
    output_names: ClassVar[tuple[str, ...]] = ("relevance",)

    @property
    def reads_embeddings(self) -> bool:
        """Whether scoring reads the query and product embeddings."""
        text = self.capabilities.text
        return text == "embeddings" or (text == "optional" and
                                        bool(self.params.get("use_text", False)))

    @property
    def reads_texts(self) -> bool:
        """Whether scoring reads the raw product texts."""
        return self.capabilities.text == "texts"

    @classmethod
    def param_names(cls) -> set[str] | None:
        """The parameters the constructor takes (None: cannot tell)."""
        defaults = getattr(cls, "DEFAULTS", None)
        if isinstance(defaults, dict):
            return set(defaults)
        sig = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in sig.values()):
            return None
        return set(sig) - {"self"}

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.fitted_ = False
        self.input_widths_: dict[str, int] = {}
        self.preprocessor_: dict[str, Any] | None = None
        self.data_config_: dict[str, Any] = {}  # the data module arguments it was fitted on
        self.pipeline_: Any = None  # the fitted feature pipeline (ltr.features.pipeline)

    # ------------------------------------------------------------------ public API
    def fit(self, data: Any) -> Ranker:
        """Fit on ``data.train`` (early stopping / selection on ``data.valid``)."""
        self._fit(data)
        self.input_widths_ = {"numeric": int(data.preprocessor.numeric_width),
                              "categorical": len(data.preprocessor.cardinalities)}
        to_dict = getattr(data.preprocessor, "to_dict", None)
        self.preprocessor_ = to_dict() if to_dict is not None else None
        self.data_config_ = _json_safe(getattr(data, "config", None) or {})
        from ltr.training.prepare import PreparedData

        if isinstance(data, PreparedData):  # a training run's data (not a bare list view)
            from ltr.features.pipeline import FittedPipeline

            self.pipeline_ = FittedPipeline.from_prepared(data)
        self.fitted_ = True
        return self

    def score(self, lists: Any, data: Any) -> np.ndarray:
        """``[G, L]`` scores for ``lists`` (NaN at padded slots)."""
        self._check_fitted("score")
        self._check_inputs(lists)
        scores = np.asarray(self._score(lists, data), dtype=np.float64)
        return np.where(lists.mask, scores, np.nan)

    def score_outputs(self, lists: Any, data: Any) -> dict[str, np.ndarray]:
        """``{"score": [G, L], <output>: [G, L], ...}`` (NaN at padded slots): the ranking
        score and each output it combines. Single-score rankers have one output, named by
        :attr:`output_names` (what they were trained on); the MMoE has one per task."""
        self._check_fitted("score")
        self._check_inputs(lists)
        outputs = self._score_outputs(lists, data)
        return {k: np.where(lists.mask, np.asarray(v, dtype=np.float64), np.nan)
                for k, v in outputs.items()}

    def set_inference_threads(self, n: int) -> None:
        """Threads the ranker's own library uses to score (torch's are process-wide and
        set by the caller); a no-op for rankers without such a setting."""
        return None

    def _score_outputs(self, lists: Any, data: Any) -> dict[str, np.ndarray]:
        score = self._score(lists, data)
        return {"score": score, **{name: score for name in self.output_names}}

    def save(self, folder: str | Path, *, pipeline: bool = True) -> Path:
        """Write the ranker to ``folder`` (created); see the module docstring.
        ``pipeline=False`` leaves the fitted feature pipeline out (a model package holds
        its parts in its own layout)."""
        self._check_fitted("save")
        from ltr import __version__

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_state(folder)
        if getattr(self, "preprocessor_", None) is not None:
            write_json(self.preprocessor_, folder / "preprocessor.json")
        if pipeline and getattr(self, "pipeline_", None) is not None:
            self.pipeline_.save(folder / PIPELINE_DIR)
        write_json({"kind": self.kind, "format_version": FORMAT_VERSION,
                    "ltr_version": __version__, "params": self.params,
                    "input_widths": self.input_widths_, "data": self.data_config_},
                   folder / MANIFEST)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Ranker:
        """Load a folder written by :meth:`save` (of this kind, unless called on Ranker)."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        if cls is not Ranker and manifest["kind"] != cls.kind:
            raise DataValidationError(str(folder / MANIFEST), f"holds a '{manifest['kind']}' "
                                      f"ranker, not '{cls.kind}'", column="kind")
        target = cls if cls is not Ranker else ranker_class(manifest["kind"])
        ranker = target(**manifest["params"])
        ranker.input_widths_ = dict(manifest.get("input_widths", {}))
        ranker.data_config_ = dict(manifest.get("data") or {})
        pre = folder / "preprocessor.json"
        ranker.preprocessor_ = read_json(pre) if pre.exists() else None
        ranker._load_state(folder)
        ranker.fitted_ = True
        return ranker

    # ------------------------------------------------------------------ checks
    def _check_fitted(self, action: str) -> None:
        if not self.fitted_:
            raise NotFittedError(f"ranker '{self.kind}' must be fitted (or loaded) before "
                                 f"{action}")

    def _check_inputs(self, lists: Any) -> None:
        want = self.input_widths_
        if not want:
            return
        got = {"numeric": int(lists.numeric.shape[-1]),
               "categorical": int(lists.categorical.shape[-1])}
        for key in ("numeric", "categorical"):
            if key in want and got[key] != want[key]:
                raise DataValidationError("lists", f"have {got[key]} {key} feature columns, "
                                          f"the ranker was fitted on {want[key]}: features "
                                          "are missing or extra at predict time",
                                          column=key)

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _fit(self, data: Any) -> None: ...

    @abstractmethod
    def _score(self, lists: Any, data: Any) -> np.ndarray: ...

    @abstractmethod
    def _save_state(self, folder: Path) -> None: ...

    @abstractmethod
    def _load_state(self, folder: Path) -> None: ...


def _json_safe(value: Any) -> Any:
    """A plain-JSON copy (containers from config parsers become dicts and lists)."""
    return json.loads(json.dumps(value, default=str))


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise DataValidationError(str(folder), f"is not a saved ranker (no {MANIFEST})")
    manifest = read_json(path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataValidationError(str(path), f"format version {manifest.get('format_version')!r}"
                                  f" is not {FORMAT_VERSION} (saved by ltr "
                                  f"{manifest.get('ltr_version')})", column="format_version")
    if manifest.get("kind") not in RANKERS:
        raise DataValidationError(str(path), f"unknown ranker kind {manifest.get('kind')!r}",
                                  column="kind")
    return manifest


def ranker_class(name: str, key: str = "model.name") -> type[Ranker]:
    if name not in RANKERS:
        raise ConfigError(key, f"unknown ranker {name!r}; choose one of {sorted(RANKERS)}")
    module, cls = RANKERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_ranker(name: str, params: dict[str, Any] | None = None,
                key: str = "model.name") -> Ranker:
    """A ranker by its registry name, with constructor parameters."""
    cls = ranker_class(name, key)
    where = f"{key[:-5]}.params" if key.endswith(".name") else f"{key}.params"
    known = cls.param_names()
    if known is not None:  # no ignored keys: every parameter must be one the ranker reads
        check_known_keys(params or {}, known, where, f"parameter for '{name}'")
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ConfigError(where, f"bad parameters for '{name}': {exc}") from exc
    except ConfigError as exc:  # the classes name their parameters model.params.<key>
        if exc.key.startswith("model.params") and where != "model.params":
            raise ConfigError(where + exc.key[len("model.params"):], exc.problem) from exc
        raise


def load_ranker(folder: str | Path) -> Ranker:
    """Load any saved ranker, dispatching on the kind in its manifest."""
    return Ranker.load(folder)
