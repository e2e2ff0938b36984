"""``ltr benchmark`` builds its whole output set (models/, results.*) beside ``out`` and
renames it into place at the end: a run killed between two rankers' files leaves the
previous set byte for byte; the next run succeeds and removes the killed run's folder."""

from __future__ import annotations

import yaml

from ltr.cli import main as ltr
from ltr.io import OUTPUT_MARKER
from tests.test_io import leftovers, run_ltr, snapshot
from tests.training.test_prepare import FEATURES


def test_killed_benchmark_leaves_the_previous_set_whole(tiny_log_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"data_dir": str(tiny_log_dir), "features": FEATURES, "folds": 3, "fold": 0,
                 "pool_lists": 1, "text": None},
        "out": str(out),
        "models": [{"name": "bm25"},
                   {"name": "xgboost", "params": {"n_estimators": 4, "use_text": False,
                                                  "n_jobs": 1}}]}))
    args = ["benchmark", "--config", str(cfg)]
    assert ltr(args) == 0
    first = snapshot(out)
    assert {"results.csv", "results.md", "models/bm25/ranker.json",
            "models/xgboost/ranker.json", OUTPUT_MARKER} <= set(first)

    killed = run_ltr(args, "between-files:benchmark")  # after bm25 is saved
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert snapshot(out) == first and len(leftovers(out)) == 1

    assert ltr(args) == 0
    assert set(snapshot(out)) == set(first) and leftovers(out) == []
    capsys.readouterr()
