"""No silent no-ops: a run that trains nothing (no optimiser step, no completed trial,
no training window) is an error, never saved or scored as a result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.harness import Case, expect_outcome, params


def noop_case(id: str, what: str, call: Callable[[dict[str, Any]], Any],
              names: tuple[str, ...], expect: str = "untrained") -> Case:
    def run(ctx: dict[str, Any]) -> None:
        expect_outcome(case, lambda: call(ctx))
    case = Case(id, "training", what, expect, names, run)
    return case


def _empty_loader_fit(ctx: dict[str, Any]) -> Any:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from ltr.training.trainer import fit_best

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, i: int) -> Any:
            return self.w(batch[0]).sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    empty = DataLoader(TensorDataset(torch.zeros(0, 2)), batch_size=4)
    return fit_best(Tiny(), train_dataloaders=empty, max_epochs=2, root=str(ctx["tmp"]))


def _sweep_without_time(ctx: dict[str, Any]) -> Any:
    from ltr.sweep.study import require_completed, run_sweep

    require_completed(run_sweep({"model": "bm25", "data": {}, "out": str(ctx["tmp"] / "s"),
                                 "space": {"k1": {"type": "float", "low": 0.5, "high": 2.0}},
                                 "study": {"n_trials": 2, "timeout": 1e-9}},
                                data=ctx["prepared"]))


def _sweep_all_fail(ctx: dict[str, Any]) -> Any:
    from ltr.rankers.base import ranker_class
    from ltr.sweep.study import require_completed, run_sweep

    def broken_fit(self: Any, data: Any) -> Any:
        raise RuntimeError("the fit failed (injected)")

    ctx["monkeypatch"].setattr(ranker_class("bm25"), "fit", broken_fit)
    require_completed(run_sweep({"model": "bm25", "data": {}, "out": str(ctx["tmp"] / "s"),
                                 "space": {"k1": {"type": "float", "low": 0.5, "high": 2.0}},
                                 "study": {"n_trials": 2}}, data=ctx["prepared"]))


def _empty_window(ctx: dict[str, Any]) -> Any:
    from ltr.training.datamodule import LtrDataModule

    return LtrDataModule(data_dir=str(ctx["log"]), split={"history_days": 7, "valid_days": 10,
                                                          "test_days": 11}).prepared


CASES = [
    noop_case("noop-fit-empty-loader", "a neural fit whose training lists give no batch",
              _empty_loader_fit, ("no training step",)),
    noop_case("noop-sweep-no-time", "a sweep whose timeout ends before its first trial",
              _sweep_without_time, ("no completed trial",)),
    noop_case("noop-sweep-every-trial-fails", "a sweep whose every trial fails",
              _sweep_all_fail, ("no completed trial", "FAIL")),
    noop_case("noop-empty-training-window", "a split that leaves no training days",
              _empty_window, ("data.split",), expect="error"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_noop(case: Case, serving_data: Any, tiny_log_dir: Path, tmp_path: Path,
              monkeypatch: Any) -> None:
    case.run({"prepared": serving_data[1], "log": tiny_log_dir, "tmp": tmp_path,
              "monkeypatch": monkeypatch})
