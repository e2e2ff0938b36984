"""XGBoostRanker: learns a planted signal, round-trips through its folder, refuses bad
folders and inputs, and XGBoost's own NDCG@10 agrees with ltr's."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")

from ltr import __version__  # noqa: E402
from ltr.errors import ConfigError, DataValidationError  # noqa: E402
from ltr.metrics import ndcg  # noqa: E402
from ltr.rankers.base import (  # noqa: E402
    FORMAT_VERSION,
    MANIFEST,
    NotFittedError,
    load_ranker,
    make_ranker,
    ranking_target,
)
from ltr.rankers.xgboost import XGBoostRanker  # noqa: E402
from ltr.training.lists import ListData  # noqa: E402

F, C, L = 4, 2, 15
CARD = [6, 4]
FAST = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2, "subsample": 1.0,
        "colsample_bytree": 1.0, "early_stopping_rounds": 10, "n_jobs": 1,
        "use_text": False}


def make_lists(seed: int, n_lists: int, n_numeric: int = F, all_relevant: bool = False,
               shown: int = 10) -> ListData:
    """Lists of 4..L real slots; the grade is planted in numeric column 0 (plus noise).

    Some real slots have an unknown grade (NaN). Slots beyond ``shown`` have position 0
    (unknown, like hard negatives); the others are positions 1, 2, ... in slot order.
    ``all_relevant``: every list gets at least one slot of grade > 0.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, L + 1, size=n_lists)
    mask = np.arange(L)[None, :] < lengths[:, None]
    numeric = rng.normal(size=(n_lists, L, n_numeric)).astype(np.float32)
    categorical = np.stack([rng.integers(0, c, size=(n_lists, L)) for c in CARD], axis=-1)
    signal = numeric[..., 0] + 0.3 * rng.normal(size=(n_lists, L))
    grade = np.clip(np.floor(1.3 * signal + 2.0), 0, 4).astype(np.float32)
    if all_relevant:
        best = np.argmax(np.where(mask, signal, -np.inf), axis=1)
        grade[np.arange(n_lists), best] = np.maximum(grade[np.arange(n_lists), best], 1.0)
    grade[rng.random((n_lists, L)) < 0.05] = np.nan  # unknown grades
    grade = np.where(mask, grade, np.nan).astype(np.float32)
    numeric[~mask] = 0.0
    categorical[~mask] = 0
    position = np.where(mask & (np.arange(L)[None, :] < shown), np.arange(1, L + 1)[None, :],
                        0).astype(np.int64)
    product_id = np.where(mask, np.arange(n_lists * L).reshape(n_lists, L), None)
    return ListData(keys=np.arange(n_lists), numeric=numeric,
                    categorical=categorical.astype(np.int64),
                    query_text=np.zeros(n_lists, np.int64),
                    product_text=np.zeros((n_lists, L), np.int64), position=position,
                    mask=mask, product_id=product_id.astype(object),
                    labels={"relevance": grade})


def make_data(seed: int = 0, n_train: int = 80, n_valid: int = 30) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        train=make_lists(seed, n_train), valid=make_lists(seed + 1, n_valid),
        preprocessor=types.SimpleNamespace(numeric_width=F, cardinalities=list(CARD)),
        query_embeddings=None, product_embeddings=None)


def valid_mask(lists: ListData) -> np.ndarray:
    return lists.mask & np.isfinite(ranking_target(lists))


def subset(lists: ListData, keep: np.ndarray) -> ListData:
    """The lists ``keep`` (indices), every array cut alike."""
    return ListData(keys=lists.keys[keep], numeric=lists.numeric[keep],
                    categorical=lists.categorical[keep], query_text=lists.query_text[keep],
                    product_text=lists.product_text[keep], position=lists.position[keep],
                    mask=lists.mask[keep], product_id=lists.product_id[keep],
                    labels={k: v[keep] for k, v in lists.labels.items()})


@pytest.fixture(scope="module")
def data() -> types.SimpleNamespace:
    return make_data()


