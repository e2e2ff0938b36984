"""Declared ranges: described, checked, and enforced before any work starts."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from ltr.checks import Range, check_ranges
from ltr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rule,text,good,bad", [
    (Range(gt=0), "> 0", [1e-9, 3], [0, -0.1, math.nan, "1", True, None]),
    (Range(ge=0, lt=1), "in [0, 1)", [0, 0.5], [1, -1e-9]),
    (Range(ge=1, integer=True), "an integer >= 1", [1, 7], [0, 1.0, 2.5]),
    (Range(le=2, optional=True), "<= 2 (or null)", [None, 2, -5], [2.1]),
    (Range(integer=True), "an integer", [0, -3], [0.5]),
])
def test_ranges_describe_and_check(rule, text, good, bad):
    assert rule.describe() == text
    assert all(rule.ok(v) for v in good)
    assert not any(rule.ok(v) for v in bad)


def test_check_ranges_names_the_dotted_key():
    with pytest.raises(ConfigError) as err:
        check_ranges({"lr": -0.1, "other": "x"}, {"lr": Range(gt=0)}, "model")
    assert err.value.key == "model.lr"
    assert str(err.value) == "config key 'model.lr': must be > 0, got -0.1"
    check_ranges({}, {"lr": Range(gt=0)}, "model")  # absent keys are not checked


def test_ltr_fit_refuses_a_bad_value_before_any_work(tmp_path, tiny_log_dir, capsys):
    from ltr.cli import main

    t0 = time.perf_counter()
    code = main(["fit", "--config", str(ROOT / "configs" / "mmoe.yaml"), "--data.data_dir", str(tiny_log_dir),
                 "--model.lr", "-0.1", "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    assert "model.lr': must be > 0, got -0.1" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.ckpt"))
    assert time.perf_counter() - t0 < 60  # refused at construction, not after preparing


def test_rankers_check_their_parameters_at_construction():
    from ltr.rankers.base import make_ranker

    with pytest.raises(ConfigError, match="model.params.max_epochs"):
        make_ranker("dcnv2", {"max_epochs": 0})
    with pytest.raises(ConfigError, match=r"model.params.dropout': must be in \[0, 1\)"):
        make_ranker("mmoe", {"dropout": 1.5})
