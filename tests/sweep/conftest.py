"""Sweep configs over the tiny simulated log (no text, tiny rankers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.training.test_prepare import FEATURES, TASKS


@pytest.fixture(scope="session")
def data_cfg(tiny_log_dir) -> dict[str, Any]:
    return {"data_dir": str(tiny_log_dir), "tasks": TASKS, "features": FEATURES,
            "text": None, "folds": 3, "fold": 0, "hard_negatives": 2, "pool_lists": 1}


@pytest.fixture()
def xgb_cfg(data_cfg, tmp_path) -> dict[str, Any]:
    return {
        "data": data_cfg, "model": "xgboost",
        "fixed": {"n_estimators": 8, "use_text": False, "n_jobs": 1,
                  "early_stopping_rounds": None},
        "space": {"max_depth": {"type": "int", "low": 2, "high": 4},
                  "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True}},
        "study": {"name": "t", "storage": f"sqlite:///{tmp_path / 'study.db'}",
                  "n_trials": 3, "seed": 0, "pruner": "none", "heartbeat": 1},
        "out": str(tmp_path / "out"),
    }


def write_yaml(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
