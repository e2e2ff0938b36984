"""Training lists streamed from Parquet, one row group at a time.

:func:`write_list_rows` writes the joined training rows so that every Parquet row group
holds whole lists (lists shuffled once, with a seed; rows of a list kept together and in
order), joined a chunk of whole lists at a time (:class:`ListWriter`), so the joined
training rows are never whole in memory. :class:`ParquetListStream` then reads one row
group at a time, preprocesses it and yields its lists as padded items of a fixed width —
memory holds one row group, not the log. The lists are sharded by row group over every
reader, DataLoader workers times DDP processes (:func:`shard`): reader ``i`` of ``n``
reads row groups ``i, i + n, ...``. Under DDP every reader yields the same number of
lists (the smallest share; the remainder of the others is dropped for that epoch), so
every rank takes the same number of steps.
Streaming reads in file order, so the outcome-balanced sampler does not apply: lists come
uniformly shuffled (at write time).

Rankers that are not the MMoE read the same file through :meth:`ParquetListStream.lists`
(one :class:`~ltr.training.lists.ListData` per row group): the XGBoost ranker feeds them
to its external-memory ``DataIter``; the neural single-score rankers wrap them in
:class:`ListTensorStream`, which turns each row group's lists into the Lightning module's
batch tensors and reshuffles them every epoch within a buffer of a few row groups
(memory: the buffer, not the file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ltr.features.preprocess import Preprocessor
from ltr.io import atomic_path
from ltr.training.lists import ListData, ListDataset, build_lists


class ListWriter:
    """Writes training rows that come in list order, a chunk at a time, as Parquet row
    groups (``group``: the row group of each row, contiguous), atomically: use as a
    context manager; the file appears at ``path`` only when every chunk was written.
    Column types come from the first chunk; ``types`` names the type of a column that
    chunk holds only missing values of."""

    def __init__(self, path: str | Path, types: dict[str, pa.DataType] | None = None
                 ) -> None:
        self.path = Path(path)
        self.types = dict(types or {})
        self.schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ListWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, rows: pd.DataFrame, group: np.ndarray) -> None:
        if self._writer is None:
            self.schema = _arrow_schema(rows, self.types)
            self._writer = pq.ParquetWriter(self._tmp, self.schema)
        bounds = np.flatnonzero(np.r_[True, np.diff(group) != 0, True])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            self._writer.write_table(pa.Table.from_pandas(rows.iloc[lo:hi], schema=self.schema,
                                                          preserve_index=False))

    def __exit__(self, *exc: object) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            elif exc[0] is None:  # nothing written: a file of no rows
                pq.write_table(pa.table({}), self._tmp)
        finally:
            self._atomic.__exit__(*exc)


def list_ranks(keys: Any, seed: int) -> pd.Series:
    """The position of each list in a seeded shuffle: ``key -> rank`` 0, 1, ... (the
    order streamed training lists are written in)."""
    keys = pd.Index(keys)
    rank = pd.Series(np.empty(len(keys), dtype=np.int64), index=keys)
    rank.iloc[np.random.default_rng(seed).permutation(len(keys))] = np.arange(len(keys))
    return rank


def write_list_rows(rows: pd.DataFrame, path: str | Path, group_col: str,
                    lists_per_group: int = 512, seed: int = 0) -> Path:
    """Write ``rows`` to Parquet with whole, shuffled lists per row group (atomically),
    through :class:`ListWriter`."""
    list_rank = rows[group_col].map(list_ranks(rows[group_col].unique(), seed)).to_numpy()
    at = np.argsort(list_rank, kind="stable")
    with ListWriter(path) as writer:
        writer.write(rows.iloc[at].reset_index(drop=True), list_rank[at] // lists_per_group)
    return writer.path


def _arrow_schema(frame: pd.DataFrame, types: dict[str, pa.DataType]) -> pa.Schema:
    """The Arrow schema of ``frame``, with ``types`` (else text) for columns that hold
    only missing values there."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(schema):
        if pa.types.is_null(f.type):
            schema = schema.set(i, pa.field(f.name, types.get(f.name, pa.string())))
    return schema


