import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.features import FeatureSpec, Preprocessor
from ltr.features.derived import add_derived


@pytest.fixture()
def rows():
    return pd.DataFrame({
        "session_id": [1, 1, 2, 2],
        "price": [10.0, 100.0, 1000.0, np.nan],
        "count": [0, 9, 99, 999],
        "brand": ["a", "b", "a", None],
        "preferred_brand": ["a", "a", "c", None],
        "category": ["X / y", "Z", None, "X"],
        "preferred_category": ["X", "X", "X", None],
    })


def test_fit_transform_hand_computed(rows):
    spec = FeatureSpec(numeric=["price", "count"], log1p=["count"], categorical=["brand"])
    pre = Preprocessor.fit(rows, spec)
    assert pre.means["price"] == pytest.approx(370.0)
    assert pre.indicators == ["price"]
    num, cat = pre.transform(rows)
    std = np.std([10.0, 100.0, 1000.0])
    np.testing.assert_allclose(num[:, 0], [(10 - 370) / std, (100 - 370) / std,
                                           (1000 - 370) / std, 0.0], rtol=1e-5)
    lc = np.log1p([0, 9, 99, 999])
    np.testing.assert_allclose(num[:, 1], (lc - lc.mean()) / lc.std(), rtol=1e-5)
    assert num[:, 2].tolist() == [0, 0, 0, 1]  # missing indicator of price
    assert pre.vocabularies["brand"] == ["a", "b"]
    assert cat[:, 0].tolist() == [2, 3, 2, 0]  # a, b, a, missing
    assert pre.cardinalities == [4]


def test_unseen_category_maps_to_unknown_and_missing_column_is_named(rows):
    spec = FeatureSpec(numeric=["price"], categorical=["brand"], min_category_count=2)
    pre = Preprocessor.fit(rows, spec)
    assert pre.vocabularies["brand"] == ["a"]  # b seen once only
    _, cat = pre.transform(rows.assign(brand=["zzz", "a", "b", None]))
    assert cat[:, 0].tolist() == [1, 2, 1, 0]
    with pytest.raises(DataValidationError, match="column 'brand'"):
        pre.transform(rows.drop(columns="brand"), "request")
    with pytest.raises(DataValidationError, match="column 'price'.*non-numbers"):
        pre.transform(rows.assign(price=["1", "x", "2", "3"]))


def test_json_round_trip(rows, tmp_path):
    spec = FeatureSpec(numeric=["price", "count"], log1p=["count"], categorical=["brand"],
                       derived=["brand_match"])
    rows = add_derived(rows, spec.derived, "session_id")
    pre = Preprocessor.fit(rows, spec)
    pre.save(tmp_path / "pre.json")
    back = Preprocessor.load(tmp_path / "pre.json")
    for a, b in zip(pre.transform(rows), back.transform(rows), strict=True):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataValidationError, match="bad.json"):
        Preprocessor.load(tmp_path / "bad.json")


def test_derived_features(rows):
    out = add_derived(rows, ["brand_match", "category_match", "price_z_in_list", "top_category"],
                      "session_id")
    assert out["brand_match"].tolist() == [1, 0, 0, 0]
    assert out["category_match"].tolist() == [1, 0, 0, 0]
    assert out["top_category"].tolist() == ["X", "Z", "unknown", "X"]
    z = out["price_z_in_list"].to_numpy()
    assert z[0] == pytest.approx(-z[1]) and z[3] == 0.0
    with pytest.raises(DataValidationError, match="column 'preferred_brand'"):
        add_derived(rows.drop(columns="preferred_brand"), ["brand_match"], "session_id")


@pytest.mark.parametrize("kwargs,key", [
    ({"numeric": ["a"], "categorical": ["a"]}, "features.categorical"),
    ({"numeric": ["a"], "log1p": ["b"]}, "features.log1p"),
    ({"derived": ["nope"]}, "features.derived"),
    ({"numeric": "price"}, "features.numeric"),
])
def test_bad_spec_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        FeatureSpec(**kwargs)
    with pytest.raises(ConfigError, match="features.numerics"):
        FeatureSpec.from_dict({"numerics": []})


def test_fit_over_chunks_equals_one_fit() -> None:
    """PreprocessorFit merges chunk moments exactly (Chan et al.) and adds category
    counts: a value below min_category_count in every chunk but not overall is kept, a
    column missing in a whole chunk still gets its indicator."""
    from ltr.features.preprocess import PreprocessorFit

    rng = np.random.default_rng(0)
    n = 1000
    rows = pd.DataFrame({"price": rng.lognormal(3, 1, n), "rating": rng.normal(4, 0.5, n),
                         "brand": rng.choice(["a", "b", "c", "d"], n, p=[.5, .3, .19, .01])})
    rows.loc[:99, "rating"] = np.nan  # the first chunk has no rating at all
    spec = FeatureSpec.from_dict({"numeric": ["price", "rating"], "log1p": ["price"],
                                  "categorical": ["brand"], "min_category_count": 8})
    whole = Preprocessor.fit(rows, spec)
    fit = PreprocessorFit(spec)
    for start in range(0, n, 100):
        fit.update(rows.iloc[start:start + 100])
    chunked = fit.result()
    for col in ("price", "rating"):
        assert chunked.means[col] == pytest.approx(whole.means[col], rel=1e-12)
        assert chunked.stds[col] == pytest.approx(whole.stds[col], rel=1e-12)
    assert chunked.indicators == whole.indicators == ["rating"]
    assert chunked.vocabularies == whole.vocabularies
    # "d": 10 rows in all, at most 2 in any chunk of 100
    assert "d" in chunked.vocabularies["brand"]
