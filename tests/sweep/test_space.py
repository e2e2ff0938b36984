"""Bad sweep configs fail before any trial, naming the key."""

from __future__ import annotations

import pytest

from ltr.errors import ConfigError
from ltr.sweep.space import merge, nest
from ltr.sweep.study import parse_config


def _with(cfg, **changes):
    out = dict(cfg)
    out.update(changes)
    return out


@pytest.mark.parametrize("space,key", [
    ({}, "space"),
    ({"max_dept": {"type": "int", "low": 2, "high": 4}}, "space.max_dept"),
    ({"max_depth": {"type": "int", "low": 5, "high": 4}}, "space.max_depth.low"),
    ({"max_depth": {"type": "int", "low": 2.5, "high": 4}}, "space.max_depth.low"),
    ({"max_depth": {"type": "int", "high": 4}}, "space.max_depth.low"),
    ({"max_depth": {"type": "range", "low": 2, "high": 4}}, "space.max_depth.type"),
    ({"max_depth": {"type": "int", "low": 2, "high": 4, "lo": 1}}, "space.max_depth.lo"),
    ({"learning_rate": {"type": "float", "low": 0.0, "high": 0.3, "log": True}},
     "space.learning_rate.low"),
    ({"objective": {"type": "categorical", "choices": []}}, "space.objective.choices"),
    ({"subsample": {"type": "float", "low": 0.0, "high": 1.0}}, "space.subsample"),
    ({"n_estimators": {"type": "int", "low": 2, "high": 4}}, "space.n_estimators"),
])
def test_bad_space_names_the_key(xgb_cfg, space, key):
    with pytest.raises(ConfigError) as info:
        parse_config(_with(xgb_cfg, space=space))
    assert info.value.key == key


def test_bad_nested_and_fixed_and_study_keys(xgb_cfg):
    dcn = _with(xgb_cfg, model="dcnv2", fixed={"max_epochs": 1},
                space={"arch.bogus": {"type": "int", "low": 1, "high": 2}})
    with pytest.raises(ConfigError) as info:
        parse_config(dcn)
    assert info.value.key == "space.arch.bogus"
    with pytest.raises(ConfigError) as info:
        parse_config(_with(xgb_cfg, fixed={"bogus": 1}))
    assert info.value.key == "fixed.bogus"
    for study, key in [({"metric": "precision"}, "study.metric"),
                       ({"n_trials": 0}, "study.n_trials"), ({"nope": 1}, "study.nope"),
                       ({"pruner": "asha"}, "study.pruner")]:
        with pytest.raises(ConfigError) as info:
            parse_config(_with(xgb_cfg, study={**xgb_cfg["study"], **study}))
        assert info.value.key == key
    with pytest.raises(ConfigError) as info:
        parse_config(_with(xgb_cfg, model="lightgbm"))
    assert info.value.key == "model"


def test_nest_and_merge():
    flat = {"lr": 0.1, "arch.n_cross": 3, "arch.deep": 2}
    assert nest(flat) == {"lr": 0.1, "arch": {"n_cross": 3, "deep": 2}}
    base = {"arch": {"rank": 4, "n_cross": 1}, "max_epochs": 2}
    assert merge(base, nest(flat)) == {"arch": {"rank": 4, "n_cross": 3, "deep": 2},
                                       "max_epochs": 2, "lr": 0.1}
    assert base["arch"]["n_cross"] == 1
