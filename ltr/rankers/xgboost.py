"""Gradient-boosted trees ranker: XGBoost's LambdaMART (``xgboost.XGBRanker``).

**What XGBoost does.** With ``objective="rank:ndcg"`` (the default) XGBoost fits
LambdaMART: each boosting round builds a tree on the *lambda* gradients of LambdaRank —
for every pair of items of one list with different grades, a RankNet (logistic) pair
gradient weighted by ``|ΔNDCG|``, the change of the list's NDCG if the two items swapped
places. Pairs are built per ``lambdarank_pair_method``: ``"topk"`` (XGBoost's default)
pairs every item of the top ``lambdarank_num_pair_per_sample`` ranks (``None``: all
ranks) with every other item; ``"mean"`` samples ``lambdarank_num_pair_per_sample`` pairs
per item. ``rank:pairwise`` (RankNet, no NDCG weight) and ``rank:map`` are accepted too.
NDCG uses the exponential gain ``2^grade - 1`` (``ndcg_exp_gain``), as ltr's metrics do.

**Rows.** Every list of :class:`~ltr.training.lists.ListData` becomes one query group
(``qid`` = the list's index, so groups are contiguous and sorted, as XGBoost requires;
rows are never shuffled across groups). A list contributes its valid slots — real
(``mask``) and with a known relevance grade (:func:`~ltr.rankers.base.ranking_target`) —
in slot order. The label is the grade, 0..4.

**Features.** The numeric columns of :func:`~ltr.rankers.base.ranker_inputs` (with
``use_text`` the query-product cosine is the last one), then the categorical codes as
XGBoost *native categorical* features (``feature_types="c"``, ``enable_categorical``):
splits partition the set of codes (one-hot style below ``max_cat_to_onehot`` = 4
categories, else XGBoost's sorted-gradient partitioning) instead of treating the arbitrary
code order as ordinal. Code 0 (*missing*) and 1 (*unknown*) are ordinary categories. The
feature types are stored inside the saved model.

**Early stopping** watches XGBoost's ``ndcg@10`` on the validation lists (same
flattening), keeping only validation lists with at least one item of grade > 0: XGBoost
would score a list with no relevant item as 1 (ltr excludes it); dropping those lists
makes ``best_score_`` equal to ltr's NDCG@10 of the validation lists and does not change
which iteration is best. Scoring uses trees ``0..best_iteration_``.

**Unbiased LambdaMART** (``unbiased=True``, XGBoost's ``lambdarank_unbiased``, Hu et al.
2019) learns position-bias ratios ``t+`` / ``t-`` jointly with the ranker. XGBoost takes an
item's *position* to be its row index inside its group, so for the training lists the rows
of each list are ordered by the logged ``position`` (1-based) instead of slot order;
slots with unknown position (``0``: hard negatives, candidate pools) go after every shown
slot, in slot order — i.e. they are treated as positions beyond the displayed list.
Slots without a known grade are left out, so later rows move up: positions are then
ranks among the kept rows, not the logged numbers. Validation rows are not reordered.

**Streamed training lists** (``data.stream_dir``: ``data.train`` is None and
``data.train_stream`` reads ``train.parquet``, whole lists per row group): training goes
through XGBoost's external memory. :class:`ListRowBatches`, an ``xgboost.DataIter``, gives
one row group's rows per ``next()`` call — the same rows, grades and row order as above,
with ``qid`` offset by the lists of the row groups before it, so groups stay contiguous,
increasing and never straddle two batches — and ``xgboost.ExtMemQuantileDMatrix`` builds
the quantile sketch and the binned pages from it, caching the pages on disk (in a
temporary folder beside ``train.parquet``, removed after training). Memory then holds one
row group of raw rows plus XGBoost's per-row gradients, not the training matrix. The
trees are the in-memory ones up to the quantile sketch (with fewer distinct values of a
feature than ``max_bin``, 256, the cuts are exact either way) and the row order: lists
come in the file's shuffled order, which changes row subsampling (``subsample`` < 1).
Validation rows stay in memory (a ``QuantileDMatrix`` on the training cuts, as the
in-memory path builds).

**Saved state**: the booster in XGBoost's own JSON format (``model.json``, written
atomically), with ``best_iteration``, ``best_score`` and the training time as booster
attributes. No pickle.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import xgboost as xgb
from pydantic import Field

from ltr.checks import Range
from ltr.config_schema import Bool, Section, validate
from ltr.errors import DataValidationError
from ltr.io import atomic_path
from ltr.rankers.base import Capabilities, Ranker, ranker_inputs, ranking_target

MODEL_FILE = "model.json"
EVAL_METRIC = "ndcg@10"
OBJECTIVES = ("rank:ndcg", "rank:pairwise", "rank:map")
PAIR_METHODS = ("topk", "mean")


Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # (X, grade, qid)


class ListRowBatches(xgb.DataIter):
    """An ``xgboost.DataIter`` over ``(X, grade, qid)`` batches: one batch per ``next()``
    call, from a fresh ``batches()`` iterator after each ``reset()``. Every batch must hold
    whole query groups (XGBoost concatenates the batches' groups). ``cache_prefix``: where
    external memory writes its pages."""

    def __init__(self, batches: Callable[[], Iterator[Rows]], feature_types: list[str],
                 cache_prefix: str) -> None:
        self._batches, self._feature_types = batches, feature_types
        self._it: Iterator[Rows] | None = None
        self.rows = 0  # rows given in the latest pass
        super().__init__(cache_prefix=cache_prefix, release_data=True)

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._it is None:
            self._it, self.rows = self._batches(), 0
        batch = next(self._it, None)
        if batch is None:
            return False
        x, y, qid = batch
        input_data(data=x, label=y, qid=qid, feature_types=self._feature_types)
        self.rows += len(y)
        return True

    def reset(self) -> None:
        self._it = None


AtLeastOne = Annotated[int, Range(ge=1, integer=True)]


class XGBoostParams(Section):
    """The ``params`` of the ``xgboost`` ranker (its schema: every key, type, range,
    default; unknown keys refused naming ``model.params.<key>``)."""

    n_estimators: AtLeastOne = Field(500, description="boosting rounds at most")
    max_depth: AtLeastOne = Field(6, description="tree depth")
    learning_rate: Annotated[float, Range(gt=0)] = Field(0.05, description="shrinkage")
    subsample: Annotated[float, Range(gt=0, le=1)] = Field(0.8, description="rows per tree")
    colsample_bytree: Annotated[float, Range(gt=0, le=1)] = Field(
        0.8, description="features per tree")
    min_child_weight: Annotated[float, Range(ge=0)] = Field(
        1.0, description="XGBoost's min_child_weight")
    reg_lambda: Annotated[float, Range(ge=0)] = Field(
        1.0, description="L2 penalty on leaf weights")
    early_stopping_rounds: Annotated[int | None, Range(ge=1, integer=True, optional=True)] = \
        Field(50, description="rounds without a better validation NDCG@10 (null: no early "
              "stopping, every round kept)")
    use_text: Bool = Field(True, description="append the query-product cosine as a feature")
    seed: Annotated[int, Range(integer=True)] = Field(0, description="XGBoost's seed")
    n_jobs: AtLeastOne = Field(2, description="threads")
    objective: Literal[OBJECTIVES] = Field(
        "rank:ndcg", description="rank:ndcg, rank:pairwise or rank:map")
    lambdarank_pair_method: Literal[PAIR_METHODS] = Field("topk", description="topk or mean")
    lambdarank_num_pair_per_sample: Annotated[
        int | None, Range(ge=1, integer=True, optional=True)] = Field(
        None, description="pairs per document (null: XGBoost's default)")
    unbiased: Bool = Field(False, description="XGBoost's unbiased LambdaMART (position "
                           "debiasing)")


class XGBoostRanker(Ranker):
    """LambdaMART with XGBoost behind the common ranker interface (see the module
    docstring).

    Parameters (constructor keywords, all saved in ``ranker.json``), with defaults:
    ``n_estimators=500`` (maximum boosting rounds), ``max_depth=6``,
    ``learning_rate=0.05``, ``subsample=0.8``, ``colsample_bytree=0.8``,
    ``min_child_weight=1.0``, ``reg_lambda=1.0``, ``early_stopping_rounds=50`` (``None``:
    no early stopping, every round kept), ``use_text=True`` (append the query-product
    cosine), ``seed=0``, ``n_jobs=2`` (threads), ``objective="rank:ndcg"``,
    ``lambdarank_pair_method="topk"``, ``lambdarank_num_pair_per_sample=None`` (XGBoost's
    default), ``unbiased=False`` (position-debiased LambdaMART).

    Attributes after fitting or loading: ``booster_`` (``xgboost.Booster``),
    ``best_iteration_`` (0-based index of the last tree used for scoring),
    ``best_score_`` (validation NDCG@10 there, NaN without validation rows),
    ``train_seconds_``.
    """

    kind = "xgboost"
    capabilities = Capabilities(text="optional", prunable="xgboost", streams=True)
    PARAMS = XGBoostParams  # the schema of the parameters
    DEFAULTS: dict[str, Any] = {k: f.default for k, f in XGBoostParams.model_fields.items()}

    def __init__(self, **params: Any) -> None:
        checked = validate(XGBoostParams, params, "model.params")
        super().__init__(**{**self.DEFAULTS, **{k: getattr(checked, k) for k in params}})
        self.booster_: xgb.Booster | None = None
        self.best_iteration_: int = -1
        self.best_score_ = float("nan")
        self.train_seconds_ = float("nan")
        # extra xgboost.callback.TrainingCallback objects for the next fit (not saved),
        # e.g. Optuna pruning on "validation_0-ndcg@10"
        self.callbacks: list[Any] = []

    # ------------------------------------------------------------------ rows
    def _features(self, lists: Any, data: Any) -> np.ndarray:
        """``[G, L, F + C]`` float32: numeric columns, then the categorical codes."""
        numeric, categorical = ranker_inputs(lists, data, self.params["use_text"])
        return np.concatenate([np.asarray(numeric, dtype=np.float32),
                               np.asarray(categorical, dtype=np.float32)], axis=-1)

    def _feature_types(self, lists: Any) -> list[str]:
        """XGBoost feature types of :meth:`_features`: ``"q"`` numeric, ``"c"`` categorical."""
        n_numeric = int(lists.numeric.shape[-1]) + int(bool(self.params["use_text"]))
        return ["q"] * n_numeric + ["c"] * int(lists.categorical.shape[-1])

    def _rows(self, lists: Any, data: Any, by_position: bool = False,
              need_relevant: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X [n, F + C], grade [n], qid [n])`` of the valid slots (mask & known grade):
        one group per list, groups in list order, a list's rows in slot order.

        ``by_position``: order a list's rows by logged position instead (unknown last);
        ``need_relevant``: keep only lists with a slot of grade > 0.
        """
        y = ranking_target(lists)
        valid = np.asarray(lists.mask, dtype=bool) & np.isfinite(y)
        if need_relevant:
            valid &= (np.nan_to_num(y) > 0).any(axis=1, keepdims=True)
        g, j = np.nonzero(valid)  # row-major: lists in order, slots in order
        if by_position and len(g):
            pos = np.asarray(lists.position)[g, j].astype(np.int64)
            key = np.where(pos > 0, pos, np.iinfo(np.int32).max + j)
            order = np.lexsort((j, key, g))  # by list, then position, then slot
            g, j = g[order], j[order]
        x = self._features(lists, data)
        return x[g, j], y[g, j], g

    # ------------------------------------------------------------------ Ranker
    def _estimator(self, feature_types: list[str], early_stopping: bool) -> xgb.XGBRanker:
        p = self.params
        extra = {}
        if p["lambdarank_num_pair_per_sample"] is not None:
            extra["lambdarank_num_pair_per_sample"] = p["lambdarank_num_pair_per_sample"]
        return xgb.XGBRanker(
            objective=p["objective"], n_estimators=p["n_estimators"],
            max_depth=p["max_depth"], learning_rate=p["learning_rate"],
            subsample=p["subsample"], colsample_bytree=p["colsample_bytree"],
            min_child_weight=p["min_child_weight"], reg_lambda=p["reg_lambda"],
            random_state=p["seed"], n_jobs=p["n_jobs"], tree_method="hist",
            feature_types=feature_types, enable_categorical=True, eval_metric=EVAL_METRIC,
            early_stopping_rounds=p["early_stopping_rounds"] if early_stopping else None,
            lambdarank_pair_method=p["lambdarank_pair_method"],
            lambdarank_unbiased=bool(p["unbiased"]), ndcg_exp_gain=True,
            callbacks=list(self.callbacks) or None, **extra)

    def _fit(self, data: Any) -> None:
        p = self.params
        streamed = getattr(data, "train", None) is None
        if streamed and getattr(data, "train_stream", None) is None:
            raise DataValidationError("data.train", "there are no training lists, in memory "
                                      "or streamed (data.stream_dir)")
        evals: list[Rows] = []
        if getattr(data, "valid", None) is not None:
            xv, yv, qv = self._rows(data.valid, data, need_relevant=True)
            if len(yv):
                evals = [(xv, yv, qv)]
        stop = bool(evals) and p["early_stopping_rounds"] is not None
        template = data.valid if streamed else data.train  # the same feature widths
        model = self._estimator(self._feature_types(template), early_stopping=stop)
        t0 = time.perf_counter()
        if streamed:
            booster, history = self._fit_streamed(model, data, evals)
        else:
            x, y, qid = self._rows(data.train, data, by_position=bool(p["unbiased"]))
            if not len(y):
                raise self._nothing_to_train()
            model.fit(x, y, qid=qid, eval_set=[(xv, yv) for xv, yv, _ in evals] or None,
                      eval_qid=[qv for _, _, qv in evals] or None, verbose=False)
            booster, history = model.get_booster(), model.evals_result()
        self.train_seconds_ = time.perf_counter() - t0
        if booster.attr("best_iteration") is None:  # no early stopping: every tree counts
            booster.set_attr(best_iteration=str(booster.num_boosted_rounds() - 1))
            if evals:
                scores = history["validation_0"][EVAL_METRIC]
                booster.set_attr(best_score=repr(float(scores[-1])))
        booster.set_attr(ltr_train_seconds=repr(self.train_seconds_))
        self._set_booster(booster)

    @staticmethod
    def _nothing_to_train() -> DataValidationError:
        return DataValidationError("data.train", "has no slot with a known relevance "
                                   "grade: nothing to train on", column="relevance")

    def _streamed_rows(self, data: Any) -> Iterator[Rows]:
        """The training rows of each row group of ``data.train_stream`` (row groups
        without a graded slot skipped), ``qid`` offset to stay unique and increasing."""
        offset = 0
        for lists in data.train_stream.lists():
            x, y, qid = self._rows(lists, data, by_position=bool(self.params["unbiased"]))
            if len(y):
                yield x, y, qid + offset
            offset += len(lists)

    def _fit_streamed(self, model: xgb.XGBRanker, data: Any, evals: list[Rows]
                      ) -> tuple[xgb.Booster, dict[str, Any]]:
        """Train ``model``'s parameters on the streamed training lists through external
        memory (see the module docstring); ``(booster, evaluation history)``."""
        n_jobs = self.params["n_jobs"]
        types = self._feature_types(data.valid)
        history: dict[str, Any] = {}
        cache_dir = Path(data.train_stream.path).parent
        with tempfile.TemporaryDirectory(prefix=".xgboost-cache-", dir=cache_dir) as tmp:
            batches = ListRowBatches(lambda: self._streamed_rows(data), types,
                                     os.path.join(tmp, "train"))
            try:
                train = xgb.ExtMemQuantileDMatrix(batches, enable_categorical=True,
                                                  nthread=n_jobs)
            except xgb.core.XGBoostError:
                if batches.rows == 0:
                    raise self._nothing_to_train() from None
                raise
            if batches.rows == 0:
                raise self._nothing_to_train()
            watch = [(xgb.QuantileDMatrix(x, y, qid=q, ref=train, feature_types=types,
                                          enable_categorical=True, nthread=n_jobs),
                      "validation_0") for x, y, q in evals]
            booster = xgb.train(model.get_xgb_params(), train,
                                num_boost_round=model.get_num_boosting_rounds(),
                                evals=watch, early_stopping_rounds=model.early_stopping_rounds,
                                evals_result=history, verbose_eval=False,
                                callbacks=model.callbacks)
            del train, watch
        return booster, history

    def _set_booster(self, booster: xgb.Booster) -> None:
        booster.set_param({"nthread": self.params["n_jobs"]})
        self.booster_ = booster
        self.best_iteration_ = int(booster.attr("best_iteration"))
        score = booster.attr("best_score")
        self.best_score_ = float(score) if score is not None else float("nan")
        seconds = booster.attr("ltr_train_seconds")
        self.train_seconds_ = float(seconds) if seconds is not None else float("nan")

    def set_inference_threads(self, n: int) -> None:
        """XGBoost's OpenMP threads for scoring (``n_jobs``); 1 suits per-request scoring
        of ~100 rows, and avoids contending with torch's threads in the same process."""
        self.params["n_jobs"] = int(n)
        if self.booster_ is not None:
            self.booster_.set_param({"nthread": int(n)})

    def _score(self, lists: Any, data: Any) -> np.ndarray:
        mask = np.asarray(lists.mask, dtype=bool)
        out = np.zeros(mask.shape, dtype=np.float64)
        g, j = np.nonzero(mask)
        if not len(g):
            return out
        x = self._features(lists, data)
        dm = xgb.DMatrix(x[g, j], feature_types=self._feature_types(lists),
                         enable_categorical=True, nthread=self.params["n_jobs"])
        out[g, j] = self.booster_.predict(dm, iteration_range=(0, self.best_iteration_ + 1))
        return out

    def _save_state(self, folder: Path) -> None:
        # save_raw, not save_model(tmp): save_model picks the format from the file suffix,
        # and the temporary file's suffix is not ".json"
        with atomic_path(folder / MODEL_FILE) as tmp:
            tmp.write_bytes(bytes(self.booster_.save_raw(raw_format="json")))

    def _load_state(self, folder: Path) -> None:
        path = folder / MODEL_FILE
        if not path.exists():
            raise DataValidationError(str(folder), f"has no {MODEL_FILE} (the XGBoost model)")
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise DataValidationError(str(path), f"cannot be read as an XGBoost model: "
                                      f"{exc}") from exc
        if booster.attr("best_iteration") is None:
            booster.set_attr(best_iteration=str(booster.num_boosted_rounds() - 1))
        self._set_booster(booster)