@pytest.fixture(scope="module")
def fitted(data: types.SimpleNamespace) -> XGBoostRanker:
    return XGBoostRanker(**FAST).fit(data)


def test_learns_planted_signal_on_held_out_lists(fitted: XGBoostRanker,
                                                 data: types.SimpleNamespace) -> None:
    test = make_lists(99, 60)
    scores = fitted.score(test, data)
    assert scores.shape == test.mask.shape
    assert np.isnan(scores[~test.mask]).all() and np.isfinite(scores[test.mask]).all()
    y, m = np.nan_to_num(ranking_target(test)), valid_mask(test)
    ours = ndcg(scores, y, m, k=10).mean
    rng = np.random.default_rng(0)
    random = np.mean([ndcg(rng.random(test.mask.shape), y, m, k=10).mean for _ in range(20)])
    assert ours > random + 0.2, (ours, random)
    assert ours > 0.85
    assert 0 <= fitted.best_iteration_ < FAST["n_estimators"]
    assert fitted.train_seconds_ > 0
    assert 0 < fitted.best_score_ <= 1


def test_save_load_gives_identical_scores(fitted: XGBoostRanker, data: types.SimpleNamespace,
                                          tmp_path: Path) -> None:
    test = make_lists(7, 20)
    folder = fitted.save(tmp_path / "xgb")
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, "model.json"])
    model = json.loads((folder / "model.json").read_text())  # XGBoost's JSON, not UBJSON
    assert "learner" in model
    for loaded in (XGBoostRanker.load(folder), load_ranker(folder)):
        assert isinstance(loaded, XGBoostRanker)
        np.testing.assert_array_equal(loaded.score(test, data), fitted.score(test, data))
        assert loaded.best_iteration_ == fitted.best_iteration_
        assert loaded.train_seconds_ == fitted.train_seconds_
        assert loaded.params == fitted.params


def test_score_before_fit_raises(data: types.SimpleNamespace) -> None:
    with pytest.raises(NotFittedError):
        XGBoostRanker(**FAST).score(data.valid, data)


def write_manifest(folder: Path, kind: str, version: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps({
        "kind": kind, "format_version": version, "ltr_version": __version__, "params": {},
        "input_widths": {"numeric": F, "categorical": C}}))


def test_load_refuses_other_kind(tmp_path: Path) -> None:
    write_manifest(tmp_path, "dcnv2", FORMAT_VERSION)
    with pytest.raises(DataValidationError, match="dcnv2") as err:
        XGBoostRanker.load(tmp_path)
    assert err.value.column == "kind"


def test_load_refuses_other_format_version(fitted: XGBoostRanker, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "xgb")
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest,
                                               "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(DataValidationError, match="format version") as err:
        XGBoostRanker.load(folder)
    assert err.value.column == "format_version"


def test_load_refuses_missing_model_file(fitted: XGBoostRanker, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "xgb")
    (folder / "model.json").unlink()
    with pytest.raises(DataValidationError, match="model.json"):
        XGBoostRanker.load(folder)


def test_wrong_numeric_width_at_score_time(fitted: XGBoostRanker,
                                           data: types.SimpleNamespace) -> None:
    with pytest.raises(DataValidationError, match="numeric") as err:
        fitted.score(make_lists(3, 5, n_numeric=F + 1), data)
    assert err.value.column == "numeric"


def _constant_booster(metric: str):
    """A one-tree booster whose tree outputs 0 (all labels equal: no lambda gradient), so
    its predictions are exactly the base margin of the data it is given."""
    d = xgb.DMatrix(np.zeros((4, 1), np.float32), label=np.zeros(4), qid=np.array([0, 0, 1, 1]))
    return xgb.train({"objective": "rank:ndcg", "eval_metric": metric, "base_score": 0.0,
                      "nthread": 1}, d, num_boost_round=1)


