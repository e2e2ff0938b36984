"""The one layout every ranking component shares: query groups, padded, masked.

A flat table of rows (one row per shown product) becomes ``[n_groups, list_len]`` arrays:
row ``g`` holds group ``g``'s items in their original row order, left-aligned, and
``mask[g, j]`` is True where slot ``j`` holds a real item. Padded slots hold ``fill``.
Metrics, losses, samplers and models all take this shape; nothing loops over groups in
Python.

Example::

    >>> import numpy as np
    >>> g = pad_groups(np.array(["b", "a", "b"]))
    >>> g.keys.tolist(), g.index.tolist(), g.mask.tolist()
    (['a', 'b'], [[1, -1], [0, 2]], [[True, False], [True, True]])
    >>> g.gather(np.array([10.0, 20.0, 30.0]), fill=0.0).tolist()
    [[20.0, 0.0], [10.0, 30.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PaddedGroups:
    """Row indices of a flat table laid out as padded groups.

    Attributes:
        keys: ``[n_groups]`` the group id of each row of the layout, sorted.
        index: ``[n_groups, list_len]`` int64 row numbers into the flat table, -1 where padded.
        mask: ``[n_groups, list_len]`` bool, True where a real item sits.
    """

    keys: np.ndarray
    index: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.index.shape  # type: ignore[return-value]

    @property
    def lengths(self) -> np.ndarray:
        """Number of real items in each group."""
        return self.mask.sum(axis=1)

    def gather(self, values: np.ndarray, fill: float | int | bool = 0) -> np.ndarray:
        """Lay out a per-row array (``[n_rows, ...]``) as ``[n_groups, list_len, ...]``."""
        values = np.asarray(values)
        out = values[np.where(self.mask, self.index, 0)]  # fancy indexing copies
        out[~self.mask] = fill
        return out

    def scatter(self, padded: np.ndarray, n_rows: int) -> np.ndarray:
        """Inverse of :meth:`gather`: back to one value per flat row."""
        padded = np.asarray(padded)
        out = np.empty((n_rows,) + padded.shape[2:], dtype=padded.dtype)
        out[self.index[self.mask]] = padded[self.mask]
        return out


def pad_groups(group_ids: np.ndarray, max_len: int | None = None) -> PaddedGroups:
    """Group the rows of a flat table by ``group_ids`` into a padded layout.

    Args:
        group_ids: ``[n_rows]`` any sortable ids (ints or strings).
        max_len: truncate groups to their first ``max_len`` rows (row order); default is the
            longest group.

    Rows keep their relative order inside a group (a stable sort), so a table already
    sorted by position stays sorted by position.
    """
    group_ids = np.asarray(group_ids)
    n = len(group_ids)
    if n == 0:
        return PaddedGroups(
            keys=group_ids[:0], index=np.zeros((0, 0), np.int64), mask=np.zeros((0, 0), bool)
        )
    order = np.argsort(group_ids, kind="stable")
    sorted_ids = group_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    lengths = np.diff(np.r_[starts, n])
    group_of = np.repeat(np.arange(len(starts)), lengths)
    slot = np.arange(n) - np.repeat(starts, lengths)
    width = int(lengths.max()) if max_len is None else int(max_len)
    keep = slot < width
    index = np.full((len(starts), width), -1, dtype=np.int64)
    index[group_of[keep], slot[keep]] = order[keep]
    return PaddedGroups(keys=sorted_ids[starts], index=index, mask=index >= 0)
