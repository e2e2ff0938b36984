"""Synthetic queries: recipes, exclusion, typos, rule-based grades, retrieval and the CLI."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ltr.cli import main as ltr
from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_table
from ltr.rankers.bm25 import BM25
from ltr.simulate import SimulationConfig, simulate
from ltr.simulate.queries import (
    DEFAULT_SHARES,
    analyze,
    bm25_score_matrix,
    generate_queries,
    retrieve_candidates,
    synthetic_query_candidates,
    true_grades,
)
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    """300 real WANDS products."""
    return read_table(SAMPLE / "products.parquet").sample(300, random_state=0) \
        .reset_index(drop=True)


@pytest.fixture(scope="module")
def queries(products) -> pd.DataFrame:
    return generate_queries(products, 150, seed=1)


def osa_distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (an adjacent swap is one edit)."""
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    d[:, 0], d[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i, j] = min(d[i, j], d[i - 2, j - 2] + 1)
    return int(d[-1, -1])


# ----------------------------------------------------------------------------- recipes
def test_recipes_give_the_requested_shares_of_distinct_queries(queries):
    assert len(queries) == 150 and queries["query"].is_unique
    counts = queries["recipe"].value_counts()
    for recipe, share in DEFAULT_SHARES.items():
        assert abs(counts.get(recipe, 0) - 150 * share) <= 1, (recipe, counts.to_dict())
    assert (queries["query"] == queries["query"].str.lower()).all()
    clean = queries[queries["recipe"] != "typo"]
    assert (clean["query"] == clean["intended"]).all()
    assert (queries.loc[queries["recipe"].isin(["category", "name_ngram"]), "klass"] == "").all()
    named = queries[queries["recipe"].isin(["class", "modifier_class"])]
    assert (named["klass"] != "").all()
    mods = queries[queries["recipe"] == "modifier_class"]
    assert all(m in q.split() for q, m in zip(mods["query"], mods["modifiers"], strict=True))
    ngram = queries.loc[queries["recipe"] == "name_ngram", "query"]
    assert ngram.str.split().str.len().between(2, 3).all()
    assert not ngram.str.split().map(lambda ts: any(t.isdigit() for t in ts)).any()


def test_same_seed_same_queries_other_seed_other_queries(products, queries):
    pd.testing.assert_frame_equal(generate_queries(products, 150, seed=1), queries)
    assert set(generate_queries(products, 150, seed=2)["query"]) != set(queries["query"])


def test_typo_queries_are_one_edit_from_their_intended_text(queries):
    typos = queries[queries["recipe"] == "typo"]
    assert len(typos) > 10
    assert (typos["base_recipe"] != "typo").all()
    for typed, intended in zip(typos["query"], typos["intended"], strict=True):
        assert osa_distance(typed, intended) == 1, (typed, intended)
        pairs = zip(typed.split(" "), intended.split(" "), strict=True)
        changed = [clean for word, clean in pairs if word != clean]
        assert len(changed) == 1 and len(changed[0]) >= 4 and changed[0].isalpha()


def test_exclude_drops_queries_and_typos_of_them(products, queries):
    typo_intended = queries.loc[queries["recipe"] == "typo", "intended"].tolist()
    clean = queries.loc[queries["recipe"] != "typo", "query"].tolist()[:40]
    banned = [f"  {q.upper()} " for q in clean + typo_intended]  # case and spaces do not matter
    again = generate_queries(products, 150, seed=1, exclude=banned)
    gone = {q.lower() for q in clean + typo_intended}
    assert not gone & set(again["query"]) and not gone & set(again["intended"])
    assert len(again) == 150


def test_small_catalog_returns_fewer_queries_with_a_warning(products):
    with pytest.warns(UserWarning, match="distinct queries"):
        few = generate_queries(products.head(3), 500, seed=0)
    assert 0 < len(few) < 500 and few["query"].is_unique


def test_bad_shares_and_n_name_the_key(products):
    with pytest.raises(ConfigError, match="shares.colour"):
        generate_queries(products, 10, shares={"colour": 1.0})
    with pytest.raises(ConfigError, match="'n'"):
        generate_queries(products, 0)


