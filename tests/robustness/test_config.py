"""Hostile configuration values: each must be refused before any work starts, naming the
dotted key (``model.lr``, ``data.folds``, ``models[0].params.max_depth``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.harness import Case, expect_outcome, params


def config_case(id: str, what: str, call: Callable[[dict[str, Any]], Any],
                names: tuple[str, ...] = (), expect: str = "error") -> Case:
    def run(ctx: dict[str, Any]) -> None:
        expect_outcome(case, lambda: call(ctx))
    case = Case(id, "config", what, expect, names, run)
    return case


def dm(**kw: Any) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.training.datamodule import LtrDataModule

        return LtrDataModule(**kw)
    return make


def prepared(**kw: Any) -> Callable[[dict[str, Any]], Any]:
    """Data settings that are refused while preparing the tiny log (still before
    training)."""
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.training.datamodule import LtrDataModule

        return LtrDataModule(data_dir=str(ctx["log"]), **kw).prepared
    return make


def module(**kw: Any) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.training.module import LtrModule

        return LtrModule(**kw)
    return make


def model_section(**kw: Any) -> Callable[[dict[str, Any]], Any]:
    """The ``model`` section's schema check (what ``ltr fit`` runs before preparing)."""
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.training.sections import check_model

        return check_model(kw)
    return make


