"""Several processes on one SQLite study: shared target, no lost or duplicate trials, and
a killed worker's sweep resumes to the target."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna

from ltr.sweep.study import run_sweep
from tests.conftest import ROOT
from tests.sweep.conftest import write_yaml

State = optuna.trial.TrialState
FINISHED = (State.COMPLETE, State.PRUNED, State.FAIL)


def _worker(path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ltr.cli", "sweep", "--config", str(path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _load(cfg):
    return optuna.load_study(study_name=cfg["study"]["name"], storage=cfg["study"]["storage"])


def test_two_workers_share_the_target(xgb_cfg, tmp_path):
    xgb_cfg["study"]["n_trials"] = 6
    path = write_yaml(xgb_cfg, tmp_path / "sweep.yaml")
    procs = [_worker(path), _worker(path)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)[-4000:]
    trials = _load(xgb_cfg).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == State.COMPLETE for t in trials)


def test_killed_worker_then_resume_reaches_the_target(xgb_cfg, tmp_path):
    xgb_cfg["study"]["n_trials"] = 4
    xgb_cfg["fixed"]["n_estimators"] = 60  # trials long enough to be killed inside one
    path = write_yaml(xgb_cfg, tmp_path / "sweep.yaml")
    proc = _worker(path)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                done = _load(xgb_cfg).get_trials(states=(State.COMPLETE,))
            except KeyError:  # study not created yet
                done = []
            if done or proc.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert 1 <= len(_load(xgb_cfg).get_trials(states=(State.COMPLETE,))) < 4
    time.sleep(2.5)  # the dead worker's running trial is stale after 2 heartbeats
    study = run_sweep(xgb_cfg)
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(4))
    assert all(t.state in FINISHED for t in trials)
