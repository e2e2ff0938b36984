r"""Label transfer from similar known queries, against the formulas of
:mod:`ltr.features.neighbours` computed by hand and by a brute-force loop.

Hand-made known queries (2-d embeddings, cosines in the comments) and their labels::

    grey sofa    (1, 0)       p1 0.9, p2 0.0
    gray sofas   (.8, .6)     p1 0.5, p3 1.0
    modern couch (.6, .8)     p2 0.4, p3 0.2
    desk lamp    (0, 1)       p4 1.0
    rug          (-1, 0)      p5 0.7

cos(grey, gray) = .8, cos(grey, modern) = .6, cos(grey, lamp) = 0, cos(grey, rug) = -1;
cos(gray, modern) = .96, cos(gray, lamp) = .6, cos(gray, rug) = -.8;
cos(modern, lamp) = .8, cos(modern, rug) = -.6; cos(lamp, rug) = 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.features.neighbours import NEIGHBOUR_COLUMNS, QueryNeighbours

NAN = float("nan")
EMB = {
    "grey sofa": [1.0, 0.0],
    "gray sofas": [0.8, 0.6],
    "modern couch": [0.6, 0.8],
    "desk lamp": [0.0, 1.0],
    "rug": [-1.0, 0.0],
    # unknown queries
    "couch": [0.28, 0.96],  # grey .28, gray .8, modern .936, lamp .96, rug -.28
    "grey sofa!": [1.0, 0.0],  # grey sofa's embedding under another text
    "floor": [0.0, -1.0],  # no known query with a positive cosine
}
QUERIES = ["grey sofa", "gray sofas", "modern couch", "desk lamp", "rug"]
LABELS = pd.DataFrame({
    "query": ["grey sofa", "grey sofa", "gray sofas", "gray sofas", "modern couch",
              "modern couch", "desk lamp", "rug"],
    "product_id": [1, 2, 1, 3, 2, 3, 4, 5],
    "score": [0.9, 0.0, 0.5, 1.0, 0.4, 0.2, 1.0, 0.7],
})


def embed(texts) -> np.ndarray:
    # scaled by 3: the class normalises
    return 3.0 * np.array([EMB[t] for t in texts], dtype=np.float32)


def build(k: int = 10, labels: pd.DataFrame = LABELS) -> QueryNeighbours:
    return QueryNeighbours(QUERIES, embed(QUERIES), labels, k=k)


def run(nb: QueryNeighbours, query: str, products: list) -> dict[str, np.ndarray]:
    return nb.columns([query], embed([query]), products, np.zeros(len(products), np.int64))


def check(got: dict[str, np.ndarray], expected: list[tuple[float, float, float]]) -> None:
    exp = np.array(expected, dtype=float)
    for j, col in enumerate(NEIGHBOUR_COLUMNS):
        np.testing.assert_allclose(got[col], exp[:, j], rtol=1e-6, atol=1e-7, err_msg=col)


# --------------------------------------------------------------------------- hand cases


def test_known_query_excludes_itself_and_clips_negative_similarities() -> None:
    # grey sofa's neighbours: gray .8, modern .6, lamp 0, rug -1 -> 0; sum s = 1.4
    got = run(build(), "grey sofa", [1, 2, 3, 4, 5, 99])
    check(got, [
        (0.5, 0.8 / 1.4, 0.8),  # p1: only gray (its own 0.9 is never seen)
        (0.4, 0.6 / 1.4, 0.6),  # p2: only modern (its own 0.0 is never seen)
        ((0.8 * 1.0 + 0.6 * 0.2) / 1.4, 1.0, 0.8),  # p3: gray and modern
        (NAN, 0.0, NAN),  # p4: desk lamp has s = 0
        (NAN, 0.0, NAN),  # p5: rug's negative cosine is clipped to 0
        (NAN, 0.0, NAN),  # unknown product
    ])


def test_label_zero_counts_as_present() -> None:
    # gray sofas: grey .8, modern .96, lamp .6, rug 0; sum s = 2.36
    got = run(build(), "gray sofas", [2, 1, 4])
    check(got, [
        ((0.8 * 0.0 + 0.96 * 0.4) / 1.76, 1.76 / 2.36, 0.96),  # grey's 0.0 is a label
        (0.9, 0.8 / 2.36, 0.8),
        (1.0, 0.6 / 2.36, 0.6),
    ])
    # a product whose only neighbour label is 0
    only_zero = LABELS[~((LABELS["query"] == "modern couch") & (LABELS["product_id"] == 2))]
    got = run(build(labels=only_zero), "gray sofas", [2])
    check(got, [(0.0, 0.8 / 2.36, 0.8)])


def test_k_limits_the_neighbours() -> None:
    # grey sofa with k = 1: gray sofas only (s = .8)
    got = run(build(k=1), "grey sofa", [1, 2, 3])
    check(got, [(0.5, 1.0, 0.8), (NAN, 0.0, NAN), (1.0, 1.0, 0.8)])
    # unknown query "couch" with k = 2: lamp .96 and modern .936; sum s = 1.896
    got = run(build(k=2), "couch", [2, 3, 4, 1])
    check(got, [(0.4, 0.936 / 1.896, 0.936), (0.2, 0.936 / 1.896, 0.936),
                (1.0, 0.96 / 1.896, 0.96), (NAN, 0.0, NAN)])


def test_unknown_query_may_have_a_known_query_as_neighbour() -> None:
    # "grey sofa!" has grey sofa's embedding but is not grey sofa: grey sofa (s = 1) is its
    # nearest neighbour. s: grey 1, gray .8, modern .6, lamp 0, rug 0; sum 2.4
    got = run(build(), "grey sofa!", [1, 2])
    check(got, [((0.9 + 0.8 * 0.5) / 1.8, 1.8 / 2.4, 1.0),
                ((0.0 + 0.6 * 0.4) / 1.6, 1.6 / 2.4, 1.0)])


def test_no_positive_neighbour_leaves_everything_missing() -> None:
    got = run(build(), "floor", [1, 4, 99])
    for col in NEIGHBOUR_COLUMNS:
        assert np.isnan(got[col]).all(), col


def test_product_ids_int_and_str_match() -> None:
    nb = build()
    ref = run(nb, "grey sofa", [1, 3, 99])
    for ids in (["1", "3", "99"], np.array([1, 3, 99], dtype=np.int64),
                np.array(["1", "3", "99"], dtype=object), [np.int32(1), "3", 99]):
        got = run(nb, "grey sofa", list(ids))
        for col in NEIGHBOUR_COLUMNS:
            np.testing.assert_array_equal(got[col], ref[col], err_msg=f"{col} {ids!r}")
    # labels keyed by str, rows by int
    nb_str = build(labels=LABELS.astype({"product_id": str}))
    for col in NEIGHBOUR_COLUMNS:
        np.testing.assert_array_equal(run(nb_str, "grey sofa", [1, 3, 99])[col], ref[col])


def test_several_queries_in_one_call_with_interleaved_rows() -> None:
    nb = build()
    texts = ["grey sofa", "couch", "gray sofas"]
    products = [1, 2, 1, 4, 2, 3]
    group = np.array([0, 2, 2, 1, 0, 0])
    got = nb.columns(texts, embed(texts), products, group)
    for i, (g, p) in enumerate(zip(group, products, strict=True)):
        one = run(nb, texts[g], [p])
        for col in NEIGHBOUR_COLUMNS:
            np.testing.assert_allclose(got[col][i], one[col][0], rtol=1e-12, err_msg=col)


def test_no_rows() -> None:
    got = build().columns(["grey sofa"], embed(["grey sofa"]), [], np.zeros(0, np.int64))
    assert all(len(v) == 0 for v in got.values())


# --------------------------------------------------------------------------- brute force


def brute_force(queries, emb, labels, k, query, q_emb, product):
    """The module docstring's formulas, one row at a time."""
    unit = lambda v: np.asarray(v, float) / np.linalg.norm(v)  # noqa: E731
    cands = [(float(unit(q_emb) @ unit(e)), j) for j, (q, e) in enumerate(zip(queries, emb,
                                                                              strict=True))
             if q != query]
    cands.sort(key=lambda t: -t[0])
    chosen = [(max(s, 0.0), queries[j]) for s, j in cands[:k]]
    lab = {(str(q), str(p)): v for q, p, v in labels[["query", "product_id", "score"]]
           .itertuples(index=False)}
    total = sum(s for s, _ in chosen)
    if total <= 0:
        return NAN, NAN, NAN
    num = den = 0.0
    best = NAN
    for s, q in chosen:
        if (q, str(product)) in lab and s > 0:
            num += s * lab[(q, str(product))]
            den += s
            best = s if math.isnan(best) else max(best, s)
    return (num / den if den > 0 else NAN), den / total, best


