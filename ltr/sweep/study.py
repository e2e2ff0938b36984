"""Run or resume an Optuna study over one ranker, and export the best trial.

Config keys: the schema :class:`SweepRun` (``data``, ``model``, ``fixed``, ``space``,
``study``, ``out``; every key checked before any trial, docs/configuration.md).

* The data is prepared once per process (:class:`~ltr.training.datamodule.LtrDataModule`,
  cached by its arguments); every trial fits ``make_ranker(model, fixed ∪ sampled)`` on it
  and returns a validation metric (``study.metric``, default ``ndcg@10`` of
  ``ranker.score(data.valid, data)`` against :func:`~ltr.rankers.base.ranking_target`).
* Per-trial seed ``study.seed + trial.number`` (user attribute ``seed``), passed as the
  ranker's ``seed`` unless ``fixed`` sets one. User attribute ``params`` holds the full
  parameters; a trial that raises is recorded as FAIL with user attribute ``error``.
* Pruning: XGBoost reports ``validation_0-ndcg@10`` per boosting round
  (``optuna_integration.XGBoostPruningCallback``), the neural rankers (dcnv2, tabnet,
  ft_transformer, mmoe, ple) ``val/ndcg@10`` per epoch (``PyTorchLightningPruningCallback``),
  as each ranker declares (:class:`ltr.rankers.base.Capabilities`).
  MMoE and the references are not pruned.
* Storage: any SQLAlchemy URL (default ``sqlite:///<out>/study.db``), created or loaded
  (``load_if_exists``). ``n_trials`` is the study's total: trials that are finished
  (complete, pruned, failed) or running count, so a resumed or second worker runs only
  what is left. Running trials of a dead worker stop counting once their heartbeat is
  older than ``2 * study.heartbeat`` seconds (they are then marked failed).
* Export (``out/export``): ``best.yaml`` (an ``ltr benchmark --config`` config of the best
  trial), ``trials.csv``, ``history.png``, ``importances.png``; written to a temporary
  folder and renamed into place (:func:`ltr.io.atomic_dir`), so a killed export leaves the
  previous one whole. The study storage is never touched by it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import PathStr, Section, Str
from ltr.errors import ConfigError
from ltr.sweep.space import Param, Space, check_space, known_params, merge, nest
from ltr.training.sections import check_data

PRUNERS = ("median", "hyperband", "none")
METRIC = re.compile(r"^(ndcg@\d+|engagement_ndcg@(5|10)|"
                    r"(mrr@10_|auc_)(click|add_to_cart|purchase))$")


def _metric(name: str) -> str:
    if not METRIC.match(name):
        raise FieldProblem(None, f"unknown metric {name!r}; use ndcg@<k>, "
                           "engagement_ndcg@5/10, mrr@10_<task> or auc_<task>")
    return name


def _url(url: str | None) -> str | None:
    if url is not None and "://" not in url:
        raise FieldProblem(None, f"must be an SQLAlchemy URL, got {url!r}")
    return url


class Study(Section):
    """The ``study`` section of ``ltr sweep``."""

    name: Str | None = Field(None, description="study name (default: `<model>-sweep`)")
    storage: Annotated[Str | None, AfterValidator(_url)] = Field(
        None, description="SQLAlchemy URL (default `sqlite:///<out>/study.db`)")
    direction: Literal["maximize", "minimize"] = Field(
        "maximize", description="maximize or minimize the metric")
    n_trials: Annotated[int, Range(ge=1, integer=True)] = Field(
        20, description="the study's total trials, over every worker and resume")
    timeout: Annotated[float | None, Range(gt=0, optional=True)] = Field(
        None, description="seconds this worker runs at most")
    metric: Annotated[Str, AfterValidator(_metric)] = Field(
        "ndcg@10", description="validation metric: ndcg@k, engagement_ndcg@5|10, "
        "mrr@10_/auc_<task>")
    seed: Annotated[int, Range(integer=True)] = Field(
        0, description="sampler seed; trial seed = seed + trial number")
    pruner: Literal[PRUNERS] = Field("median", description="median, hyperband or none")
    heartbeat: Annotated[float, Range(gt=0)] = Field(
        10, description="seconds between a running trial's heartbeats")


STUDY_DEFAULTS: dict[str, Any] = {k: f.default for k, f in Study.model_fields.items()}


def _fixed_or_searched(run: Any) -> Any:
    for name in run.space:
        if name in (run.fixed or {}):
            raise FieldProblem(f"space.{name}", "is also set under 'fixed'")
    return run


class SweepRun(Section):
    """The whole ``ltr sweep`` config."""

    data: Annotated[dict[Str, Any] | None, AfterValidator(check_data)] = Field(
        None, description="the data module's arguments (the `data` section above)")
    model: Str = Field(description="the ranker kind searched (`ltr.rankers.base.RANKERS`)")
    fixed: dict[Str, Any] | None = Field(None, description="its fixed `params`")
    space: Space = Field(description="parameter (dotted for nested keys) -> distribution: "
                         "`{type: int|float, low, high, step, log}` or `{type: "
                         "categorical, choices}` (docs/sweeps.md)")
    study: Study | None = Field(None, description="the study settings (`study.*` below)")
    out: PathStr | None = Field(None, description="output folder: study.db, and export/ "
                                "with best.yaml, trials.csv, plots (default "
                                "`runs/sweeps/<model>`)")

    def model_post_init(self, context: Any) -> None:
        _fixed_or_searched(self)


TOP_KEYS = set(SweepRun.model_fields)

_PREPARED: dict[str, Any] = {}


@dataclass
class SweepConfig:
    """A validated sweep config (see ``docs/sweeps.md``)."""

    data: dict[str, Any]
    model: str
    fixed: dict[str, Any]
    params: list[Param]
    study: dict[str, Any]
    out: Path
    raw: dict[str, Any] = field(default_factory=dict)


def parse_config(raw: dict[str, Any]) -> SweepConfig:
    """Check every key of a sweep config (:class:`SweepRun`); nothing is fitted or
    prepared."""
    from ltr.config_schema import validate

    run = validate(SweepRun, raw)
    model = run.model
    fixed = dict(run.fixed or {})
    params = [entry.param(str(name)) for name, entry in run.space.items()]
    out = Path(run.out or f"runs/sweeps/{model}")
    study = (run.study or Study()).model_dump()
    study["name"] = study["name"] or f"{model}-sweep"
    study["storage"] = study["storage"] or f"sqlite:///{out / 'study.db'}"
    check_space(model, fixed, params)
    return SweepConfig(dict(run.data or {}), model, fixed, params, study, out, raw)


# ---------------------------------------------------------------------- study
def storage(url: str, heartbeat: float = 10) -> Any:
    """An :class:`optuna.storages.RDBStorage` with heartbeats (stale trials -> FAIL)."""
    import warnings

    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are an ExperimentalWarning
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                          heartbeat_interval=int(max(1, heartbeat)),
                                          grace_period=int(max(2, 2 * heartbeat)))


def _pruner(name: str) -> Any:
    import optuna

    if name == "median":
        # no pruning before 5 finished trials, nor in the first 3 reported steps (boosting
        # rounds or epochs): the first rounds are too noisy to judge a trial by
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def open_study(cfg: SweepConfig) -> Any:
    """Create the study or load it (resume)."""
    import optuna

    s = cfg.study
    for attempt in range(5):  # two workers starting together race to create the tables
        try:
            store = storage(s["storage"], s["heartbeat"])
            study = optuna.create_study(storage=store, study_name=s["name"],
                                        direction=s["direction"], pruner=_pruner(s["pruner"]),
                                        load_if_exists=True)
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    if study.direction.name.lower() != s["direction"]:
        raise ConfigError("study.direction", f"study '{s['name']}' in {s['storage']} was "
                          f"created with {study.direction.name.lower()}")
    done = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=s["seed"] + done)
    return study


def trials_left(study: Any, n_trials: int) -> int:
    """``n_trials`` minus the trials that count (finished, running, waiting)."""
    import warnings

    from optuna.storages import fail_stale_trials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning
        fail_stale_trials(study)
    return n_trials - len(study.get_trials(deepcopy=False))


def prepared(data_cfg: dict[str, Any]) -> Any:
    """The prepared data of ``data_cfg``, once per process."""
    key = json.dumps(data_cfg, sort_keys=True, default=str)
    if key not in _PREPARED:
        from ltr.training.datamodule import LtrDataModule

        _PREPARED[key] = LtrDataModule(**data_cfg).prepared
    return _PREPARED[key]


def validation_metric(scores: np.ndarray, data: Any, metric: str) -> float:
    """``metric`` of ``scores`` on ``data.valid`` (see :data:`METRIC`)."""
    from ltr.evaluation.engine import evaluate_lists

    values = evaluate_lists(scores, data.valid)  # ndcg@k: against the relevance labels
    if metric not in values:
        raise ConfigError("study.metric", f"{metric!r} cannot be computed on the validation "
                          f"lists; available: {sorted(values)}")
    return float(values[metric])


def _pruning_callback(model: str, trial: Any) -> Any | None:
    """The trial's pruning callback, by the ranker's declared capability."""
    from ltr.rankers.base import capabilities

    how = capabilities(model, "model").prunable
    if how == "xgboost":
        from optuna_integration import XGBoostPruningCallback

        return XGBoostPruningCallback(trial, "validation_0-ndcg@10")
    if how == "lightning":
        from optuna_integration import PyTorchLightningPruningCallback

        return PyTorchLightningPruningCallback(trial, "val/ndcg@10")
    return None


def make_objective(cfg: SweepConfig, data: Any) -> Any:
    """The trial function: sample, fit, score on the validation lists."""
    import optuna

    from ltr.rankers.base import make_ranker

    takes_seed = "seed" in (known_params(cfg.model) or set())
    pruning = cfg.study["pruner"] != "none"

    def objective(trial: optuna.Trial) -> float:
        seed = cfg.study["seed"] + trial.number
        trial.set_user_attr("seed", seed)
        try:
            sampled = nest({p.name: p.suggest(trial) for p in cfg.params})
            params = merge(cfg.fixed, sampled)
            if takes_seed and "seed" not in params:
                params["seed"] = seed
            trial.set_user_attr("params", params)
            ranker = make_ranker(cfg.model, params, "model")
            callback = _pruning_callback(cfg.model, trial) if pruning else None
            if callback is not None:
                ranker.callbacks = [callback]
            ranker.fit(data)
            return validation_metric(ranker.score(data.valid, data), data,
                                     cfg.study["metric"])
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    return objective


def run_sweep(raw: dict[str, Any], data: Any = None) -> Any:
    """Run (or resume) the sweep of config ``raw``; export; return the study.

    ``data``: already prepared data to use instead of preparing ``raw["data"]``.
    """
    import optuna

    from ltr.io import check_output_dir

    cfg = parse_config(raw)
    check_output_dir(cfg.out / EXPORT_DIR, "sweep", EXPORT_FILES)  # before any trial
    study = open_study(cfg)
    s = cfg.study
    left = trials_left(study, s["n_trials"])
    if left <= 0:
        print(f"study '{s['name']}' already has {s['n_trials']} trials", flush=True)
    else:
        data = prepared(cfg.data) if data is None else data
        objective = make_objective(cfg, data)
        start = time.monotonic()
        while trials_left(study, s["n_trials"]) > 0:
            timeout = None
            if s["timeout"] is not None:
                timeout = s["timeout"] - (time.monotonic() - start)
                if timeout <= 0:
                    break
            study.optimize(objective, n_trials=1, timeout=timeout, catch=(Exception,),
                           gc_after_trial=True)
            last = study.get_trials(deepcopy=False)[-1]
            if last.state == optuna.trial.TrialState.FAIL:
                print(f"trial {last.number} failed: {last.user_attrs.get('error')}",
                      flush=True)
    export(study, cfg)
    return study


def trial_states(study: Any) -> dict[str, int]:
    """How many trials of ``study`` are in each state (``{"COMPLETE": 3, "PRUNED": 1}``)."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return states


