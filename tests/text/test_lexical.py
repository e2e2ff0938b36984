"""The lexical analyser, query-term coverage and the calibration of its weight, against
hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltr.text.lexical import (
    LEXICAL_WEIGHTS,
    STOPWORDS,
    calibrate_lexical_weight,
    content_tokens,
    coverage,
    hybrid_similarity,
    singular,
)

# ---------------------------------------------------------------------------- the analyser


@pytest.mark.parametrize(("token", "expected"), [
    ("accessories", "accessory"),  # -ies -> -y
    ("cookie", "cooky"),  # -ie -> -y (as the docstring says; queries and products alike)
    ("shelves", "shelf"),  # -elves -> -elf
    ("glasses", "glass"),  # -sses -> -ss
    ("benches", "bench"),  # -ches
    ("dishes", "dish"),  # -shes
    ("boxes", "box"),  # -xes
    ("chairs", "chair"),  # final -s
    ("sofas", "sofa"),
    ("dress", "dress"),  # -ss kept
    ("cactus", "cactus"),  # -us kept
    ("analysis", "analysis"),  # -is kept
    ("ties", "tie"),  # 4 letters: -ies needs > 4, plain -s drop
    ("pie", "pie"),  # <= 3 characters kept
    ("bus", "bus"),
    ("tvs", "tvs"),
    ("2x4s", "2x4s"),  # digits kept
    ("sofa", "sofa"),  # already singular
])
def test_singular(token: str, expected: str) -> None:
    assert singular(token) == expected


def test_singular_is_idempotent_on_its_outputs() -> None:
    for t in ("accessories", "shelves", "glasses", "benches", "chairs", "lamps"):
        assert singular(singular(t)) == singular(t)


def test_content_tokens_fold_accents_and_case() -> None:
    assert content_tokens("Décor") == {"decor"}
    assert content_tokens("Home DÉCOR") == content_tokens("home decor") == {"home", "decor"}
    assert content_tokens("Café Chaise") == {"cafe", "chaise"}


def test_content_tokens_ampersand_reads_and_and_is_a_stopword() -> None:
    # "&" glued to words still splits them; "and" is then a stopword
    assert content_tokens("Bed&Bath") == {"bed", "bath"}
    assert content_tokens("tables & chairs") == content_tokens("tables and chairs") \
        == {"table", "chair"}
    assert "and" in STOPWORDS


def test_content_tokens_drop_stopwords_units_counts() -> None:
    assert content_tokens("the 3 piece set of chairs for your 12 inch table") == \
        {"3", "set", "chair", "12", "table"}
    assert content_tokens("a the and of") == set()
    assert content_tokens("") == set()


def test_content_tokens_fold_plurals_alike() -> None:
    assert content_tokens("Bathroom Accessories") == content_tokens("bathroom accessory")
    assert content_tokens("Wall Shelves") == {"wall", "shelf"}


# ---------------------------------------------------------------------------- coverage


def test_coverage_hand_cases() -> None:
    queries = ["red sofa", "red red sofa", "grey sofas", "oak bed frame", "blue chair"]
    texts = ["Red velvet Sofa", "sofa", "Sofa / Living room", "oak table", "lamp"]
    # |T(q) & T(d)| / |T(q)|:
    # {red, sofa} vs {red, velvet, sofa}: 2/2; {red, sofa} (repeat once) vs {sofa}: 1/2;
    # {grey, sofa} vs {sofa, living, room}: 1/2; {oak, bed, frame} vs {oak, table}: 1/3;
    # {blue, chair} vs {lamp}: 0
    np.testing.assert_allclose(coverage(queries, texts), [1.0, 0.5, 0.5, 1 / 3, 0.0])


def test_coverage_repeated_tokens_count_once() -> None:
    # repeats in the query do not weigh more, repeats in the text do not count twice
    got = coverage(["lamp lamp desk", "lamp desk"], ["lamp lamp lamp lamp", "lamp"])
    np.testing.assert_allclose(got, [0.5, 0.5])


def test_coverage_query_without_content_tokens_is_zero() -> None:
    np.testing.assert_array_equal(coverage(["the and", "of"], ["the and", "of stuff"]),
                                  [0.0, 0.0])
    # mixed with a normal query
    np.testing.assert_allclose(coverage(["the", "bed"], ["the bed", "bed"]), [0.0, 1.0])


def test_coverage_same_query_many_texts_and_accents() -> None:
    got = coverage(["décor lamps"] * 3, ["Decor Lamp", "lamp", "rug"])
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0])


def test_coverage_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="2 queries for 1 texts"):
        coverage(["a b", "c"], ["x"])


def test_coverage_empty() -> None:
    out = coverage([], [])
    assert out.shape == (0,)


def test_coverage_in_unit_interval_and_one_for_self() -> None:
    texts = ["oak dining table", "Red & Blue Rugs", "3 piece patio set", "Wall Décor"]
    got = coverage(texts, texts)
    np.testing.assert_allclose(got, 1.0)


# ---------------------------------------------------------------------------- hybrid


def test_hybrid_similarity() -> None:
    cos = np.array([0.2, -0.1, 0.9])
    cov = np.array([1.0, 0.5, 0.0])
    np.testing.assert_allclose(hybrid_similarity(cos, cov, 0.2), [0.4, 0.0, 0.9])
    np.testing.assert_allclose(hybrid_similarity(cos, cov, 0.0), cos)
    np.testing.assert_allclose(hybrid_similarity([0.5], [1.0], 1), [1.5])


# ---------------------------------------------------------------------------- calibration

WRONG = 1 / math.log2(3)  # NDCG@10 (linear gain) of [0, 1] ranked the wrong way round


def _two_queries():
    """Query A needs w > 0.15 to put its target item first, query B w < 0.35."""
    queries = np.array(["A", "A", "B", "B"])
    cosine = np.array([0.50, 0.35, 0.90, 0.55])
    cover = np.array([0.0, 1.0, 0.0, 1.0])
    target = np.array([0.0, 1.0, 1.0, 0.0])
    return queries, cosine, cover, target


def test_calibration_hand_case_and_tie_to_smaller_weight() -> None:
    w, curve = calibrate_lexical_weight(*_two_queries())
    # 0, 0.05, 0.1: A wrong, B right; 0.2, 0.3: both right; 0.5, 0.75, 1: A right, B wrong
    both_right, one_wrong = 1.0, (1.0 + WRONG) / 2
    expected = {0.0: one_wrong, 0.05: one_wrong, 0.1: one_wrong, 0.2: both_right,
                0.3: both_right, 0.5: one_wrong, 0.75: one_wrong, 1.0: one_wrong}
    assert list(curve) == list(LEXICAL_WEIGHTS)
    for k, v in expected.items():
        assert curve[k] == pytest.approx(v), k
    assert w == 0.2  # 0.2 and 0.3 tie: the smaller wins


def test_calibration_custom_grid_unique_best() -> None:
    w, curve = calibrate_lexical_weight(*_two_queries(), grid=(1.0, 0.3, 0.0))
    assert w == 0.3
    assert set(curve) == {0.0, 0.3, 1.0}


def test_calibration_all_tied_picks_smallest() -> None:
    q, cos, cov, _ = _two_queries()
    w, curve = calibrate_lexical_weight(q, cos, np.zeros(4), np.array([0.0, 1.0, 1.0, 0.0]),
                                        grid=(0.5, 0.2, 1.0))
    assert w == 0.2
    assert len(set(curve.values())) == 1


def test_calibration_target_is_linear_gain_negative_and_nan_as_zero() -> None:
    # one query, three items; the target's grades 2 and 1 make linear and exponential gain
    # differ; a NaN and a negative target count 0
    queries = np.array(["q"] * 4)
    cosine = np.array([0.9, 0.8, 0.7, 0.6])
    cover = np.array([0.0, 0.0, 1.0, 0.0])
    target = np.array([1.0, np.nan, 2.0, -3.0])
    w, curve = calibrate_lexical_weight(queries, cosine, cover, target, grid=(0.0, 1.0))
    idcg = 2 + 1 / math.log2(3)
    # w = 0: order 0, 1, 2, 3 -> gains 1, 0, 2, 0; w = 1: order 2, 0, 1, 3 -> 2, 1, 0, 0
    assert curve[0.0] == pytest.approx((1 + 2 / 2) / idcg)
    assert curve[1.0] == pytest.approx(1.0)
    assert w == 1.0


def test_calibration_single_pair_query_counts_once() -> None:
    q, cos, cov, y = _two_queries()
    # a third query with one pair: a one-item list ranks perfectly whatever the weight,
    # so it cannot change the choice, but it counts once in the mean
    q2 = np.r_[q, ["C"]]
    w, curve = calibrate_lexical_weight(q2, np.r_[cos, 0.1], np.r_[cov, 0.0], np.r_[y, 1.0])
    assert w == 0.2
    assert curve[0.0] == pytest.approx((1.0 + WRONG + 1.0) / 3)


def test_calibration_empty_and_no_query_with_two_pairs() -> None:
    empty = np.array([])
    assert calibrate_lexical_weight(empty, empty, empty, empty) == (0.0, {})
    one_each = np.array(["a", "b"])
    assert calibrate_lexical_weight(one_each, np.array([0.1, 0.2]), np.array([1.0, 0.0]),
                                    np.array([1.0, 1.0])) == (0.0, {})


def test_calibration_zero_target_everywhere() -> None:
    q, cos, cov, _ = _two_queries()
    w, curve = calibrate_lexical_weight(q, cos, cov, np.zeros(4))
    assert w == 0.0
    assert all(math.isnan(v) for v in curve.values())
