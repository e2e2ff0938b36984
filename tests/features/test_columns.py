"""Column tables: a DataFrame and a mapping of column name -> numpy array give the same
features, and the same as the pandas implementation the training used before."""

import numpy as np
import pandas as pd
import pytest

import ltr.features.preprocess as preprocess_module
from ltr.errors import DataValidationError
from ltr.features import FeatureSpec, Preprocessor
from ltr.features.columns import has_column, n_rows, numeric_column, text_column
from ltr.features.derived import DERIVED, add_derived, derived_columns, group_z, top_category
from ltr.simulate.catalog import top_category as catalog_top_category

ALL_DERIVED = ["brand_match", "category_match", "price_z_in_list", "top_category"]

SPEC = {
    "numeric": ["price", "rating", "review_count", "tenure_days", "is_new", "hist_ctr"],
    "log1p": ["price", "review_count"],
    "categorical": ["brand", "segment", "product_class", "size_code", "rating_bucket",
                    "mixed", "preferred_brand", "preferred_category"],
    "derived": ALL_DERIVED,
}


def joined_rows(seed: int = 0, n_lists: int = 40) -> pd.DataFrame:
    """A joined row table like :func:`ltr.training.prepare.join_rows` builds, with every
    awkward case: missing values of each kind, anonymous customers, lists of one row,
    lists with missing or equal prices, int/float/str/mixed categorical values, pandas
    ``string`` and ``Int64`` columns, numeric strings in an object column."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_lists)
    sizes[:5] = [1, 1, 1, 4, 3]  # lists of one row; list 103, 104 below
    session = np.repeat(np.arange(100, 100 + n_lists), sizes)
    n = len(session)
    brands = np.array(["Acme", "Bolt", "Crux", "Dune", "Echo", "Fizz"], dtype=object)
    paths = np.array(["Furniture / Beds", "Furniture/Sofas", " Lighting / Lamps", "Rugs",
                      "", " / odd", "Decor / Wall / Art", "Outdoor  /x"], dtype=object)
    price = np.round(rng.lognormal(4, 1, n), 2)
    price[rng.random(n) < 0.1] = np.nan
    price[rng.random(n) < 0.03] = 0.0
    price[session == 103] = 49.99  # a list of equal prices
    price[session == 104] = np.nan  # a list without prices
    customer = rng.integers(0, 6, n).astype(object)
    customer[rng.random(n) < 0.2] = None  # anonymous
    anon = pd.isna(customer)
    segment = np.array(["budget", "mainstream", "premium"], dtype=object)[rng.integers(0, 3, n)]
    segment[anon] = None
    pref_brand = brands[rng.integers(0, len(brands), n)].copy()
    pref_brand[anon] = np.nan
    pref_cat = np.array(["Furniture", "Lighting", "Rugs", "unknown"], dtype=object)[
        rng.integers(0, 4, n)]
    pref_cat[anon] = pd.NA
    product_class = np.array(["Beds", "Sofas", "Lamps", "Art"], dtype=object)[
        rng.integers(0, 4, n)]
    product_class[rng.random(n) < 0.1] = np.nan
    mixed = np.array([1, "1", 2.5, True, "x", None, 7], dtype=object)[rng.integers(0, 7, n)]
    tenure = rng.integers(0, 400, n).astype(object)
    tenure[rng.random(n) < 0.2] = "12"  # numeric strings are numbers
    tenure[anon] = None
    rating = np.round(rng.uniform(1, 5, n), 1)
    rating[rng.random(n) < 0.1] = np.nan
    hist = rng.uniform(0, 1, n)
    hist[rng.random(n) < 0.3] = np.nan
    category = pd.array(paths[rng.integers(0, len(paths), n)], dtype="string")
    category[rng.random(n) < 0.1] = pd.NA
    brand = pd.array(brands[rng.integers(0, len(brands), n)], dtype="string")
    brand[rng.random(n) < 0.1] = pd.NA
    review = pd.array(rng.integers(0, 500, n), dtype="Int64")
    review[rng.random(n) < 0.1] = pd.NA
    return pd.DataFrame({
        "session_id": session,
        "customer_id": customer,
        "price": price,
        "rating": rating,
        "review_count": review,
        "tenure_days": tenure,
        "is_new": rng.random(n) < 0.3,
        "hist_ctr": hist,
        "brand": brand,
        "category": category,
        "product_class": product_class,
        "segment": segment,
        "size_code": rng.integers(0, 5, n),
        "rating_bucket": np.where(np.isnan(rating), np.nan, np.floor(rating)),
        "mixed": mixed,
        "preferred_brand": pref_brand,
        "preferred_category": pref_cat,
    })


def as_arrays(df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: df[c].to_numpy() for c in df}


# ---------------------------------------------------------------- the pandas reference
def reference_derived(df: pd.DataFrame, group: str) -> dict[str, np.ndarray]:
    """The pandas implementation the derived features had before the column tables."""
    def match(a: pd.Series, b: pd.Series) -> np.ndarray:
        return (a.astype("string") == b.astype("string")).fillna(False).to_numpy(np.float32)

    top = catalog_top_category(df["category"])
    lp = np.log(df["price"].astype(float).clip(lower=1e-6))
    g = lp.groupby(df[group].to_numpy())
    std = g.transform("std").fillna(0.0).to_numpy()
    z = (lp.to_numpy() - g.transform("mean").to_numpy()) / np.where(std > 0, std, 1.0)
    return {"brand_match": match(df["brand"], df["preferred_brand"]),
            "category_match": match(top, df["preferred_category"]),
            "price_z_in_list": np.nan_to_num(z).astype(np.float32),
            "top_category": top.to_numpy()}


def reference_transform(pre: Preprocessor, rows: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """The pandas implementation :meth:`Preprocessor.transform` had before."""
    def raw(col: str) -> np.ndarray:
        x = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64,
                                                               na_value=np.nan)
        return np.log1p(np.clip(x, 0.0, None)) if col in pre.spec.log1p else x

    n = len(rows)
    numeric = np.zeros((n, pre.numeric_width), dtype=np.float32)
    for j, col in enumerate(pre.spec.numeric_inputs):
        z = (raw(col) - pre.means[col]) / pre.stds[col]
        numeric[:, j] = np.where(np.isfinite(z), z, 0.0)
    base = len(pre.spec.numeric_inputs)
    for j, col in enumerate(pre.indicators):
        numeric[:, base + j] = ~np.isfinite(raw(col))
    categorical = np.zeros((n, len(pre.spec.categorical_inputs)), dtype=np.int64)
    for j, col in enumerate(pre.spec.categorical_inputs):
        index = {v: i + 2 for i, v in enumerate(pre.vocabularies[col])}
        values = rows[col]
        codes = values.map(ref_label).map(index).fillna(1).to_numpy(np.int64)
        categorical[:, j] = np.where(values.isna().to_numpy(), 0, codes)
    return numeric, categorical


def ref_label(v: object) -> str:
    """Category label rule: str(v), integral floats written as integers (3.0 -> '3')."""
    if isinstance(v, float) and np.isfinite(v) and v == int(v):
        return str(int(v))
    return str(v)


def reference_fit(rows: pd.DataFrame, spec: FeatureSpec) -> dict[str, list[str]]:
    out = {}
    for col in spec.categorical_inputs:
        counts = rows[col].dropna().map(ref_label).value_counts()
        out[col] = sorted(counts[counts >= spec.min_category_count].index.tolist())
    return out


@pytest.fixture(scope="module")
def tables():
    train = add_derived(joined_rows(0), ALL_DERIVED, "session_id")
    spec = FeatureSpec(**SPEC, min_category_count=2)
    pre = Preprocessor.fit(train, spec)
    request = joined_rows(1, n_lists=12)  # unseen categories, other lists
    request.loc[3, "brand"] = "Zzz"
    request.loc[4, "segment"] = "vip"
    return pre, request


# ---------------------------------------------------------------- derived features
def test_derived_mapping_equals_dataframe_and_pandas_reference():
    df = joined_rows(2)
    out = add_derived(df, ALL_DERIVED, "session_id")
    ref = reference_derived(df, "session_id")
    direct = derived_columns(as_arrays(df), ALL_DERIVED, df["session_id"].to_numpy())
    assert list(out.columns) == list(df.columns) + ALL_DERIVED
    for name in ALL_DERIVED:
        assert out[name].to_numpy().dtype == ref[name].dtype, name
        np.testing.assert_array_equal(direct[name], out[name].to_numpy(), err_msg=name)
        if name == "price_z_in_list":  # the mean of a list is rounded another way
            np.testing.assert_allclose(out[name], ref[name], rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(out[name].to_numpy(), ref[name], err_msg=name)
    assert out["brand_match"].sum() > 0 and out["category_match"].sum() > 0


def test_price_z_hand_computed_against_pandas_groupby():
    price = np.array([10.0, 100.0, np.nan, 1000.0, 5.0, 7.0, 7.0, 7.0, np.nan, 0.0, 3.0])
    keys = np.array([1, 1, 1, 1, 2, 3, 3, 3, 4, 5, 5])
    lp = pd.Series(np.log(np.clip(price, 1e-6, None)))
    grouped = lp.groupby(keys)
    expected = ((lp - grouped.transform("mean")) / grouped.transform("std")).to_numpy()
    expected[~np.isfinite(expected)] = 0.0  # one price, no price, equal prices
    got = derived_columns({"price": price}, ["price_z_in_list"], keys)["price_z_in_list"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got[4] == 0.0 and got[8] == 0.0 and (got[5:8] == 0.0).all()
    # the same lists keyed by strings, mixed objects or floats
    for other in (np.array(["a", "a", "a", "a", "b", "c", "c", "c", "d", "e", "e"]),
                  np.array([1, 1, 1, 1, "2", (3,), (3,), (3,), 4.5, None, None], dtype=object),
                  keys.astype(float)):
        z = derived_columns({"price": price}, ["price_z_in_list"], other)["price_z_in_list"]
        if other.dtype == object:  # None is no list: pandas groupby drops it -> 0
            np.testing.assert_allclose(z[:9], got[:9], atol=1e-7)
            assert (z[9:] == 0).all()
        else:
            np.testing.assert_allclose(z, got, atol=1e-7)


def test_group_z_constant_and_missing_groups():
    x = np.array([2.0, 2.0, 2.0, np.nan, 1.0, 3.0])
    keys = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(group_z(x, keys), [0, 0, 0, 0, -1 / np.sqrt(2), 1 / np.sqrt(2)])
    assert group_z(np.array([]), np.array([], dtype=np.int64)).shape == (0,)


def test_top_category_equals_catalog():
    paths = ["Furniture / Beds", "Furniture/Sofas", " Lighting / Lamps", "Rugs", "", " / x",
             "A / B / C", "  ", "x/", None, np.nan, pd.NA]
    series = pd.Series(paths, dtype=object)
    expected = catalog_top_category(series).to_numpy()
    for values in (series, series.astype("string"), np.array(paths, dtype=object)):
        got = derived_columns({"category": values}, ["top_category"], None)["top_category"]
        np.testing.assert_array_equal(got, expected)
    strings, missing = text_column({"category": series}, "category")
    np.testing.assert_array_equal(top_category(strings, missing), expected)


def test_derived_errors_name_the_column():
    df = joined_rows(3, n_lists=6)
    with pytest.raises(DataValidationError, match="column 'preferred_brand'.*brand_match"):
        derived_columns(as_arrays(df.drop(columns="preferred_brand")), ["brand_match"],
                        df["session_id"].to_numpy(), "request")
    with pytest.raises(DataValidationError, match="column 'preferred_category'"):
        add_derived(df.drop(columns="preferred_category"), ["category_match"], "session_id")
    with pytest.raises(DataValidationError, match="column 'list_id'"):
        add_derived(df, ["price_z_in_list"], "list_id")
    with pytest.raises(DataValidationError, match="column 'price'.*non-numbers"):
        derived_columns({"price": np.array([1.0, "cheap"], dtype=object)},
                        ["price_z_in_list"], np.array([1, 1]))
    with pytest.raises(DataValidationError, match="2 group keys for 3 rows"):
        derived_columns({"price": np.ones(3)}, ["price_z_in_list"], np.array([1, 1]))
    assert add_derived(df, ["brand_match"], "list_id")["brand_match"].shape == (len(df),)
    assert {d.kind for d in DERIVED.values()} == {"numeric", "categorical"}


# ---------------------------------------------------------------- preprocessing
def test_transform_mapping_equals_dataframe_and_pandas_reference(tables):
    pre, request = tables
    rows = add_derived(request, ALL_DERIVED, "session_id")
    arrays = as_arrays(request)
    arrays.update(derived_columns(arrays, ALL_DERIVED, arrays["session_id"], "request"))
    from_frame = pre.transform(rows, "request")
    from_arrays = pre.transform(arrays, "request")
    reference = reference_transform(pre, rows)
    for got, same, ref in zip(from_frame, from_arrays, reference, strict=True):
        assert got.dtype == same.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, same)
        np.testing.assert_array_equal(got, ref)
    numeric, categorical = from_frame
    assert numeric.shape == (len(rows), pre.numeric_width)
    cat = pre.spec.categorical_inputs
    assert categorical[3, cat.index("brand")] == 1  # unseen: unknown
    assert categorical[4, cat.index("segment")] == 1
    assert (categorical[rows["segment"].isna().to_numpy(), cat.index("segment")] == 0).all()
    assert set(np.unique(categorical[:, cat.index("mixed")])) >= {0, 2, 3}


def test_fit_mapping_equals_dataframe_and_pandas_reference():
    train = add_derived(joined_rows(4), ALL_DERIVED, "session_id")
    spec = FeatureSpec(**SPEC, min_category_count=2)
    pre = Preprocessor.fit(train, spec)
    assert pre.vocabularies == reference_fit(train, spec)
    assert pre.vocabularies["mixed"] == sorted(["1", "2.5", "True", "x", "7"])
    assert pre.vocabularies["rating_bucket"][0] == "1"  # integral floats read as ints
    assert Preprocessor.fit(as_arrays(train), spec) == pre
    assert "review_count" in pre.indicators and "is_new" not in pre.indicators


def test_transform_small_and_blocked_rows_agree(tables, monkeypatch):
    pre, request = tables
    arrays = as_arrays(add_derived(request, ALL_DERIVED, "session_id"))
    whole = pre.transform(arrays)
    monkeypatch.setattr(preprocess_module, "_BLOCK", 7)
    for got, expected in zip(pre.transform(arrays), whole, strict=True):
        np.testing.assert_array_equal(got, expected)
    one = {c: v[5:6] for c, v in arrays.items()}
    for got, expected in zip(pre.transform(one), whole, strict=True):
        np.testing.assert_array_equal(got, expected[5:6])
    empty = pre.transform({c: v[:0] for c, v in arrays.items()})
    assert empty[0].shape == (0, pre.numeric_width) and empty[1].shape == (0, len(
        pre.spec.categorical_inputs))


def test_transform_errors_name_the_column(tables):
    pre, request = tables
    arrays = as_arrays(add_derived(request, ALL_DERIVED, "session_id"))
    with pytest.raises(DataValidationError, match="request, column 'rating'.*missing"):
        pre.transform({c: v for c, v in arrays.items() if c != "rating"}, "request")
    bad = dict(arrays, price=arrays["price"].astype(object))
    bad["price"][[2, 6]] = ["n/a", "free"]
    with pytest.raises(DataValidationError, match="column 'price'.*non-numbers") as err:
        pre.transform(bad, "request")
    assert err.value.rows == [2, 6] and err.value.values == ["n/a", "free"]
    with pytest.raises(DataValidationError, match="column 'price'.*non-numbers"):
        pre.transform(pd.DataFrame(bad), "request")
    with pytest.raises(DataValidationError, match="column 'brand'.*rows"):
        pre.transform(dict(arrays, brand=arrays["brand"][:-1]), "request")


def test_cached_plan_follows_the_fitted_state(tables, tmp_path):
    pre, request = tables
    rows = add_derived(request, ALL_DERIVED, "session_id")
    numeric, categorical = pre.transform(rows)
    copy = Preprocessor.from_dict(pre.to_dict())
    assert copy == pre and "plan" not in str(pre.to_dict())
    copy.save(tmp_path / "pre.json")
    loaded = Preprocessor.load(tmp_path / "pre.json")
    for got, expected in zip(loaded.transform(rows), (numeric, categorical), strict=True):
        np.testing.assert_array_equal(got, expected)
    j = copy.spec.categorical_inputs.index("brand")
    copy.vocabularies["brand"].append("Zzz")  # changed in place: the plan follows
    copy.means["rating"] += 1.0
    numeric2, categorical2 = copy.transform(rows)
    assert categorical2[3, j] == len(copy.vocabularies["brand"]) + 1
    assert not np.array_equal(numeric2, numeric)
    copy.vocabularies["segment"] = []  # an empty vocabulary: present values are unknown
    seg = copy.transform(rows)[1][:, copy.spec.categorical_inputs.index("segment")]
    np.testing.assert_array_equal(seg, np.where(rows["segment"].isna(), 0, 1))


# ---------------------------------------------------------------- column readers
def test_numeric_column_kinds():
    table = {
        "f": np.array([1.5, np.nan]), "i": np.array([1, 2]), "b": np.array([True, False]),
        "Int64": pd.array([3, None], dtype="Int64"),
        "Float64": pd.Series([0.5, None], dtype="Float64"),
        "boolean": pd.array([True, None], dtype="boolean"),
        "obj": np.array(["4", None], dtype=object), "na": np.array([pd.NA, 2], dtype=object),
        "list": [1, None], "str": pd.array(["1e3", None], dtype="string"),
    }
    expected = {"f": [1.5, np.nan], "i": [1, 2], "b": [1, 0], "Int64": [3, np.nan],
                "Float64": [0.5, np.nan], "boolean": [1, np.nan], "obj": [4, np.nan],
                "na": [np.nan, 2], "list": [1, np.nan], "str": [1000, np.nan]}
    for col, values in expected.items():
        got = numeric_column(table, col, "t")
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, values, err_msg=col)
        np.testing.assert_array_equal(numeric_column(pd.DataFrame(table), col, "t"), values)
    with pytest.raises(DataValidationError, match="t, column 'x'.*non-numbers.*1 \\('a'\\)"):
        numeric_column({"x": ["1", "a"]}, "x", "t")


def test_text_column_kinds():
    values = [1, 2.5, True, "a", None, np.nan, pd.NA, 1.0]
    strings, missing = text_column({"v": np.array(values, dtype=object)}, "v")
    assert strings.tolist() == ["1", "2.5", "True", "a", "", "", "", "1"]
    assert missing.tolist() == [False] * 4 + [True] * 3 + [False]
    for series in (pd.Series([1, 2]), pd.Series([0.1, np.nan]), pd.Series([True, False]),
                   pd.Series(np.array([1.5, 2], dtype=np.float32)), pd.Series(["a", None]),
                   pd.Series([3, None], dtype="Int64"), pd.Series(["b", None], dtype="string"),
                   pd.Series(["c", "c", None], dtype="category")):
        present = series.notna().to_numpy()
        expected = series.astype(object).map(ref_label).to_numpy(dtype=object)
        for table in (pd.DataFrame({"v": series}), {"v": series}, {"v": series.array}):
            strings, missing = text_column(table, "v")
            assert strings.dtype == object
            np.testing.assert_array_equal(missing, ~present)
            np.testing.assert_array_equal(strings[present], expected[present])
            assert (strings[~present] == "").all()
    # Int64 -> to_numpy() is float64 with NaN: the category stays "3", as for the ints
    assert text_column({"v": pd.Series([3, None], dtype="Int64").to_numpy()}, "v")[0][0] \
        == "3"


def test_table_helpers():
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    arrays = as_arrays(df)
    for table in (df, arrays):
        assert has_column(table, "a") and not has_column(table, "c")
        assert n_rows(table) == 3
    assert n_rows({}) == 0 and n_rows(df.iloc[:0]) == 0
