"""Every trained single-score ranker fits from training lists streamed from Parquet
(``data.stream_dir``): XGBoost through external memory, the neural rankers through an
IterableDataset over the row groups. Streamed and in-memory training see the same lists."""

from __future__ import annotations

import math
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ltr.metrics import ndcg
from ltr.rankers.base import capabilities, load_ranker, make_ranker
from ltr.rankers.neural import list_tensors
from ltr.training.prepare import prepare
from ltr.training.stream import ListTensorStream, ParquetListStream, write_list_rows
from tests.training.test_prepare import FEATURES, TASKS

LISTS_PER_GROUP = 50  # several row groups on the tiny log (prepare writes 512 per group)
XGB = {"n_estimators": 40, "max_depth": 4, "learning_rate": 0.1, "subsample": 1.0,
       "colsample_bytree": 1.0, "early_stopping_rounds": 15, "n_jobs": 1,
       "use_text": False}
NEURAL = {"dcnv2": {"arch": {"deep": [16], "n_cross": 1}},
          "ft_transformer": {"arch": {"input_embed_dim": 8, "num_heads": 2,
                                      "num_attn_blocks": 1, "attn_dropout": 0.0,
                                      "ff_dropout": 0.0, "add_norm_dropout": 0.0}}}


@pytest.fixture(scope="module")
def data(tiny_log_dir, tmp_path_factory) -> SimpleNamespace:
    """The tiny log prepared twice: training lists in memory, and streamed (the stream
    rewritten with small row groups, so that it has several)."""
    kwargs = {"hard_negatives": 2, "pool_lists": 1}
    mem = prepare(str(tiny_log_dir), TASKS, FEATURES, **kwargs)
    folder = tmp_path_factory.mktemp("stream")
    streamed = prepare(str(tiny_log_dir), TASKS, FEATURES, stream_dir=str(folder), **kwargs)
    s = streamed.train_stream
    write_list_rows(pq.read_table(s.path).to_pandas(), s.path, "session_id",
                    lists_per_group=LISTS_PER_GROUP, seed=1)
    streamed.train_stream = ParquetListStream(s.path, "session_id", s.pre, s.query_index,
                                              s.product_index, s.tasks, s.list_size)
    assert streamed.train is None and streamed.train_stream.n_row_groups >= 3
    return SimpleNamespace(mem=mem, streamed=streamed, folder=folder)


def _ndcg(scores: np.ndarray, lists) -> float:
    y = lists.labels["relevance"]
    valid = lists.mask & np.isfinite(y)
    return float(ndcg(np.nan_to_num(scores, nan=-np.inf), np.nan_to_num(y), valid, k=10).mean)


def test_capabilities_say_they_stream():
    for name in ("xgboost", "dcnv2", "tabnet", "ft_transformer", "mmoe", "ple",
                 "mmoe_tabular"):
        assert capabilities(name).streams, name


def test_tensor_stream_gives_every_list_once_per_epoch(data):
    """One epoch of ListTensorStream holds exactly the in-memory training tensors (matched
    by list key), in a new order each epoch."""
    mem, streamed = data.mem, data.streamed
    row = {k: i for i, k in enumerate(mem.train.keys.tolist())}  # list key -> in-memory row

    def to_tensors(lists):  # the module's batch tensors and each list's in-memory row
        return {**list_tensors(lists), "row": torch.tensor([row[k] for k in
                                                            lists.keys.tolist()])}

    torch.manual_seed(0)
    ds = ListTensorStream(streamed.train_stream, to_tensors, buffer=2)
    epoch1, epoch2 = list(ds), list(ds)
    order1 = [int(item["row"]) for item in epoch1]
    order2 = [int(item["row"]) for item in epoch2]
    assert sorted(order1) == sorted(order2) == list(range(len(mem.train)))
    assert order1 != order2
    want = list_tensors(mem.train)
    assert set(epoch1[0]) == {*want, "row"}
    for item in epoch1:
        i = int(item["row"])
        for key, value in want.items():
            if value.dtype.is_floating_point:
                np.testing.assert_allclose(item[key].numpy(), value[i].numpy(), rtol=1e-6)
            else:
                np.testing.assert_array_equal(item[key].numpy(), value[i].numpy())