# ----------------------------------------------------------------------------- grades
HAND_PRODUCTS = pd.DataFrame({
    "product_id": [1, 2, 3, 4, 5, 6],
    "title": ["Velvet Accent Chair", "Leather Armchair", "Velvet Dining Chair",
              "Round Accent Table", "Solar Path Light", "Glass Pendant"],
    "product_class": ["Accent Chairs", "Accent Chairs", "Dining Chairs", "Accent Tables",
                      "Pathway Lighting", "Pendants"],
    "category": ["Furniture / Living Room / Accent Chairs", "Furniture / Living Room",
                 "Furniture / Kitchen & Dining / Dining Chairs", "Furniture / Living Room",
                 "Lighting / Outdoor Lighting / Pathway Lighting", "Lighting / Pendant Lighting"],
})
HAND_QUERIES = pd.DataFrame({
    "query": ["velvet accent chair", "accent chair", "outdoor lighting", "velvte accent chair",
              "solar path"],
    "intended": ["velvet accent chair", "accent chair", "outdoor lighting",
                 "velvet accent chair", "solar path"],
    "klass": ["Accent Chairs", "Accent Chairs", "", "Accent Chairs", ""],
    "modifiers": ["velvet", "", "outdoor lighting", "velvet", "solar path"],
})
# query -> grade of products 1..6
EXPECTED = {
    "velvet accent chair": [2, 1, 1, 0, 0, 0],  # exact / class only / head + 2 of 3 words
    "accent chair": [2, 2, 1, 0, 0, 0],  # plural folding; dining chair: head + half
    "outdoor lighting": [0, 0, 0, 0, 2, 1],  # pendant lighting: head + half the words
    "velvte accent chair": [2, 1, 1, 0, 0, 0],  # graded on the intended text
    "solar path": [0, 0, 0, 0, 2, 0],
}


def test_true_grades_follow_the_documented_rule():
    cand = pd.DataFrame([(q, pid) for q in EXPECTED for pid in HAND_PRODUCTS["product_id"]],
                        columns=["query", "product_id"])
    grades = true_grades(HAND_QUERIES, cand, HAND_PRODUCTS).reshape(len(EXPECTED), -1)
    for row, (query, want) in zip(grades, EXPECTED.items(), strict=True):
        assert row.tolist() == want, query


def test_true_grades_name_unknown_queries_and_products():
    cand = pd.DataFrame({"query": ["accent chair"], "product_id": [99]})
    with pytest.raises(DataValidationError, match="product_id"):
        true_grades(HAND_QUERIES, cand, HAND_PRODUCTS)
    cand = pd.DataFrame({"query": ["sofa"], "product_id": [1]})
    with pytest.raises(DataValidationError, match="column 'query'"):
        true_grades(HAND_QUERIES, cand, HAND_PRODUCTS)


# ----------------------------------------------------------------------------- retrieval
def test_sparse_bm25_equals_the_reference_scores(products):
    texts = [analyze(t) for t in products["title"]]
    bm25 = BM25(list(range(len(texts))), texts)
    qs = ["velvet accent chair", "wall clock wall", "zzz"]
    scores = bm25_score_matrix(bm25, [analyze(q) for q in qs]).toarray()
    for i, q in enumerate(qs):
        np.testing.assert_allclose(scores[i], bm25.score(analyze(q), list(range(len(texts)))),
                                   rtol=1e-9, atol=1e-12)


def test_bm25_retrieval_keeps_top_k_of_products_sharing_a_word(products, queries):
    k = 10
    cand = retrieve_candidates(queries, products, k_bm25=k, encoder=None)
    assert set(cand["retriever"]) == {"bm25"}
    assert not cand.duplicated(["query", "product_id"]).any()
    ptext = (products["title"] + " | " + products["product_class"].fillna("")).map(analyze)
    ptoks = dict(zip(products["product_id"], ptext.str.split().map(set), strict=True))
    got = cand.groupby("query")["product_id"].agg(set)
    for q in queries["query"]:
        words = set(analyze(q).split())
        sharing = {pid for pid, toks in ptoks.items() if toks & words}
        hits = got.get(q, set())
        assert hits <= sharing, q
        assert len(hits) == min(k, len(sharing)), q


