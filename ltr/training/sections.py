"""The schema of ``ltr fit``'s ``model`` section and of the MMoE / PLE rankers' ``params``.

LightningCLI types the command line from :class:`~ltr.training.module.LtrModule`'s
signature; the schema (:func:`model_schema`) is that signature with the module's
``RANGES`` and the narrower types below (choices, the ``distill`` section), checked by
``ltr fit`` before the data are prepared (:class:`ltr.training.cli.LtrCLI`) and by the
MMoE / PLE rankers at construction, and printed by :mod:`ltr.config_reference`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Section, Str, signature_schema, unique_list, validate
from ltr.errors import ConfigError
from ltr.features.spec import TASK_COLUMNS

TASKS = Literal[tuple(TASK_COLUMNS)]
Width = Annotated[int, Range(ge=1, integer=True)]


class Distill(Section):
    """``model.distill``: multi-round self-distillation against label noise."""

    rounds: Annotated[int, Range(ge=0, integer=True)] = Field(
        0, description="distillation rounds (0: off)")
    alpha: Annotated[float, Range(ge=0, le=1)] = Field(
        0.5, description="weight of the label against the teacher in the new target")
    every: Annotated[int, Range(ge=1, integer=True)] = Field(
        2, description="epochs between rounds")


def _interactions(names: list[str]) -> list[str]:
    from ltr.text.config import validate_interactions

    try:
        validate_interactions(names)
    except ConfigError as exc:
        raise FieldProblem(None, exc.problem) from exc
    return names


def _losses_of_tasks(args: Any) -> Any:
    tasks = args.tasks or list(TASK_COLUMNS)
    stray = sorted(set(args.losses or {}) - set(tasks))
    if stray:
        raise FieldProblem(f"losses.{stray[0]}", "is not one of model.tasks")
    return args


def _lce_needs_tuning(args: Any) -> Any:
    if args.lce_weight > 0 and not args.trainable_layers:
        raise FieldProblem("lce_weight", "must be >= 0, and > 0 only with "
                           "model.trainable_layers > 0 (it trains the text encoder)")
    return args


def model_types() -> dict[str, Any]:
    """Types narrower than :class:`LtrModule`'s signature (choices from the registries)."""
    from ltr.losses.registry import LOSSES
    from ltr.models import registry
    from ltr.text.config import INTERACTION_NAMES

    # every registered backbone: multi-task ones, and single-score ones where registered
    backbones = (*registry.BACKBONES, *getattr(registry, "SCORERS", {}))

    return {
        "tasks": unique_list(TASKS, min_length=1, what="task") | None,
        "losses": dict[TASKS, Literal[tuple(LOSSES)]] | None,
        "task_weighting": Literal["fixed", "uncertainty"],
        "task_weights": dict[TASKS, Annotated[float, Range(ge=0)]] | None,
        "score_selection": Literal["validation", "fixed"],
        "interactions": Annotated[list[Literal[INTERACTION_NAMES]],
                                  AfterValidator(_interactions)] | None,
        "tuned_tower": Literal["query", "shared"],
        "distill": Distill | None,
        "backbone": Literal[backbones],
        "backbone_args": dict[Str, Any] | None,
        "bottom": list[Width] | None, "expert_hidden": list[Width] | None,
        "tower_hidden": list[Width] | None,
    }


VALIDATORS = {"losses_of_tasks": _losses_of_tasks, "lce_needs_tuning": _lce_needs_tuning}


@functools.cache
def model_schema() -> type[Section]:
    """The ``model`` section of ``ltr fit`` (``feature_dims`` is filled in from the data
    module, not configured)."""
    from ltr.training.module import LtrModule

    return signature_schema("ModelSection", LtrModule.__init__, ranges=LtrModule.RANGES,
                            types_=_present(model_types(), LtrModule.__init__),
                            skip=("feature_dims",), doc=LtrModule,
                            validators=_present_validators(LtrModule.__init__))


@functools.cache
def ranker_schema() -> type[Section]:
    """The ``params`` of the ``mmoe`` / ``mmoe_tabular`` / ``ple`` rankers: the model
    section plus the training loop's keys."""
    from ltr.rankers.mmoe import TRAINER_KEYS
    from ltr.training.module import LtrModule
    from ltr.training.trainer import TRAINING_RANGES

    docs = {"max_epochs": "epochs at most (early stopping on val/ndcg@10)",
            "patience": "epochs without a better val/ndcg@10 before stopping",
            "batch_size": "lists per training batch", "seed": "training seed",
            "sampling": "`uniform`, or `diverse` (lists drawn by outcome, "
                        "`ltr.training.datamodule.DEFAULT_RATES`)"}
    extra: dict[str, Any] = {}
    for key, default in TRAINER_KEYS.items():
        tp = Literal["uniform", "diverse"] if key == "sampling" else \
            Annotated[Any, TRAINING_RANGES[key]]
        extra[key] = (tp, Field(default, description=docs.get(key, "")))
    return signature_schema("RankerParams", LtrModule.__init__, ranges=LtrModule.RANGES,
                            types_=_present(model_types(), LtrModule.__init__),
                            skip=("feature_dims",), doc=LtrModule, extra_fields=extra,
                            validators=_present_validators(LtrModule.__init__))


def _present(types_: dict[str, Any], func: Any) -> dict[str, Any]:
    """Only the overrides of arguments the signature still has."""
    import inspect

    names = set(inspect.signature(func).parameters)
    return {k: v for k, v in types_.items() if k in names}


def _present_validators(func: Any) -> dict[str, Any]:
    import inspect

    names = set(inspect.signature(func).parameters)
    need = {"losses_of_tasks": {"losses", "tasks"},
            "lce_needs_tuning": {"lce_weight", "trainable_layers"}}
    return {k: v for k, v in VALIDATORS.items() if need[k] <= names}


def check_model(args: dict[str, Any], prefix: str = "model") -> None:
    """Check a ``model`` section (a mapping of :class:`LtrModule` arguments)."""
    validate(model_schema(), {k: v for k, v in args.items() if k != "feature_dims"}, prefix)


def check_data(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``data`` section of ``ltr benchmark`` / ``ltr sweep`` checked against the data
    module's schema without the loader keys those commands do not read (errors name
    ``data.<key>``)."""
    if data is not None:
        from ltr.training.datamodule import LtrDataModule

        LtrDataModule.check_args(data, loaders=False)
    return data
