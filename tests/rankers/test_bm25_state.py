"""BM25 keeps the corpus statistics it was fitted on: scores of texts from any later data
(a service request's products, seen or not) equal the in-training ones, also after a save
and load."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from ltr.errors import DataValidationError
from ltr.rankers.base import load_ranker, make_ranker
from ltr.rankers.bm25 import BM25
from ltr.rankers.reference import BM25Ranker
from ltr.training.lists import ListData

CORPUS = ["red shoe", "blue shoe"]  # N = 2, avg_len = 2; red: n = 1, shoe: n = 2
K1, B = 1.2, 0.75


def make_data(product_texts: list[str], query_texts: list[str]) -> SimpleNamespace:
    return SimpleNamespace(product_texts=product_texts, query_texts=query_texts,
                           preprocessor=SimpleNamespace(numeric_width=0, cardinalities=[]))


def make_lists(queries: list[int], slots: list[list[int]]) -> ListData:
    """One list per query; ``slots`` are product-text indices, padded with 0 (masked)."""
    width = max(len(s) for s in slots)
    g = len(queries)
    product_text = np.zeros((g, width), np.int64)
    mask = np.zeros((g, width), bool)
    for i, s in enumerate(slots):
        product_text[i, :len(s)] = s
        mask[i, :len(s)] = True
    return ListData(keys=np.arange(g), numeric=np.zeros((g, width, 0), np.float32),
                    categorical=np.zeros((g, width, 0), np.int64),
                    query_text=np.asarray(queries, np.int64), product_text=product_text,
                    position=np.zeros((g, width), np.int64), mask=mask,
                    product_id=np.full((g, width), None, dtype=object))


def hand_bm25(f: dict[str, int], length: int) -> float:
    """BM25 of the query 'red shoe' in the two-document CORPUS, by hand."""
    idf = {"red": math.log(1 + (2 - 1 + 0.5) / (1 + 0.5)),
           "shoe": math.log(1 + (2 - 2 + 0.5) / (2 + 0.5))}
    norm = K1 * (1 - B + B * length / 2.0)
    return sum(idf[t] * f[t] * (K1 + 1) / (f[t] + norm) for t in ("red", "shoe") if f.get(t))


def fitted() -> tuple[BM25Ranker, SimpleNamespace]:
    data = make_data(CORPUS, ["red shoe"])
    return make_ranker("bm25").fit(data), data


def test_scores_of_other_data_use_the_fitted_corpus():
    ranker, data = fitted()
    # the fitted data: both documents
    on_fit = ranker.score(make_lists([0], [[0, 1]]), data)
    np.testing.assert_allclose(on_fit[0], [hand_bm25({"red": 1, "shoe": 1}, 2),
                                           hand_bm25({"shoe": 1}, 2)], rtol=1e-12)
    # a request: a subset of the corpus, reordered, plus an unseen text (with an unseen
    # term); rebuilding from it would change N, the IDFs and the mean length
    request = make_data(["red red shoe lamp", "blue shoe"], ["lamp", "red shoe"])
    scores = ranker.score(make_lists([1], [[1, 0]]), request)
    expected = [hand_bm25({"shoe": 1}, 2), hand_bm25({"red": 2, "shoe": 1}, 4)]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-12)
    assert scores[0, 0] == on_fit[0, 1]  # same text, same score as in training
    # a query of corpus-unseen terms scores 0; padded slots are NaN
    other = ranker.score(make_lists([0, 1], [[0], [1, 0]]), request)
    assert other[0, 0] == 0.0 and np.isnan(other[0, 1])
    np.testing.assert_allclose(other[1], expected, rtol=1e-12)


def test_scores_on_the_fitted_data_match_the_index_by_id():
    texts = ["Red running shoe", "blue shoe", "red hat", "", "shoe shoe shoe rack"]
    data = make_data(texts, ["red shoe", "shoe rack", "nothing"])
    ranker = make_ranker("bm25", {"k1": 1.5, "b": 0.5}).fit(data)
    lists = make_lists([0, 1, 2], [[0, 1, 2, 3, 4], [4, 3, 2], [1]])
    scores = ranker.score(lists, data)
    index = BM25(list(range(len(texts))), texts, 1.5, 0.5)
    for g in range(len(lists)):
        ids = lists.product_text[g][lists.mask[g]].tolist()
        assert np.array_equal(scores[g][lists.mask[g]],
                              index.score(data.query_texts[lists.query_text[g]], ids))


def test_round_trip_gives_the_same_scores(tmp_path):
    ranker, data = fitted()
    lists = make_lists([0], [[0, 1]])
    request = make_data(["red red shoe lamp", "blue shoe", "red shoe"], ["red shoe"])
    req_lists = make_lists([0, 0], [[2, 0, 1], [1]])
    folder = ranker.save(tmp_path / "bm25")
    state = json.loads((folder / "bm25.json").read_text())
    assert set(state) == {"k1", "b", "n_docs", "avg_len", "idf"}
    assert state["n_docs"] == 2 and state["avg_len"] == 2.0
    assert sorted(state["idf"]) == ["blue", "red", "shoe"]
    assert not [p for p in folder.iterdir() if p.suffix in (".pkl", ".pickle", ".pt")]
    back = load_ranker(folder)
    assert isinstance(back, BM25Ranker) and back.params == ranker.params
    assert np.array_equal(back.score(lists, data), ranker.score(lists, data))
    a, b = back.score(req_lists, request), ranker.score(req_lists, request)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)],
                                                                       b[~np.isnan(b)])


def test_score_equals_score_texts_exactly():
    texts = ["Red running shoe", "blue shoe", "red hat", "", "shoe shoe shoe rack",
             "RED-red_red 42"]
    ids = ["a", "b", "c", "d", "e", "f"]
    index = BM25(ids, texts)
    for query in ("red shoe", "shoe shoe", "42 rack lamp", "", "unseen"):
        order = [4, 0, 5, 3, 1, 2]
        by_id = index.score(query, [ids[i] for i in order])
        by_text = index.score_texts(query, [texts[i] for i in order])
        assert np.array_equal(by_id, by_text), query
    assert index.score("red", ["zzz"]).tolist() == [0.0]  # unknown id
    # an index from its state scores texts exactly as the fitted one, with no corpus
    back = BM25.from_dict(json.loads(json.dumps(index.to_dict())))
    assert back.to_dict() == index.to_dict()
    for query in ("red shoe", "shoe rack 42"):
        assert np.array_equal(back.score_texts(query, texts + ["red lamp"]),
                              index.score_texts(query, texts + ["red lamp"]))


@pytest.mark.parametrize("content", [
    "{not json", '["a list"]', '{"k1": 1.2, "b": 0.75}',
    '{"k1": 1.2, "b": 0.75, "n_docs": 2, "avg_len": 2.0, "idf": ["red"]}',
    '{"k1": 1.2, "b": 0.75, "n_docs": 2, "avg_len": "two", "idf": {}}',
    '{"k1": 1.2, "b": 0.75, "n_docs": 2, "avg_len": 2.0, "idf": {"red": null}}',
    '{"k1": 2.0, "b": 0.75, "n_docs": 2, "avg_len": 2.0, "idf": {}}',
], ids=["not-json", "not-object", "missing-keys", "idf-list", "avg-len-str", "idf-null",
        "k1-differs"])
def test_corrupt_state_names_the_file(content, tmp_path):
    ranker, _ = fitted()
    folder = ranker.save(tmp_path / "bm25")
    path = folder / "bm25.json"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=re.escape(str(path))):
        load_ranker(folder)


def test_missing_state_names_the_file(tmp_path):
    ranker, _ = fitted()
    folder = ranker.save(tmp_path / "bm25")
    (folder / "bm25.json").unlink()
    with pytest.raises(DataValidationError, match=re.escape(str(folder / "bm25.json"))):
        BM25Ranker.load(folder)
