"""Interrupted runs: a command SIGKILLed at a named point of writing its output set
(``LTR_KILL_AT``, :func:`ltr.io.fault_point`) leaves the previous set byte for byte as it
was (or nothing, when there was none), and the next run succeeds and leaves no
temporaries behind.

The work runs in a forked child (no second interpreter start-up), which the fault point
kills; the parent checks the folder and reruns the step normally.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.harness import Case, params
from tests.test_io import leftovers, snapshot


def _export(ctx: dict[str, Any], out: Path) -> None:
    from ltr.serving import export_package

    export_package(ctx["model"], out, overwrite=True, log=lambda *_: None)


def _benchmark(ctx: dict[str, Any], out: Path) -> None:
    from ltr.rankers.benchmark import run_benchmark

    run_benchmark({"data": ctx["data"], "models": [{"name": "bm25"}, {"name": "lexical"}],
                   "out": str(out)})


def _sweep(ctx: dict[str, Any], out: Path) -> None:
    from ltr.sweep.study import run_sweep

    run_sweep({"model": "bm25", "data": ctx["data"], "out": str(out),
               "space": {"k1": {"type": "float", "low": 0.5, "high": 2.0}},
               "study": {"n_trials": 1}}, data=ctx["prepared"])


WORK: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    # step -> (work, the folder it replaces, relative to out)
    "export": (_export, ""), "benchmark": (_benchmark, ""), "sweep": (_sweep, "export"),
}


def kill_case(id: str, step: str, point: str, previous: bool, what: str,
              no_exchange: bool = False) -> Case:
    def run(ctx: dict[str, Any], tmp: Path) -> None:
        work, sub = WORK[step]
        out = tmp / step
        target = out / sub if sub else out
        if previous:
            work(ctx, out)
        before = snapshot(target)
        env = {"LTR_KILL_AT": point, **({"LTR_NO_EXCHANGE": "1"} if no_exchange else {})}
        child = multiprocessing.get_context("fork").Process(
            target=_in_child, args=(work, ctx, out, env))
        child.start()
        child.join(timeout=240)
        if child.is_alive():
            child.kill()
            pytest.fail(f"{id}: the child did not finish")
        assert child.exitcode == -9, f"{id}: not killed at {point} (exit {child.exitcode})"
        after = snapshot(target)
        if previous and after != before:
            # only between the two renames of the no-swap path: the old set is aside,
            # whole, and the next run's clean-up puts it back
            assert no_exchange and after == {}, f"{id}: the previous set changed"
            from ltr.io import remove_stale

            remove_stale(target)
            assert snapshot(target) == before, f"{id}: the set moved aside was not whole"
        elif not previous:
            assert after == {}, f"{id}: a partial set appeared"
        work(ctx, out)  # the next run
        assert snapshot(target), f"{id}: the next run wrote nothing"
        assert leftovers(target) == [], f"{id}: stale temporaries {leftovers(target)}"
    names = (f"LTR_KILL_AT={point}",)
    return Case(id, "interruption", what, "error", names, run)


def _in_child(work: Callable[..., None], ctx: dict[str, Any], out: Path,
              env: dict[str, str]) -> None:
    os.environ.update(env)
    work(ctx, out)
    os._exit(0)  # not killed: the parent reports it


CASES = [
    kill_case("kill-export-before-rename", "export", "before-rename:export", True,
              "ltr export killed after writing and checking the new package, before it "
              "replaces the old one"),
    kill_case("kill-export-first-package", "export", "before-rename:export", False,
              "ltr export killed before its first package is in place"),
    kill_case("kill-export-old-aside", "export", "old-aside:export", True,
              "ltr export killed between moving the old package aside and renaming the "
              "new one in (no atomic swap)", no_exchange=True),
    kill_case("kill-benchmark-between-files", "benchmark", "between-files:benchmark", True,
              "ltr benchmark killed after saving its first model"),
    kill_case("kill-benchmark-before-rename", "benchmark", "before-rename:benchmark", True,
              "ltr benchmark killed with its whole set written, before the rename"),
    kill_case("kill-sweep-export-between-files", "sweep", "between-files:sweep", True,
              "ltr sweep killed between two files of its export (study.db kept)"),
]


@pytest.fixture(scope="module")
def ctx(packages: dict[str, Any], serving_data: Any) -> dict[str, Any]:
    dm, prepared = serving_data
    model = Path(packages["xgboost"][1]).parent / "models" / "xgboost"
    assert (model / "ranker.json").exists()
    data = {k: v for k, v in dm.hparams.items() if k in ("data_dir", "tasks", "features",
                                                           "text", "folds", "fold",
                                                           "hard_negatives", "pool_lists")}
    return {"model": model, "data": data, "prepared": prepared}


@pytest.mark.parametrize("case", params(CASES))
def test_interruption(case: Case, ctx: dict[str, Any], tmp_path: Path) -> None:
    case.run(ctx, tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)