def _xgb_eval(booster, lists: ListData, scores: np.ndarray, metric: str) -> float:
    """XGBoost's own ``metric`` of ``scores`` (fed as base margin to ``booster``, see
    :func:`_constant_booster`) over the valid slots of ``lists``, one group per list."""
    g, j = np.nonzero(valid_mask(lists))
    d = xgb.DMatrix(np.zeros((len(g), 1), np.float32), label=ranking_target(lists)[g, j],
                    qid=g, base_margin=scores[g, j])
    assert np.array_equal(booster.predict(d), scores[g, j].astype(np.float32))
    out = booster.eval(d, "e")
    return float(re.search(rf"e-{re.escape(metric)}:([0-9.eE+-]+)", out).group(1))


def test_xgboost_ndcg_agrees_with_ltr(fitted: XGBoostRanker,
                                      data: types.SimpleNamespace) -> None:
    """Same lists, same predictions (the fitted ranker's). Trees give tied scores now and
    then and the two sides break ties differently, so only lists without a tie count."""
    lists = make_lists(11, 60, all_relevant=True)
    m = valid_mask(lists)
    scores = fitted.score(lists, data)
    no_tie = np.array([len(np.unique(scores[q, m[q]])) == m[q].sum()
                       for q in range(len(lists))])
    assert no_tie.sum() >= 30
    lists = subset(lists, np.flatnonzero(no_tie))
    m = valid_mask(lists)
    y = np.nan_to_num(ranking_target(lists))
    assert ((y * m) > 0).any(axis=1).all()  # every list has a relevant item
    scores = fitted.score(lists, data)

    # 1) through the ranker's booster: booster.eval on the ranker's own rows
    g, j = np.nonzero(m)
    x = fitted._features(lists, data)[g, j]
    d = xgb.DMatrix(x, label=y[g, j], qid=g, feature_types=fitted._feature_types(lists),
                    enable_categorical=True)
    booster = fitted.booster_[: fitted.best_iteration_ + 1]  # the trees the ranker uses
    np.testing.assert_array_equal(booster.predict(d), scores[g, j].astype(np.float32))
    theirs = float(re.search(r"e-ndcg@10:([0-9.]+)", booster.eval(d, "e")).group(1))
    ours = ndcg(scores, y, m, k=10, gain="exponential")
    assert ours.n_included == len(lists)
    assert abs(theirs - ours.mean) < 1e-6, (theirs, ours.mean)

    # 2) the same predictions as base margin of a zero-output model: any scores work
    zero = _constant_booster("ndcg@10")
    assert abs(_xgb_eval(zero, lists, scores, "ndcg@10") - ours.mean) < 1e-6


def test_xgboost_ndcg_conventions_for_lists_without_relevant_items() -> None:
    """XGBoost's ``ndcg@10`` counts a list with no relevant item as 1, ``ndcg@10-`` as 0;
    ltr excludes it by default and counts it as 0 with ``exclude_zero_ideal=False``."""
    lists = make_lists(12, 60)
    m = valid_mask(lists)
    y = np.nan_to_num(ranking_target(lists))
    y[:8] = 0.0  # no relevant item in the first lists
    lists.labels["relevance"] = np.where(np.isfinite(ranking_target(lists)), y, np.nan)
    scores = np.random.default_rng(5).normal(size=m.shape)  # continuous: no ties
    zero_ideal = ~((y * m) > 0).any(axis=1)
    assert zero_ideal.sum() >= 8
    excluded = ndcg(scores, y, m, k=10)
    as_zero = ndcg(scores, y, m, k=10, exclude_zero_ideal=False)
    as_one = (excluded.values.sum() + zero_ideal.sum()) / len(lists)
    assert abs(_xgb_eval(_constant_booster("ndcg@10"), lists, scores, "ndcg@10")
               - as_one) < 1e-6
    assert abs(_xgb_eval(_constant_booster("ndcg@10-"), lists, scores, "ndcg@10-")
               - as_zero.mean) < 1e-6