def test_cosine_retrieval_with_a_tiny_encoder(tmp_path, products, queries):
    pytest.importorskip("transformers")
    from ltr.text import TextEncoder
    from tests.text.conftest import build_tiny_bert

    encoder = TextEncoder.from_pretrained(str(build_tiny_bert(tmp_path / "bert")),
                                          progress=False, max_length=32)
    few = queries.head(20)
    cand = retrieve_candidates(few, products, k_bm25=5, k_cosine=5, encoder=encoder)
    per_q = cand.groupby("query")
    assert per_q.size().max() <= 10
    assert (per_q["retriever"].agg(lambda r: r.isin(["cosine", "both"]).sum()) == 5).all()
    assert set(cand["retriever"]) <= {"bm25", "cosine", "both"} and "cosine" in set(
        cand["retriever"])


def test_synthetic_query_candidates_keep_queries_with_something_to_find(products):
    cand, table = synthetic_query_candidates(products, 80, seed=3, k_bm25=20)
    assert set(cand["grade"]) <= {0, 1, 2}
    np.testing.assert_allclose(cand["relevance"], cand["grade"] / 2)
    kept = set(table.loc[table["kept"], "query"])
    assert set(cand["query"]) == kept
    assert (cand.groupby("query")["grade"].max() >= 1).all()
    assert (table.loc[~table["kept"], "n_exact"] + table.loc[~table["kept"], "n_partial"] == 0
            ).all()


# ----------------------------------------------------------------------------- simulator + CLI
def test_simulate_takes_candidates_not_both(products):
    cand, table = synthetic_query_candidates(products, 30, seed=0, k_bm25=20)
    result = simulate(products, SimulationConfig(n_sessions=200, n_customers=50), candidates=cand,
                      queries=table)
    assert set(result.impressions["query"].astype(str)) <= set(cand["query"])
    assert result.queries is table
    judged = cand[["query", "product_id", "grade"]]
    with pytest.raises(ConfigError, match="simulate.candidates"):
        simulate(products, SimulationConfig(n_sessions=10), judged, candidates=cand)
    with pytest.raises(DataValidationError, match="product_id"):
        simulate(products, SimulationConfig(n_sessions=10),
                 candidates=cand.assign(product_id=-1))


def test_cli_builds_a_synthetic_query_log(tmp_path, products, capsys):
    catalog = tmp_path / "products.parquet"
    products.to_parquet(catalog)
    judged = read_table(SAMPLE / "judgements.parquet")
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rc = ltr(["simulate", "--catalog", str(catalog), "--synthetic-queries", "60",
                  "--exclude-queries", str(SAMPLE / "judgements.parquet"),
                  "--text-model", "none", "--retrieve-k", "20",
                  "--set", "n_sessions=400", "--set", "n_customers=100", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "synthetic queries: 60 generated" in printed and "candidates per query" in printed
    imp = read_table(out / "impressions.parquet")
    rel = read_table(out / "ground_truth" / "relevance.parquet")
    table = read_table(out / "ground_truth" / "synthetic_queries.parquet")
    assert len(table) == 60
    assert set(imp["query"]) <= set(table.loc[table["kept"], "query"])
    assert not set(imp["query"]) & set(judged["query"].str.lower())
    assert set(rel["query"]) == set(table.loc[table["kept"], "query"])
    assert set(rel["grade"]) <= {0, 1, 2}


def test_cli_synthetic_queries_and_judgements_are_exclusive(tmp_path, capsys):
    rc = ltr(["simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--judgements", str(SAMPLE / "judgements.parquet"), "--synthetic-queries", "10",
              "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "--synthetic-queries" in err and "--judgements" in err


def test_cli_exclude_queries_reads_a_wands_folder_and_names_a_missing_column(tmp_path):
    from ltr.simulate.cli import _exclude_queries

    (tmp_path / "query.tsv").write_text("query_id\tquery\n0\tsofa bed\n1\tlamp\n")
    assert _exclude_queries(str(tmp_path)) == ["sofa bed", "lamp"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nsofa\n")
    with pytest.raises(DataValidationError, match="column 'query'"):
        _exclude_queries(str(bad))
