"""``ltr benchmark --config configs/benchmark.yaml``: every ranker on the same split.

The data is prepared once (:func:`ltr.training.prepare.prepare`: same split, same
features, same labels, same seeds); each ranker of ``models`` is fitted on it, timed, saved
and scored. The table (markdown + CSV + a PNG bar chart) has, per ranker:

* ``ndcg@5``, ``ndcg@10`` on the test sessions against the derived relevance grades
  (absent with ``folds``: held-out queries have no derived labels, by design), and
  ``engagement_ndcg@5/10`` against graded engagement (1 click, 2 cart, 3 purchase);
* ``human_ndcg@5``, ``human_ndcg@10`` (exponential gain) and ``human_ndcg@10_linear`` on
  the judged pools of the queries no ranker trained on (held-out queries with ``folds``,
  judged queries absent from the log), when the data has human judgements;
* ``known_human_*``: the same on the judged pools of the queries the rankers trained on,
  with a ``labels (training)`` row: the training labels themselves on those pools;
* ``mrr@10_<task>`` and ``auc_<task>`` (group AUC) on the test sessions for click,
  add-to-cart, purchase;
* ``train_s``: fitting wall time; ``ms_per_100``: median wall time to score one list of
  100 candidates (20 repeats, after a warm-up).

Config keys: the schema :class:`BenchmarkRun` (``data``, ``models``, ``out``,
``save_models``; every key checked before any work, docs/configuration.md).

The whole output set (``models/``, ``results.csv``, ``results.md``, ``results.png``) is
built in a temporary folder beside ``out`` and renamed into place at the end
(:func:`ltr.io.atomic_dir`): a failed or killed run leaves the previous set as it was, and
an existing ``out`` that is not an earlier benchmark's is refused before any work.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field

from ltr.checks import FieldProblem
from ltr.config_schema import Bool, PathStr, Section, Str
from ltr.evaluation.engine import describe_missing, evaluate_lists
from ltr.io import atomic_dir, fault_point, write_table, write_text
from ltr.markdown import markdown_table
from ltr.rankers.base import make_ranker
from ltr.training.lists import ListData
from ltr.training.sections import check_data


def _some(models: list[Any]) -> list[Any]:
    if not models:
        raise FieldProblem(None, "list at least one ranker")
    return models


class ModelEntry(Section):
    """One ranker of ``models``."""

    name: Str = Field(description="a ranker kind (`ltr.rankers.base.RANKERS`)")
    label: Str | None = Field(None, description="its name in the table and in "
                              "`out/models` (default: `name`)")
    params: dict[Str, Any] | None = Field(None, description="its parameters (the ranker "
                                          "`params` sections below)")


class BenchmarkRun(Section):
    """The whole ``ltr benchmark`` config."""

    data: Annotated[dict[Str, Any] | None, AfterValidator(check_data)] = Field(
        None, description="the data module's arguments (the `data` section above)")
    models: Annotated[list[ModelEntry], AfterValidator(_some)] = Field(
        description="the rankers to fit and compare, `{name, label, params}` each")
    out: PathStr = Field("runs/benchmark", description="output folder: models/, "
                         "results.csv, results.md, results.png")
    save_models: Bool = Field(True, description="write each fitted ranker to `out/models`")


TOP_KEYS = set(BenchmarkRun.model_fields)
# what a benchmark writes in ``out``: a folder holding only these is an earlier one's
BENCHMARK_FILES = ("models", "results.csv", "results.md", "results.png")
TASK_LABELS = {"click": "click", "add_to_cart": "add_to_cart", "purchase": "purchase"}


def list_of(data: ListData, size: int = 100) -> ListData:
    """One list of ``size`` slots for latency: the first list at least that long, else the
    longest list's slots tiled."""
    lengths = data.mask.sum(axis=1)
    g = int(np.argmax(lengths >= size)) if (lengths >= size).any() else int(np.argmax(lengths))
    one = data.subset([g])
    if one.mask.shape[1] < size or lengths[g] < size:
        reps = int(np.ceil(size / max(int(lengths[g]), 1)))
        real = one.mask[0]

        def tile(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[:, real]] * reps, axis=1)[:, :size]

        one = ListData(keys=one.keys, numeric=tile(one.numeric), categorical=tile(one.categorical),
                       query_text=one.query_text, product_text=tile(one.product_text),
                       position=tile(one.position), mask=tile(one.mask),
                       product_id=tile(one.product_id),
                       labels={k: tile(v) for k, v in one.labels.items()})
    return one.subset([0], width=size)