def test_unbiased_trains_and_scores(data: types.SimpleNamespace, tmp_path: Path) -> None:
    ranker = XGBoostRanker(**{**FAST, "unbiased": True}).fit(data)
    config = json.loads(ranker.booster_.save_config())
    assert config["learner"]["objective"]["lambdarank_param"]["lambdarank_unbiased"] == "1"
    test = make_lists(21, 40)
    scores = ranker.score(test, data)
    assert np.isfinite(scores[test.mask]).all() and np.isnan(scores[~test.mask]).all()
    y, m = np.nan_to_num(ranking_target(test)), valid_mask(test)
    rng = np.random.default_rng(1)
    random = np.mean([ndcg(rng.random(m.shape), y, m, k=10).mean for _ in range(20)])
    assert ndcg(scores, y, m, k=10).mean > random + 0.15
    loaded = XGBoostRanker.load(ranker.save(tmp_path / "u"))
    np.testing.assert_array_equal(loaded.score(test, data), scores)


def test_unbiased_rows_follow_logged_position(data: types.SimpleNamespace) -> None:
    lists = make_lists(4, 3)
    lists.position[0, :3] = [3, 1, 2]  # shown out of slot order
    lists.position[0, 3] = 0  # unknown: goes after every shown slot
    ranker = XGBoostRanker(**{**FAST, "unbiased": True})
    _, _, qid = ranker._rows(lists, data, by_position=True)
    assert np.all(np.diff(qid) >= 0)  # groups contiguous and sorted
    g, j = np.nonzero(valid_mask(lists))
    x_slot, _, _ = ranker._rows(lists, data)
    x_pos, _, _ = ranker._rows(lists, data, by_position=True)
    first = x_slot[g == 0][:, 0]  # numeric column 0 of list 0 in slot order
    slots = j[g == 0]
    pos = lists.position[0, slots]
    key = np.where(pos > 0, pos, 10_000 + slots)
    np.testing.assert_array_equal(x_pos[g == 0][:, 0], first[np.argsort(key, kind="stable")])


def test_text_cosine_is_an_extra_numeric_feature() -> None:
    data = make_data(n_train=30, n_valid=10)
    rng = np.random.default_rng(0)
    data.query_embeddings = rng.normal(size=(1, 8)).astype(np.float32)
    data.product_embeddings = rng.normal(size=(1, 8)).astype(np.float32)
    ranker = XGBoostRanker(**{**FAST, "use_text": True, "n_estimators": 5}).fit(data)
    assert ranker.booster_.num_features() == F + 1 + C
    assert ranker.booster_.feature_types == ["q"] * (F + 1) + ["c"] * C
    assert np.isfinite(ranker.score(data.valid, data)[data.valid.mask]).all()


def test_without_early_stopping_every_tree_counts(data: types.SimpleNamespace) -> None:
    ranker = XGBoostRanker(**{**FAST, "early_stopping_rounds": None,
                              "n_estimators": 7}).fit(data)
    assert ranker.best_iteration_ == 6 and ranker.booster_.num_boosted_rounds() == 7
    assert 0 < ranker.best_score_ <= 1


@pytest.mark.parametrize("params, key", [
    ({"depth": 3}, "model.params.depth"),
    ({"n_estimators": 0}, "model.params.n_estimators"),
    ({"learning_rate": -0.1}, "model.params.learning_rate"),
    ({"subsample": 1.5}, "model.params.subsample"),
    ({"objective": "rank:foo"}, "model.params.objective"),
    ({"lambdarank_pair_method": "all"}, "model.params.lambdarank_pair_method"),
    ({"unbiased": "yes"}, "model.params.unbiased"),
    ({"early_stopping_rounds": 0}, "model.params.early_stopping_rounds"),
])
def test_bad_parameters_name_the_key(params: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        XGBoostRanker(**params)
    assert err.value.key == key
    with pytest.raises(ConfigError):
        make_ranker("xgboost", params)


def test_defaults_are_saved() -> None:
    ranker = make_ranker("xgboost")
    assert ranker.params == XGBoostRanker.DEFAULTS
    assert ranker.params["objective"] == "rank:ndcg" and ranker.params["unbiased"] is False