def shard() -> tuple[int, int]:
    """``(index, count)`` of this reader among all readers: DataLoader workers within a
    process, times processes (DDP ranks, over every node) when ``torch.distributed`` is
    initialised. Reader ``i`` of ``n`` reads row groups ``i, i + n, ...``, so each row
    group is read by exactly one reader per epoch."""
    import torch.distributed as dist

    info = get_worker_info()
    worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
    rank, world = (dist.get_rank(), dist.get_world_size()) \
        if dist.is_available() and dist.is_initialized() else (0, 1)
    return rank * n_workers + worker, world * n_workers


class ParquetListStream(IterableDataset):
    """Padded training lists from a file written by :func:`write_list_rows`."""

    def __init__(self, path: str | Path, group_col: str, pre: Preprocessor,
                 query_index: dict[str, int], product_index: dict[object, int],
                 tasks: list[str], list_size: int) -> None:
        super().__init__()
        self.path, self.group_col, self.pre = Path(path), group_col, pre
        self.query_index, self.product_index = query_index, product_index
        self.tasks, self.list_size = tasks, list_size
        pf = pq.ParquetFile(self.path)
        self.n_row_groups = pf.num_row_groups
        # lists per row group, from the group column alone: under DDP every rank must
        # take the same number of steps, or the ranks that finish first wait forever in
        # the gradient all-reduce of the others
        self.group_lists = np.array([
            len(pf.read_row_group(g, columns=[group_col]).column(0).unique())
            for g in range(self.n_row_groups)], dtype=np.int64)

    def reader_limit(self, n_readers: int) -> int | None:
        """Lists each of ``n_readers`` readers yields per epoch under DDP: the smallest
        reader's share (the rest of the larger shares is dropped that epoch, as
        ``DistributedSampler(drop_last=True)`` does); None for one process."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return int(min(self.group_lists[r::n_readers].sum() for r in range(n_readers)))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker, n_workers = shard()
        limit = self.reader_limit(n_workers)
        yielded = 0
        for lists in self.lists(range(worker, self.n_row_groups, n_workers)):
            items = ListDataset(lists)
            for i in range(len(items)):
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield items[i]

    def lists(self, row_groups: Iterable[int] | None = None) -> Iterator[ListData]:
        """The lists of each row group (all, in file order, unless ``row_groups``), padded
        to the stream's width: one row group in memory at a time."""
        pf = pq.ParquetFile(self.path)
        for g in range(self.n_row_groups) if row_groups is None else row_groups:
            rows = pf.read_row_group(g).to_pandas()
            yield build_lists(rows, self.group_col, self.pre, self.query_index,
                              self.product_index, self.tasks, f"{self.path} row group {g}",
                              list_size=self.list_size)


class ListTensorStream(IterableDataset):
    """Per-list tensors of a :class:`ParquetListStream`, shuffled by a row-group buffer.

    ``to_tensors`` maps one row group's :class:`ListData` to named ``[G, ...]`` tensors
    (e.g. :class:`ListDataset`'s batch of every list); each item is one list's slice, a
    dict of ``[L, ...]`` tensors, so a DataLoader's default collate stacks them into
    batches. One pass over the file per epoch: row groups in a random order, ``buffer``
    row groups read at a time and their lists shuffled together. Memory holds ``buffer``
    row groups. The order is drawn from torch's random generator (seeded by
    ``lightning.seed_everything`` like a shuffling DataLoader), so it differs every epoch
    and is reproducible. DataLoader workers and DDP ranks split the row groups, and yield
    equal shares, as :class:`ParquetListStream` does.
    """

    def __init__(self, stream: ParquetListStream,
                 to_tensors: Callable[[ListData], dict[str, torch.Tensor]],
                 buffer: int = 4) -> None:
        super().__init__()
        self.stream, self.to_tensors, self.buffer = stream, to_tensors, max(1, int(buffer))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker, n_workers = shard()
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        rng = np.random.default_rng(seed)
        groups = np.arange(worker, self.stream.n_row_groups, n_workers)
        groups = groups[rng.permutation(len(groups))].tolist()
        limit = self.stream.reader_limit(n_workers)  # DDP: equal shares, equal steps
        yielded = 0
        for start in range(0, len(groups), self.buffer):
            parts = [self.to_tensors(lists) for lists in
                     self.stream.lists(groups[start:start + self.buffer])]
            if not parts:
                continue
            tensors = {k: torch.cat([part[k] for part in parts]) for k in parts[0]}
            for i in rng.permutation(len(next(iter(tensors.values())))).tolist():
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield {k: t[i] for k, t in tensors.items()}
