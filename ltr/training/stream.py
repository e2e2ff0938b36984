"""Training lists streamed from Parquet, one row group at a time.

:func:`write_list_rows` writes the joined training rows so that every Parquet row group
holds whole lists (lists shuffled once, with a seed; rows of a list kept together and in
order). :class:`ParquetListStream` then reads one row group at a time, preprocesses it and
yields its lists as padded items of a fixed width — memory holds one row group, not the
log. With several DataLoader workers, worker ``w`` of ``n`` reads row groups
``w, w + n, ...``. Streaming reads in file order, so the outcome-balanced sampler does not
apply: lists come uniformly shuffled (at write time).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ltr.features.preprocess import Preprocessor
from ltr.io import atomic_path
from ltr.training.lists import ListDataset, build_lists


def write_list_rows(rows: pd.DataFrame, path: str | Path, group_col: str,
                    lists_per_group: int = 512, seed: int = 0) -> Path:
    """Write ``rows`` to Parquet with whole, shuffled lists per row group (atomically)."""
    path = Path(path)
    keys = rows[group_col].unique()
    order = np.random.default_rng(seed).permutation(len(keys))
    rank = pd.Series(np.empty(len(keys), dtype=np.int64), index=keys)
    rank.iloc[order] = np.arange(len(keys))
    rows = rows.assign(_list_rank=rows[group_col].map(rank).to_numpy())
    rows = rows.sort_values("_list_rank", kind="stable")
    chunk = rows["_list_rank"].to_numpy() // lists_per_group
    rows = rows.drop(columns="_list_rank")
    schema = pa.Schema.from_pandas(rows, preserve_index=False)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for c in np.unique(chunk):
            writer.write_table(pa.Table.from_pandas(rows[chunk == c], schema=schema,
                                                    preserve_index=False))
    return path


class ParquetListStream(IterableDataset):
    """Padded training lists from a file written by :func:`write_list_rows`."""

    def __init__(self, path: str | Path, group_col: str, pre: Preprocessor,
                 query_index: dict[str, int], product_index: dict[object, int],
                 tasks: list[str], list_size: int) -> None:
        super().__init__()
        self.path, self.group_col, self.pre = Path(path), group_col, pre
        self.query_index, self.product_index = query_index, product_index
        self.tasks, self.list_size = tasks, list_size
        self.n_row_groups = pq.ParquetFile(self.path).num_row_groups

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        pf = pq.ParquetFile(self.path)
        for g in range(worker, self.n_row_groups, n_workers):
            rows = pf.read_row_group(g).to_pandas()
            lists = build_lists(rows, self.group_col, self.pre, self.query_index,
                                self.product_index, self.tasks, f"{self.path} row group {g}",
                                list_size=self.list_size)
            items = ListDataset(lists)
            for i in range(len(items)):
                yield items[i]