def ranker(name: str, params: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.rankers.base import make_ranker

        return make_ranker(name, params, "models[0].name")
    return make


def labels(**values: Any) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.labels.config import LabelConfig

        return LabelConfig.from_dict(values)
    return make


SPACE = {"max_depth": {"type": "int", "low": 2, "high": 6}}


def sweep(**raw: Any) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.sweep.study import parse_config

        return parse_config({"model": "xgboost", "space": SPACE,
                             "out": str(ctx["tmp"] / "sweep"), **raw})
    return make


def benchmark(**config: Any) -> Callable[[dict[str, Any]], Any]:
    def make(ctx: dict[str, Any]) -> Any:
        from ltr.rankers.benchmark import run_benchmark

        return run_benchmark({"data": {"data_dir": str(ctx["log"])},
                              "out": str(ctx["tmp"] / "bench"), **config})
    return make


CASES = [
    # data module (ltr fit's data section, every ranker's data)
    config_case("data-folds-negative", "data.folds: -1", dm(folds=-1), ("data.folds",)),
    config_case("data-fold-beyond-folds", "data.fold: 5 with folds: 3", dm(folds=3, fold=5),
                ("data.fold",)),
    config_case("data-batch-size-zero", "data.batch_size: 0", dm(batch_size=0),
                ("data.batch_size",)),
    config_case("data-batch-size-text", "data.batch_size: 'big'", dm(batch_size="big"),
                ("data.batch_size",)),
    config_case("data-hard-negatives-fraction", "data.hard_negatives: 2.5",
                dm(hard_negatives=2.5), ("data.hard_negatives",)),
    config_case("data-anonymous-share-above-1", "data.anonymous_share: 1.5",
                dm(anonymous_share=1.5), ("data.anonymous_share",)),
    config_case("data-valid-share-one", "data.valid_query_share: 1",
                dm(valid_query_share=1.0), ("data.valid_query_share",)),
    config_case("data-history-dropout-nan", "data.history_dropout: .nan",
                dm(history_dropout=float("nan")), ("data.history_dropout",)),
    config_case("data-sampling-unknown", "data.sampling: 'random'", dm(sampling="random"),
                ("data.sampling",)),
    config_case("data-sampling-rates-unknown", "data.sampling_rates.views: 1",
                dm(sampling_rates={"views": 1.0}), ("data.sampling_rates.views",)),
    config_case("data-sampling-rates-negative", "data.sampling_rates.clicked: -1",
                dm(sampling_rates={"clicked": -1.0}), ("data.sampling_rates",)),
    config_case("data-predict-split-unknown", "data.predict_split: 'train'",
                dm(predict_split="train"), ("data.predict_split",)),
    config_case("data-dir-missing", "data.data_dir that does not exist",
                lambda ctx: dm(data_dir=str(ctx["tmp"] / "nowhere"))(ctx).prepared,
                ("nowhere",)),
    config_case("data-features-unknown-key", "data.features.numerics (a typo)",
                prepared(features={"numerics": ["price"]}), ("data.features", "numerics")),
    config_case("data-features-unknown-column", "data.features.numeric: [colour]",
                prepared(features={"numeric": ["colour"]}), ("colour",)),
    config_case("data-text-model-missing", "data.text.model_name: a folder that does not "
                "exist", prepared(text={"model_name": "/nonexistent/encoder"}),
                ("data.text.model_name", "/nonexistent/encoder")),
    config_case("data-tasks-unknown", "model.tasks: [clicks]",
                prepared(tasks=["clicks"]), ("clicks",)),
    config_case("data-labels-file-missing", "data.labels: a file that does not exist",
                prepared(labels="/nonexistent/labels.parquet"),
                ("/nonexistent/labels.parquet",)),
    config_case("data-split-shares", "data.split with shares above 1",
                prepared(split={"train": 0.9, "valid": 0.3, "test": 0.3}), ("split",)),
    config_case("data-trainable-layers", "data.text.trainable_layers (belongs to model)",
                prepared(text={"trainable_layers": 2}), ("data.text.trainable_layers",)),
    config_case("data-text-shared-towers", "data.text.shared_towers (the model decides: "
                "refused at construction, not ignored)", dm(text={"shared_towers": True}),
                ("data.text.shared_towers", "model.tuned_tower")),
    config_case("data-text-interactions", "data.text.interactions (belongs to model)",
                dm(text={"interactions": ["cosine"]}),
                ("data.text.interactions", "model.interactions")),
    config_case("data-split-negative", "data.split.test_days: -1", dm(split={"test_days": -1}),
                ("data.split.test_days",)),
    config_case("data-neighbours-unknown", "data.neighbours.n: 5 (k is the key)",
                dm(neighbours={"n": 5}), ("data.neighbours.n",)),
    # model (ltr fit's model section; MMoE / PLE rankers)
    config_case("model-lr-negative", "model.lr: -0.1", module(lr=-0.1), ("model.lr", "-0.1")),
    config_case("model-lr-text", "model.lr: 'fast'", module(lr="fast"), ("model.lr",)),
    config_case("model-dropout-one", "model.dropout: 1", module(dropout=1.0),
                ("model.dropout",)),
    config_case("model-n-experts-zero", "model.n_experts: 0", module(n_experts=0),
                ("model.n_experts",)),
    config_case("model-task-unknown", "model.tasks: [views]", module(tasks=["views"]),
                ("model.tasks", "views")),
    config_case("model-loss-unknown", "model.losses.click: 'hinge2'",
                module(losses={"click": "hinge2"}), ("model.losses.click", "hinge2")),
    config_case("model-loss-stray-task", "model.losses for a task not in model.tasks",
                module(tasks=["click"], losses={"purchase": "bce"}),
                ("model.losses.purchase",)),
    config_case("model-task-weighting-unknown", "model.task_weighting: 'magic'",
                module(task_weighting="magic"), ("model.task_weighting",)),
    config_case("model-backbone-unknown", "model.backbone: 'moe2'", module(backbone="moe2"),
                ("model.backbone", "moe2")),
    config_case("model-lce-temperature-zero", "model.lce_temperature: 0",
                module(lce_temperature=0.0), ("model.lce_temperature",)),
    config_case("model-distill-alpha", "model.distill.alpha: 2",
                model_section(distill={"alpha": 2}), ("model.distill.alpha",)),
    # rankers (ltr benchmark's models[i], ltr sweep's model/fixed)
    config_case("ranker-unknown-name", "models[0].name: 'lightgbm'", ranker("lightgbm"),
                ("models[0].name", "lightgbm")),
    config_case("ranker-unknown-param", "xgboost with params.max_deep",
                ranker("xgboost", {"max_deep": 3}), ("models[0].params.max_deep",)),
    config_case("ranker-xgboost-zero-trees", "xgboost n_estimators: 0",
                ranker("xgboost", {"n_estimators": 0}), ("n_estimators",)),
    config_case("ranker-xgboost-depth-text", "xgboost max_depth: 'deep'",
                ranker("xgboost", {"max_depth": "deep"}), ("max_depth",)),
    config_case("ranker-neural-zero-epochs", "dcnv2 max_epochs: 0 (would save an "
                "untrained model)", ranker("dcnv2", {"max_epochs": 0}), ("max_epochs",)),
    config_case("ranker-neural-lr-negative", "ft_transformer lr: -1",
                ranker("ft_transformer", {"lr": -1.0}), ("lr",)),
    config_case("ranker-mmoe-lr-negative", "mmoe lr: -0.1",
                ranker("mmoe", {"lr": -0.1}), ("models[0].params.lr",)),
    config_case("ranker-params-not-mapping", "params: [1, 2]", ranker("xgboost", [1, 2]),
                ("params",)),
    config_case("ranker-mmoe-unknown-param", "mmoe with params.n_expert (a typo)",
                ranker("mmoe", {"n_expert": 2}), ("models[0].params.n_expert",)),
    config_case("ranker-bm25-b-above-1", "bm25 b: 2", ranker("bm25", {"b": 2.0}),
                ("models[0].params.b",)),
    # label rule
    config_case("labels-weight-text", "labels.behaviour_weight: 'high'",
                labels(behaviour_weight="high"), ("labels.behaviour_weight",)),
    config_case("labels-weight-above-1", "labels.behaviour_weight: 1.5",
                labels(behaviour_weight=1.5), ("labels.behaviour_weight",)),
    config_case("labels-unknown-key", "labels.click_weigth (a typo)",
                labels(click_weigth=1.0), ("labels.click_weigth",)),
    config_case("labels-grades-one", "labels.n_grades: 1", labels(n_grades=1),
                ("labels.n_grades",)),
    config_case("labels-position-bias-unknown", "labels.position_bias: 'cascade'",
                labels(position_bias="cascade"), ("labels.position_bias",)),
    config_case("labels-lexical-weight-negative", "labels.lexical_weight: -1",
                labels(lexical_weight=-1.0), ("labels.lexical_weight",)),
    # sweep
    config_case("sweep-zero-trials", "study.n_trials: 0", sweep(study={"n_trials": 0}),
                ("study.n_trials",)),
    config_case("sweep-timeout-negative", "study.timeout: -5", sweep(study={"timeout": -5}),
                ("study.timeout",)),
    config_case("sweep-storage-not-url", "study.storage: 'study.db'",
                sweep(study={"storage": "study.db"}), ("study.storage",)),
    config_case("sweep-unknown-top-key", "a top-level key 'trials'", sweep(trials=5),
                ("trials",)),
    config_case("sweep-space-low-above-high", "space.max_depth low 6 > high 2",
                sweep(space={"max_depth": {"type": "int", "low": 6, "high": 2}}),
                ("space.max_depth",)),
    config_case("sweep-space-unknown-param", "space.depth (not an xgboost parameter)",
                sweep(space={"depth": {"type": "int", "low": 2, "high": 6}}),
                ("space.depth",)),
    config_case("sweep-metric-unknown", "study.metric: 'precision'",
                sweep(study={"metric": "precision"}), ("study.metric",)),
    config_case("sweep-space-step-with-log", "space.lr with step and log: true",
                sweep(space={"learning_rate": {"type": "float", "low": 0.01, "high": 0.1,
                                               "log": True, "step": 0.01}}),
                ("space.learning_rate.step",)),
    config_case("sweep-fixed-and-searched", "max_depth both fixed and searched",
                sweep(fixed={"max_depth": 3}), ("space.max_depth",)),
    config_case("sweep-direction-unknown", "study.direction: 'up'",
                sweep(study={"direction": "up"}), ("study.direction",)),
    # benchmark
    config_case("benchmark-no-models", "models: []", benchmark(models=[]), ("models",)),
    config_case("benchmark-model-without-name", "models: [{params: {}}]",
                benchmark(models=[{"params": {}}]), ("models[0]",)),
    config_case("benchmark-data-bad-before-work", "data.folds: -1 in a benchmark config "
                "(refused before any folder is made)",
                benchmark(data={"folds": -1}, models=[{"name": "bm25"}]), ("data.folds",)),
    config_case("benchmark-data-loader-key", "data.batch_size in a benchmark config (read "
                "only by ltr fit's loaders: refused, not ignored)",
                benchmark(data={"batch_size": 8}, models=[{"name": "bm25"}]),
                ("data.batch_size", "models[i].params.batch_size")),
    config_case("benchmark-unknown-key", "a top-level key 'model'",
                benchmark(model="xgboost", models=[{"name": "bm25"}]), ("model",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_config(case: Case, tiny_log_dir: Path, tmp_path: Path) -> None:
    case.run({"log": tiny_log_dir, "tmp": tmp_path})