def require_completed(study: Any) -> None:
    """Raise :class:`~ltr.errors.TrainingError` when ``study`` has no completed trial
    (every trial failed or was pruned, or none ran): ``ltr sweep`` then exits non-zero
    instead of reporting a sweep that found nothing as done."""
    import optuna

    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return
    from ltr.errors import TrainingError

    seen = trial_states(study) or "no trials"
    raise TrainingError(f"study '{study.study_name}' has no completed trial ({seen}): no "
                        "best configuration was written; see the trial errors above "
                        "(study.timeout, study.n_trials)")


# ---------------------------------------------------------------------- export
def best_config(study: Any, cfg: SweepConfig) -> dict[str, Any] | None:
    """An ``ltr benchmark`` config of the best trial (None without a completed trial)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    best = study.best_trial
    params = best.user_attrs.get("params") or merge(cfg.fixed, nest(best.params))
    return {"data": cfg.data, "models": [{"name": cfg.model, "params": params}],
            "out": str(cfg.out / "benchmark")}


EXPORT_DIR = "export"  # the export set's folder in ``out``, beside study.db
EXPORT_FILES = ("best.yaml", "trials.csv", "history.png", "importances.png")  # its files


def export(study: Any, cfg: SweepConfig) -> dict[str, Path]:
    """Write ``best.yaml``, ``trials.csv`` and the plots to ``cfg.out / "export"``, whole or
    not at all (the study storage, e.g. ``out/study.db``, is left alone); return paths."""
    import yaml

    from ltr.io import atomic_dir, fault_point, write_table, write_text

    folder = cfg.out / EXPORT_DIR
    paths: dict[str, Path] = {}
    with atomic_dir(folder, owner="sweep", main_files=EXPORT_FILES) as tmp:
        table = study.trials_dataframe()
        if len(table):
            paths["trials"] = write_table(table, tmp / "trials.csv")
        fault_point("between-files", "sweep")
        best = best_config(study, cfg)
        if best is None:
            print("no completed trial: best.yaml not written", flush=True)
        else:
            head = (f"# best trial {study.best_trial.number} of study "
                    f"'{cfg.study['name']}': {cfg.study['metric']} = "
                    f"{study.best_value:.4f}\n"
                    f"# ltr benchmark --config {folder / 'best.yaml'}\n")
            paths["best"] = write_text(head + yaml.safe_dump(best, sort_keys=False),
                                       tmp / "best.yaml")
        paths.update(plot_study(study, tmp))
    paths = {name: folder / path.relative_to(tmp) for name, path in paths.items()}
    if "best" in paths:
        print(f"best trial {study.best_trial.number}: {cfg.study['metric']}="
              f"{study.best_value:.4f} -> {paths['best']}", flush=True)
    return paths


def plot_study(study: Any, out: Path) -> dict[str, Path]:
    """Optimisation history and parameter importances as PNG (skipped with a message
    when there are too few completed trials)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    paths: dict[str, Path] = {}
    plots = [("history", ovm.plot_optimization_history, 1),
             ("importances", ovm.plot_param_importances, 2)]
    for name, fn, need in plots:
        if len(done) < need:
            print(f"{name}.png skipped: needs {need} completed trials, has {len(done)}",
                  flush=True)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.tight_layout()
            fig.savefig(out / f"{name}.png", dpi=110)
            plt.close(fig)
            paths[name] = out / f"{name}.png"
        except Exception as exc:  # e.g. importances when no parameter varies
            print(f"{name}.png skipped: {exc}", flush=True)
    return paths
