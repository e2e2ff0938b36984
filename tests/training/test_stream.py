"""Streaming training lists from Parquet gives the lists the in-memory path gives."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import torch

from ltr.training.prepare import prepare
from tests.training.test_prepare import FEATURES, TASKS


def test_stream_matches_in_memory_lists(tiny_log_dir, tmp_path):
    mem = prepare(str(tiny_log_dir), TASKS, FEATURES, hard_negatives=2, pool_lists=1)
    streamed = prepare(str(tiny_log_dir), TASKS, FEATURES, hard_negatives=2, pool_lists=1,
                       stream_dir=str(tmp_path))
    assert streamed.train is None
    path = tmp_path / "train.parquet"
    assert pq.ParquetFile(path).num_row_groups >= 1
    items = list(iter(streamed.train_stream))
    assert len(items) == len(mem.train)
    width = mem.train.list_size
    # every streamed list equals its in-memory twin (same features, labels, mask),
    # matched by (query, products shown)
    keys_in_stream = []
    for item in items:
        q = int(item["query_text"])
        mask = item["mask"].numpy()
        assert item["numeric"].shape[0] == width
        keys_in_stream.append((q, tuple(item["product_text"].numpy()[mask].tolist())))
    keys_in_memory = [(int(q), tuple(p[m].tolist())) for q, p, m in
                      zip(mem.train.query_text, mem.train.product_text, mem.train.mask,
                          strict=True)]
    assert sorted(keys_in_stream) == sorted(keys_in_memory)
    by_key = {k: j for j, k in enumerate(keys_in_memory)}
    for item, key in zip(items, keys_in_stream, strict=True):
        j = by_key[key]
        m = item["mask"].numpy()
        np.testing.assert_allclose(item["numeric"].numpy()[m], mem.train.numeric[j][m])
        for t in TASKS:
            np.testing.assert_array_equal(item[f"y_{t}"].numpy()[m], mem.train.labels[t][j][m])
    loader = torch.utils.data.DataLoader(streamed.train_stream, batch_size=16)
    assert next(iter(loader))["numeric"].shape[:2] == (16, width)


def test_shard_spans_workers_and_ddp_ranks(monkeypatch):
    """Row groups are dealt over DataLoader workers x DDP ranks: every reader a distinct
    index, so each row group is read once per epoch over all processes."""
    import torch.distributed as dist

    from ltr.training import stream

    assert stream.shard() == (0, 1)  # one process, no workers
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    seen = set()
    for rank in range(3):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        for worker in range(2):
            info = type("Info", (), {"id": worker, "num_workers": 2})()
            monkeypatch.setattr(stream, "get_worker_info", lambda info=info: info)
            index, count = stream.shard()
            assert count == 6
            seen.add(index)
    assert seen == set(range(6))


def test_ddp_ranks_yield_equal_list_counts(tiny_log_dir, tmp_path, monkeypatch):
    """Under DDP every rank yields as many lists as the smallest share, so no rank waits
    in a gradient all-reduce that another never reaches (a real 2-process run hung on
    12 row groups of unequal size before)."""
    import torch.distributed as dist

    from ltr.training.stream import write_list_rows

    streamed = prepare(str(tiny_log_dir), TASKS, FEATURES, hard_negatives=2, pool_lists=1,
                       stream_dir=str(tmp_path))
    stream = streamed.train_stream
    rows = pq.read_table(stream.path).to_pandas()
    write_list_rows(rows, stream.path, stream.group_col, lists_per_group=70)  # uneven
    stream.__init__(stream.path, stream.group_col, stream.pre, stream.query_index,
                    stream.product_index, stream.tasks, stream.list_size)
    total = int(stream.group_lists.sum())
    assert stream.reader_limit(2) is None  # one process: every list
    assert len(list(iter(stream))) == total
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    counts = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        counts.append(len(list(iter(stream))))
    shares = [int(stream.group_lists[r::2].sum()) for r in (0, 1)]
    assert counts[0] == counts[1] == min(shares) and shares[0] != shares[1]
    # the single-score rankers' tensor stream keeps the same rule
    from ltr.training.lists import ListDataset
    from ltr.training.stream import ListTensorStream

    tensors = ListTensorStream(stream, lambda lists: ListDataset(lists).batch(slice(None)))
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        per_rank.append(len(list(iter(tensors))))
    assert per_rank == [min(shares)] * 2


def test_chunked_writes_equal_one_write(tmp_path):
    """ListWriter (what prepare writes streamed lists with, a chunk of whole lists at a
    time) gives the same file whatever the chunk size; a column that is all missing in
    the first chunk takes its type from ``types``."""
    import pandas as pd
    import pyarrow as pa

    from ltr.training.stream import ListWriter, list_ranks

    rows = pd.DataFrame({"session_id": np.repeat(np.arange(50), 3),
                         "position": np.tile([1, 2, 3], 50)})
    rows["extra"] = np.where(rows["session_id"] % 7 == 6, "x", None).astype(object)
    rank = rows["session_id"].map(list_ranks(rows["session_id"].unique(), 3)).to_numpy()
    rows = rows.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    group = np.sort(rank) // 4
    paths = []
    for per_chunk in (1, 100):  # row groups per write
        path = tmp_path / f"{per_chunk}.parquet"
        with ListWriter(path, {"extra": pa.string()}) as writer:
            for first in range(0, group.max() + 1, per_chunk):
                at = (group >= first) & (group < first + per_chunk)
                part = rows[at].reset_index(drop=True)
                assert set(part["session_id"].value_counts()) == {3}  # lists whole
                writer.write(part, group[at])
        paths.append(path)
    ta, tb = pq.read_table(paths[0]), pq.read_table(paths[1])
    assert ta.equals(tb)
    assert pq.ParquetFile(paths[0]).num_row_groups == 13
    assert ta.schema.field("extra").type == pa.string()
