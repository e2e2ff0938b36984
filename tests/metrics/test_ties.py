"""The neutral tie rule: ties never fall to the stored order of a list."""

from __future__ import annotations

import zlib

import numpy as np

from ltr.metrics import mrr, neutral_order, reorder, tie_keys


def test_tie_keys_are_the_crc32_of_the_id_text():
    ids = np.array([[12, "12", None], ["sku-9", np.int64(12), 3.0]], dtype=object)
    keys = tie_keys(ids)
    assert keys[0, 0] == keys[0, 1] == keys[1, 1] == zlib.crc32(b"12")
    assert keys[0, 2] == 0 and keys[1, 0] == zlib.crc32(b"sku-9")


def test_neutral_order_ignores_the_stored_order_and_puts_padding_last():
    products = np.array([[5, 9, 2, 7], [7, 2, 9, 5]], dtype=object)
    mask = np.array([[True, True, True, True], [True, True, True, False]])
    keys = tie_keys(products)
    order = neutral_order(keys, mask)
    first = list(products[0][order[0]])
    second = list(products[1][order[1][:3]])
    assert [p for p in first if p in second] == second  # same products, same order
    assert order[1][-1] == 3  # the padded slot
    np.testing.assert_array_equal(order, neutral_order(keys, mask))  # reproducible


def test_a_constant_score_no_longer_inherits_the_logged_order():
    rng = np.random.default_rng(0)
    g, n = 500, 20
    clicks = np.zeros((g, n))
    clicks[:, 0] = 1  # the logged top slot was clicked
    products = rng.permutation(g * n).reshape(g, n).astype(object)
    mask = np.ones((g, n), bool)
    flat = np.zeros((g, n))
    stored = mrr(flat, clicks, mask, k=10).mean
    s, y, m = reorder(neutral_order(tie_keys(products), mask), flat, clicks, mask)
    neutral = mrr(s, y, m, k=10).mean
    assert stored == 1.0 and neutral < 0.25  # E[1/rank | rank <= 10] for a random rank ~0.15
