import numpy as np

from ltr.data.groups import pad_groups


def test_pad_groups_keeps_row_order_and_masks_padding():
    ids = np.array([5, 3, 5, 5, 3, 9])
    g = pad_groups(ids)
    assert g.keys.tolist() == [3, 5, 9]
    assert g.index.tolist() == [[1, 4, -1], [0, 2, 3], [5, -1, -1]]
    assert g.lengths.tolist() == [2, 3, 1]
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    padded = g.gather(values, fill=-1.0)
    assert padded.tolist() == [[1.0, 4.0, -1.0], [0.0, 2.0, 3.0], [5.0, -1.0, -1.0]]
    np.testing.assert_array_equal(g.scatter(padded, len(values)), values)


def test_pad_groups_truncates_and_handles_strings_and_empty():
    g = pad_groups(np.array(["b", "a", "b", "b"]), max_len=2)
    assert g.keys.tolist() == ["a", "b"]
    assert g.index.tolist() == [[1, -1], [0, 2]]
    empty = pad_groups(np.array([], dtype=np.int64))
    assert empty.shape == (0, 0)


def test_gather_multi_dimensional_values():
    g = pad_groups(np.array([1, 1, 2]))
    emb = np.arange(6, dtype=float).reshape(3, 2)
    out = g.gather(emb)
    assert out.shape == (2, 2, 2)
    assert out[1, 1].tolist() == [0.0, 0.0]
    assert out[0, 1].tolist() == [2.0, 3.0]