def evaluate_scores(scores: np.ndarray, lists: ListData, prefix: str = "") -> dict[str, float]:
    """Every metric of ``scores`` on ``lists`` (:func:`ltr.evaluation.engine.evaluate_lists`)."""
    return evaluate_lists(scores, lists, prefix)


def human_scores(scores: np.ndarray, pools: ListData, prefix: str = "") -> dict[str, float]:
    """The judged-pool metrics of :func:`evaluate_lists` (``human_*``; and ``labels_*``
    on known-query pools), names with ``prefix``."""
    return {k: v for k, v in evaluate_lists(scores, pools, prefix).items()
            if "human_" in k}


def run_benchmark(config: dict[str, Any]) -> pd.DataFrame:
    """Fit, time, save and score every configured ranker; write the set to ``out`` whole
    or not at all; return the table."""
    from ltr.config_schema import validate

    run = validate(BenchmarkRun, config)  # every key, the data section included
    rankers = []
    for i, spec in enumerate(run.models):  # build every ranker first: bad configs fail early
        rankers.append((spec.label or spec.name,
                        make_ranker(spec.name, spec.params, f"models[{i}].name")))
    config = {**config, "out": run.out, "save_models": run.save_models}  # defaults filled
    out = Path(run.out)
    with atomic_dir(out, owner="benchmark", main_files=BENCHMARK_FILES) as tmp:
        table = _run(rankers, config, tmp)
    return table


def _run(rankers: list[tuple[str, Any]], config: dict[str, Any], out: Path) -> pd.DataFrame:
    """Fit, time, save and score ``rankers``; write the set into ``out`` (a temporary)."""
    from ltr.training.datamodule import LtrDataModule

    dm = LtrDataModule(**(config.get("data") or {}))
    data = dm.prepared
    rows = []
    for label, ranker in rankers:
        print(f"-- {label}: fitting", flush=True)
        t0 = time.perf_counter()
        ranker.fit(data)
        row: dict[str, Any] = {"model": label, "train_s": time.perf_counter() - t0}
        if config["save_models"]:
            ranker.save(out / "models" / label)
            fault_point("between-files", "benchmark")
        row.update(evaluate_scores(ranker.score(data.test, data), data.test))
        if data.pools is not None:
            row.update(human_scores(ranker.score(data.pools, data), data.pools))
        if data.known_pools is not None:
            known = human_scores(ranker.score(data.known_pools, data), data.known_pools,
                                 "known_")
            row.update({k: v for k, v in known.items() if not k.startswith("known_labels")})
            labels_row = {k.replace("known_labels_", "known_"): v for k, v in known.items()
                          if k.startswith("known_labels")}
        one = list_of(data.pools if data.pools is not None else data.test)
        ranker.score(one, data)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            ranker.score(one, data)
            times.append(time.perf_counter() - t)
        row["ms_per_100"] = 1000 * float(np.median(times))
        rows.append(row)
        print("   " + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "model"),
              flush=True)
    if data.known_pools is not None and "label" in data.known_pools.labels:
        rows.append({"model": "labels (training)", **labels_row})
    for line in describe_missing(rows[0] if rows else {}):
        print(f"note: {line}", flush=True)
    table = pd.DataFrame(rows)
    write_table(table, out / "results.csv")
    write_text(_markdown(table, config), out / "results.md")
    _plot(table, out / "results.png")
    return table


def _markdown(table: pd.DataFrame, config: dict[str, Any]) -> str:
    data = config.get("data") or {}
    notes = "".join(f"\nNote: {line}.\n" for line in
                    describe_missing(table.iloc[0].dropna().to_dict() if len(table) else {}))
    return ("# Ranker benchmark\n\n"
            f"data: `{data.get('data_dir')}`, folds={data.get('folds', 0)}, "
            f"fold={data.get('fold', 0)}; human_* columns: judged pools of the queries no "
            "ranker trained on, known_human_*: of the queries they trained on, against human "
            "grades; other columns: test sessions.\n" + notes + "\n"
            + markdown_table(table) + "\n")


def _plot(table: pd.DataFrame, path: Path) -> None:
    from ltr.plotting import new_figure, save_figure

    metric = next((m for m in ("human_ndcg@10_linear", "known_human_ndcg@10_linear",
                               "ndcg@10", "engagement_ndcg@10") if m in table), None)
    if metric is None:
        return
    table = table[table[metric].notna()]
    fig = new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    ax.bar(table["model"], table[metric], color="#4c72b0")
    for x, y in zip(table["model"], table[metric], strict=True):
        ax.annotate(f"{y:.3f}", (x, y), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("Rankers on the same split")
    save_figure(fig, path)
