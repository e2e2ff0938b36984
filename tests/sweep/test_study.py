"""Sweeps run, export, resume, survive failing trials, prune, and share a study."""

from __future__ import annotations

import optuna
import pytest
import yaml

from ltr.cli import main as ltr
from ltr.sweep import study as sweep_study
from ltr.sweep.study import run_sweep
from tests.sweep.conftest import write_yaml

State = optuna.trial.TrialState


def _study(cfg):
    return optuna.load_study(study_name=cfg["study"]["name"], storage=cfg["study"]["storage"])


def test_sweep_exports_a_benchmark_config(xgb_cfg, tmp_path):
    path = write_yaml(xgb_cfg, tmp_path / "sweep.yaml")
    assert ltr(["sweep", "--config", str(path)]) == 0
    study = _study(xgb_cfg)
    assert [t.state for t in study.trials] == [State.COMPLETE] * 3
    assert [t.user_attrs["seed"] for t in study.trials] == [0, 1, 2]
    out = tmp_path / "out" / "export"
    best = yaml.safe_load((out / "best.yaml").read_text())
    params = best["models"][0]["params"]
    assert best["models"][0]["name"] == "xgboost"
    assert params["max_depth"] == study.best_params["max_depth"]
    assert params["n_estimators"] == 8 and params["seed"] == study.best_trial.number
    assert (out / "trials.csv").exists() and (out / "history.png").exists()
    assert (out / "importances.png").exists()
    best["out"] = str(tmp_path / "bench")
    bench = write_yaml(best, tmp_path / "best.yaml")
    assert ltr(["benchmark", "--config", str(bench), "--set", "save_models=false"]) == 0
    assert (tmp_path / "bench" / "results.csv").exists()


def test_resume_runs_only_what_is_left(xgb_cfg):
    xgb_cfg["study"]["n_trials"] = 2
    run_sweep(xgb_cfg)
    assert len(_study(xgb_cfg).trials) == 2
    xgb_cfg["study"]["n_trials"] = 4
    study = run_sweep(xgb_cfg)
    assert len(study.trials) == 4 and [t.number for t in study.trials] == [0, 1, 2, 3]
    run_sweep(xgb_cfg)  # nothing left
    assert len(_study(xgb_cfg).trials) == 4


def test_failing_trial_is_recorded_and_study_goes_on(xgb_cfg, monkeypatch):
    from ltr.rankers.xgboost import XGBoostRanker

    fit, calls = XGBoostRanker._fit, []

    def flaky(self, data):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom in trial")
        return fit(self, data)

    monkeypatch.setattr(XGBoostRanker, "_fit", flaky)
    study = run_sweep(xgb_cfg)
    states = [t.state for t in study.trials]
    assert states == [State.COMPLETE, State.FAIL, State.COMPLETE]
    assert "boom in trial" in study.trials[1].user_attrs["error"]


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


@pytest.mark.parametrize("model,fixed,space", [
    ("xgboost", {"n_estimators": 8, "use_text": False, "n_jobs": 1},
     {"max_depth": {"type": "int", "low": 2, "high": 4}}),
    ("dcnv2", {"max_epochs": 3, "use_text": False, "batch_size": 64},
     {"arch.n_cross": {"type": "int", "low": 1, "high": 2}}),
])
def test_pruning_hooks_report_and_prune(xgb_cfg, monkeypatch, model, fixed, space):
    monkeypatch.setattr(sweep_study, "_pruner", lambda name: _AlwaysPrune())
    cfg = {**xgb_cfg, "model": model, "fixed": fixed, "space": space,
           "study": {**xgb_cfg["study"], "pruner": "median", "n_trials": 2}}
    study = run_sweep(cfg)
    assert [t.state for t in study.trials] == [State.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in study.trials)