def test_xgboost_streamed_matches_in_memory(data, tmp_path, monkeypatch):
    """External-memory training on the streamed lists gives the in-memory model.

    With ``subsample`` = ``colsample_bytree`` = 1 nothing random depends on the row order,
    so the only possible difference is the quantile sketch (merged over batches instead of
    built from one): a cut may move within a bin, which can flip a few splits but not the
    ranking. Hence score correlation > 0.99 and NDCG@10 within 0.01 (on this log the cuts
    are exact and the scores equal)."""
    from ltr.rankers import xgboost as xr

    batches = []
    real_next = xr.ListRowBatches.next

    def counting_next(self, input_data):
        more = real_next(self, input_data)
        batches.append(more)
        return more

    monkeypatch.setattr(xr.ListRowBatches, "next", counting_next)
    mem, streamed = data.mem, data.streamed
    in_memory = make_ranker("xgboost", XGB).fit(mem)
    assert not batches  # the in-memory path does not iterate
    ranker = make_ranker("xgboost", XGB).fit(streamed)
    assert sum(batches) >= streamed.train_stream.n_row_groups  # one batch per row group
    assert not [p for p in data.folder.iterdir() if p.name.startswith(".xgboost-cache")]
    test = mem.test
    a, b = in_memory.score(test, mem), ranker.score(test, mem)
    m = test.mask
    assert np.isfinite(b[m]).all()
    assert np.corrcoef(a[m], b[m])[0, 1] > 0.99
    assert abs(_ndcg(a, test) - _ndcg(b, test)) < 0.01
    assert ranker.best_score_ == pytest.approx(in_memory.best_score_, abs=0.01)
    back = load_ranker(ranker.save(tmp_path / "xgb"))
    np.testing.assert_array_equal(back.score(test, mem), b)


class _Steps(pl.Callback):
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.steps, self.epochs = trainer.global_step, trainer.current_epoch


@pytest.mark.parametrize("name", list(NEURAL))
def test_neural_ranker_trains_from_stream(name, data, tmp_path):
    mem, streamed = data.mem, data.streamed
    batch_size, epochs = 32, 2
    ranker = make_ranker(name, {"max_epochs": epochs, "patience": 5, "batch_size": batch_size,
                                "use_text": False, "lr": 5e-3, **NEURAL[name]})
    steps = _Steps()
    ranker.callbacks = [steps]
    ranker.fit(streamed)
    # one pass over every streamed list per epoch
    assert steps.steps == epochs * math.ceil(len(mem.train) / batch_size)
    assert math.isfinite(ranker.best_score_) and 0.0 < ranker.best_score_ <= 1.0
    scores = ranker.score(mem.test, mem)
    assert np.isfinite(scores[mem.test.mask]).all()
    back = load_ranker(ranker.save(tmp_path / name))
    np.testing.assert_array_equal(back.score(mem.test, mem), scores)


def test_validation_ndcg_pools_sums_over_processes(monkeypatch):
    """Validation NDCG@10 of the single-score rankers (``LtrModule`` with a single-score
    backbone): sums and counts added over processes, then divided — not the mean of each
    process's mean."""
    from ltr.training.module import LtrModule

    module = LtrModule(backbone="dcnv2", use_text=False,
                       feature_dims={"n_numeric": 1, "cardinalities": []})
    # score = the numeric feature
    monkeypatch.setattr(module.scorer, "forward", lambda numeric, categorical: numeric[:, 0])
    other = torch.tensor([[9.0, 10.0]], dtype=torch.float64)  # another process: 10 lists

    class Strategy:
        def reduce(self, tensor, reduce_op="mean"):
            assert reduce_op == "sum"
            return tensor + other.to(tensor.dtype)

    module._trainer = SimpleNamespace(strategy=Strategy(), world_size=2, sanity_checking=False)
    logged = {}
    monkeypatch.setattr(module, "log", lambda name, value, **kw: logged.update({name: value}))
    # this process: 1 list, the better item scored lower: NDCG@10 = (1/log2(3)) / 1
    batch = {"numeric": torch.tensor([[[0.0], [1.0]]]),
             "categorical": torch.zeros((1, 2, 0), dtype=torch.int64),
             "mask": torch.tensor([[True, True]]), "tie_key": torch.tensor([[1, 2]]),
             "y_relevance": torch.tensor([[1.0, 0.0]])}
    module.on_validation_epoch_start()
    module.validation_step(batch, 0)
    module.on_validation_epoch_end()
    own = 1 / np.log2(3)
    assert logged["val/ndcg@10"] == pytest.approx((own + 9.0) / 11)  # not (own + .9) / 2


def test_multi_task_metrics_pool_sums_over_processes(monkeypatch):
    """The MMoE's per-task metrics (``LtrModule._flush``): sums and counts pooled over
    processes before dividing, as the single-score rankers do."""
    from ltr.training.module import LtrModule

    module = LtrModule(tasks=["click"], use_text=False,
                       feature_dims={"n_numeric": 2, "cardinalities": []})

    class Strategy:
        def reduce(self, tensor, reduce_op="mean"):
            assert reduce_op == "sum"
            return tensor + torch.tensor([[9.0, 10.0]], dtype=tensor.dtype)

    module._trainer = SimpleNamespace(strategy=Strategy(), world_size=2)
    logged = {}
    monkeypatch.setattr(module, "log", lambda name, value, **kw: logged.update({name: value}))
    module._sums = {"val/mrr@10_click": [0.5, 1.0]}
    module._flush()
    assert logged["val/mrr@10_click"] == pytest.approx(9.5 / 11)
