"""The sweep export (``<out>/export``: best.yaml, trials.csv, plots) appears whole or not
at all and never touches the study storage beside it (``<out>/study.db`` by default)."""

from __future__ import annotations

import optuna

from ltr.io import OUTPUT_MARKER
from ltr.sweep.study import run_sweep
from tests.sweep.conftest import write_yaml
from tests.test_io import leftovers, run_ltr, snapshot


def test_killed_export_leaves_the_previous_export_and_the_study(xgb_cfg, tmp_path):
    xgb_cfg["study"].pop("storage")  # the default: sqlite:///<out>/study.db
    xgb_cfg["study"]["n_trials"] = 2
    out = tmp_path / "out"
    export = out / "export"
    run_sweep(xgb_cfg)
    first = snapshot(export)
    assert {"best.yaml", "trials.csv", "history.png", OUTPUT_MARKER} <= set(first)
    assert (out / "study.db").exists()
    args = ["sweep", "--config", str(write_yaml(xgb_cfg, tmp_path / "sweep.yaml"))]

    # the study is complete: a rerun only exports; kill it inside the export
    killed = run_ltr(args, "between-files:sweep")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert snapshot(export) == first and len(leftovers(export)) == 1
    assert (out / "study.db").exists()

    study = run_sweep(xgb_cfg)  # resumes the same study: nothing lost, nothing left over
    assert len(study.trials) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert set(snapshot(export)) == set(first) and leftovers(export) == []
    assert sorted(p.name for p in out.iterdir()) == ["export", "study.db"]