def random_case(seed: int, n_queries: int = 12, n_products: int = 15, dim: int = 3):
    rng = np.random.default_rng(seed)
    queries = [f"q{i}" for i in range(n_queries)]
    emb = rng.normal(size=(n_queries, dim))
    pairs = [(q, p) for q in queries for p in range(n_products) if rng.random() < 0.3]
    labels = pd.DataFrame({"query": [q for q, _ in pairs], "product_id": [p for _, p in pairs],
                           "score": rng.random(len(pairs)).round(2)})
    labels.loc[labels.index[::7], "score"] = 0.0
    return rng, queries, emb, labels


@pytest.mark.parametrize("k", [1, 3, 5])
def test_brute_force_random_case(k: int) -> None:
    rng, queries, emb, labels = random_case(k)
    nb = QueryNeighbours(queries, emb, labels, k=k)
    texts = ["q0", "q5", "new a", "q11", "new b"]
    t_emb = np.vstack([emb[0], emb[5], rng.normal(size=3), emb[11], rng.normal(size=3)])
    products = list(range(16)) * len(texts)
    group = np.repeat(np.arange(len(texts)), 16)
    got = nb.columns(texts, t_emb, products, group)
    for i, (g, p) in enumerate(zip(group, products, strict=True)):
        exp = brute_force(queries, emb, labels, k, texts[g], t_emb[g], p)
        for j, col in enumerate(NEIGHBOUR_COLUMNS):
            np.testing.assert_allclose(got[col][i], exp[j], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{col} row {i}")


def test_brute_force_known_queries_with_k_at_least_all_others() -> None:
    _, queries, emb, labels = random_case(7, n_queries=6)
    nb = QueryNeighbours(queries, emb, labels, k=10)
    products = list(range(16)) * len(queries)
    group = np.repeat(np.arange(len(queries)), 16)
    got = nb.columns(queries, emb, products, group)
    for i, (g, p) in enumerate(zip(group, products, strict=True)):
        exp = brute_force(queries, emb, labels, 10, queries[g], emb[g], p)
        for j, col in enumerate(NEIGHBOUR_COLUMNS):
            np.testing.assert_allclose(got[col][i], exp[j], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{col} row {i}")


def test_unknown_query_uses_all_known_queries_when_k_exceeds_them() -> None:
    # a (1, 0), b (.6, .8), c (0, 1); the unknown query z = (1, 1) / sqrt 2 has
    # s = .707 (a), .990 (b), .707 (c): all positive, so all three are neighbours (k = 5)
    queries = ["a", "b", "c"]
    emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = pd.DataFrame({"query": ["a", "b", "c"], "product_id": [1, 1, 2],
                           "score": [0.5, 0.0, 1.0]})
    nb = QueryNeighbours(queries, emb, labels, k=5)
    r = math.sqrt(0.5)
    s_a, s_b, s_c = r, 1.4 * r, r
    total = s_a + s_b + s_c
    got = nb.columns(["z"], np.array([[1.0, 1.0]]), [1, 2], np.zeros(2, np.int64))
    check(got, [((s_a * 0.5 + s_b * 0.0) / (s_a + s_b), (s_a + s_b) / total, s_b),
                (1.0, s_c / total, s_c)])


# --------------------------------------------------------------------------- tables


def test_label_table_round_trip() -> None:
    nb = build()
    table = nb.label_table()
    assert list(table.columns) == ["query", "product_id", "score"]
    assert set(table["product_id"]) == {"1", "2", "3", "4", "5"}  # text keys
    merged = table.astype({"product_id": int}).merge(LABELS, on=["query", "product_id"],
                                                     suffixes=("", "_in"))
    assert len(merged) == len(LABELS) == len(table)
    np.testing.assert_allclose(merged["score"], merged["score_in"])  # 0.0 kept
    # what a model package stores: queries, embeddings, label table
    again = QueryNeighbours(nb.queries, nb.embeddings, table, k=nb.k)
    rows = pd.DataFrame({"query": ["couch", "grey sofa", "gray sofas", "grey sofa!"] * 6,
                         "product_id": list(range(1, 7)) * 4})
    codes, texts = pd.factorize(rows["query"])
    ids, texts = rows["product_id"].tolist(), list(texts)
    a = nb.columns(texts, embed(texts), ids, codes)
    b = again.columns(texts, embed(texts), ids, codes)
    for col in NEIGHBOUR_COLUMNS:
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)


def test_from_labels_sorts_queries_and_embeds_them() -> None:
    nb = QueryNeighbours.from_labels(LABELS, embed, k=10)
    assert nb.queries == sorted(QUERIES)
    check(run(nb, "grey sofa", [3]), [((0.8 * 1.0 + 0.6 * 0.2) / 1.4, 1.0, 0.8)])
    assert len(nb) == 5


@pytest.mark.parametrize("k", [0, -1, 2.5, "3"])
def test_bad_k_raises_config_error(k) -> None:
    with pytest.raises(ConfigError, match="data.neighbours.k") as err:
        QueryNeighbours(QUERIES, embed(QUERIES), LABELS, k=k)
    assert err.value.key == "data.neighbours.k"


def test_bad_labels_raise() -> None:
    with pytest.raises(DataValidationError) as err:
        QueryNeighbours(QUERIES, embed(QUERIES), LABELS.drop(columns="score"))
    assert err.value.column == "score"
    bad = LABELS.assign(score=[0.1, np.nan, 0, 0, 0, 0, 0, 0])
    with pytest.raises(DataValidationError, match="finite"):
        QueryNeighbours(QUERIES, embed(QUERIES), bad)
    with pytest.raises(DataValidationError, match="5 queries for 4 embeddings"):
        QueryNeighbours(QUERIES, embed(QUERIES)[:4], LABELS)


def test_save_and_load_round_trip(tmp_path) -> None:
    nb = build(k=2)
    back = QueryNeighbours.load(nb.save(tmp_path / "neighbours"))
    assert back.queries == nb.queries and back.k == nb.k
    np.testing.assert_allclose(back.embeddings, nb.embeddings, atol=1e-6)
    for query, products in (("grey sofa", [1, 2, 3]), ("couch", [2, 3, 4])):
        got, want = run(back, query, products), run(nb, query, products)
        for col in want:
            np.testing.assert_allclose(got[col], want[col], atol=1e-6)
