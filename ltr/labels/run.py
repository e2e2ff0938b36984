"""One labelling run from a config mapping: load, label, diagnose, write (``ltr label``).

``engine`` picks where the log is checked and aggregated: ``pandas`` loads it whole
(:func:`ltr.data.load_log`); ``duckdb`` and ``spark`` check it and reduce it to
(query, product, position) cells in SQL (:mod:`ltr.scale`), memory bounded by
``memory_limit``; ``auto`` (the default) is ``duckdb`` when it is installed, else
``pandas``. A training window (``window:``) is cut the same way on every engine
(:func:`ltr.scale.labels.window_view` on the SQL engines). The label rule after the aggregates is the same code
for every engine, so the labels are the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltr.data.loaders import (
    SearchLog,
    load_log,
)
from ltr.io import check_output_dir
from ltr.labels.artifact import artifact_fields, describe, window_fingerprint
from ltr.labels.cli import ENGINES
from ltr.labels.config import LabelConfig
from ltr.labels.diagnostics import agreement, disagreement_stats, disagreements
from ltr.labels.pipeline import VARIANTS, derive_labels
from ltr.labels.report import LABEL_FILES, write_label_run
from ltr.labels.similarity import pair_coverage, pair_similarity
from ltr.progress import step

if TYPE_CHECKING:
    from ltr.scale import LogScan

ENGINE_CHOICES = ENGINES  # the `engine` key (ltr.labels.cli.LabelRun)


def label_run(raw: dict[str, Any]) -> str:
    """Run the pipeline described by ``raw`` (see :mod:`ltr.labels.cli`); return a summary.
    The output set appears in ``raw["out"]`` whole or not at all
    (:func:`ltr.labels.report.write_label_run`)."""
    from ltr import __version__
    from ltr.config_schema import validate
    from ltr.labels.cli import LabelRun
    from ltr.text import TextConfig, TextEncoder

    t0 = time.perf_counter()
    validate(LabelRun, raw)  # every key, before any work
    check_output_dir(raw["out"], "label", LABEL_FILES)  # an unrelated folder: before any work
    config = LabelConfig.from_dict(dict(raw.get("labels") or {}))
    text_cfg = TextConfig.from_mapping(raw.get("text"))
    engine = resolve_engine(raw.get("engine"))
    if engine == "pandas":
        log = load_log(raw["data"])
    else:
        log, scan = scan_run_log(raw, engine)
    text_cfg, absent = text_cfg.with_available_fields(log.products.columns)
    encoder = TextEncoder.from_config(text_cfg)

    def similarity(queries: np.ndarray, product_ids: np.ndarray) -> np.ndarray:
        return pair_similarity(encoder, log.products, queries, product_ids,
                               text_cfg.product_fields, text_cfg.product_separator)

    def lexical(queries: np.ndarray, product_ids: np.ndarray) -> np.ndarray:
        return pair_coverage(log.products, queries, product_ids, text_cfg.product_fields)

    judged = log.judgements
    source = log.sources.get("impressions", "impressions")
    if engine == "pandas":
        impressions, window = labelled_window(log, raw.get("window"), source)
        n_impressions, fingerprint = len(impressions), window_fingerprint(impressions)
    else:  # the aggregates stand in for the log: derive_labels only aggregates it
        impressions, window = scan.aggregates, window_settings(raw.get("window"))
        n_impressions, fingerprint = scan.n_impressions, scan.fingerprint
    extra = None
    if judged is not None and raw.get("label_judged_pool", True):
        queries = None if not window else set(
            (scan.aggregates.pairs if engine != "pandas" else impressions)["query"].astype(str))
        extra = judged[["query", "product_id"]]
        if queries is not None:  # a training window: the judged pools of its queries
            extra = extra[extra["query"].astype(str).isin(queries)]
    with step(f"labelled {n_impressions:,} impressions ({engine})"):
        result = derive_labels(impressions, config, similarity, extra, "combined", source,
                               lexical=lexical)
    t_label = time.perf_counter() - t0

    agreement_table = confusion = None
    if judged is not None:
        rows = []
        for variant in VARIANTS:
            res = result if variant == "combined" else \
                derive_labels(impressions, config, similarity, extra, variant, source,
                              lexical=lexical)
            a = agreement(res.labels, judged)
            if variant == "combined":
                confusion = a.pop("confusion")
            else:
                a.pop("confusion", None)
            rows.append({"labels": variant, **a})
        agreement_table = pd.DataFrame(rows)

    threshold = float(raw.get("disagreement_threshold", 0.5))
    dis = disagreements(result.labels, log.products, threshold, config.min_evidence,
                        config.normalise)
    stats = disagreement_stats(dis, result.labels[result.labels["expected_exams"] >=
                                                  config.min_evidence])
    truth = None
    gt = raw.get("ground_truth")
    if gt and (Path(gt) / "examination.csv").exists():
        truth = pd.read_csv(Path(gt) / "examination.csv")["examination"].to_numpy(float)
        truth = truth / truth[0]
    run_config = {"ltr_version": __version__, "created": pd.Timestamp.now(tz="UTC").isoformat(),
                  **{k: v for k, v in raw.items() if k not in ("labels", "text", "window")},
                  "sources": log.sources, "labels": config.to_dict(), "text": text_cfg.section_dict(),
                  "engine": engine,
                  **artifact_fields(result, fingerprint, window, n_impressions)}
    paths = write_label_run(result, raw["out"], run_config=run_config,
                            agreement=agreement_table, confusion=confusion, disagreements=dis,
                            disagreement_stats=stats, true_examination=truth)
    lines = [f"labelled {len(result.labels):,} pairs over {result.labels['query'].nunique()} "
             f"queries of {describe(window)} in {t_label:.1f}s -> {paths['labels']}",
             f"grades: {result.labels['grade'].value_counts().sort_index().to_dict()}",
             f"position bias: {result.position_bias.note}"]
    if absent:
        lines.append(f"note: text.product_fields {absent} are not catalog columns: the "
                     "product text is the title and the other fields")
    curve = result.position_bias.examination
    if truth is not None:
        n = min(10, len(truth), len(curve))
        rel = np.abs(curve[:n] / truth[:n] - 1.0)
        pairs = ", ".join(f"{c:.3f}/{t:.3f}" for c, t in zip(curve[:n], truth[:n], strict=True))
        lines.append(f"examination vs truth (estimated/true), positions 1..{n}: max relative "
                     f"error {100 * np.nanmax(rel):.1f}% ({pairs})")
    lines += [f"note: {n}" for n in result.notes]
    if agreement_table is not None:
        lines.append("agreement with human grades:")
        lines.append(agreement_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    lines.append(f"{len(dis):,} click/text disagreements -> {paths['disagreements']}")
    lines.append(f"report: {paths['report_md']}")
    return "\n".join(lines)


def resolve_engine(engine: str | None) -> str:
    """The engine of a run (module docstring)."""
    name = str(engine or "auto")  # one of ENGINE_CHOICES (ltr.labels.cli.LabelRun)
    if name == "auto":
        try:
            import duckdb  # noqa: F401
        except ImportError:
            return "pandas"
        return "duckdb"
    return name


def scan_run_log(raw: dict[str, Any], engine: str) -> tuple[SearchLog, LogScan]:
    """The small tables loaded and checked in pandas, the impression log checked and
    aggregated on ``engine`` (:func:`ltr.scale.scan_log`)."""
    from ltr.scale import open_engine, scan_log
    from ltr.scale.tables import log_tables

    with open_engine(engine, raw.get("memory_limit"), raw.get("spark")) as eng:
        log, impressions = log_tables(eng, str(raw["data"]))
        judged = log.judgements
        scan = scan_log(eng, impressions, log.products, log.customers,
                        window=window_settings(raw.get("window")),
                        judged_queries=None if judged is None
                        else set(judged["query"].astype(str)))
    return log, scan


def window_settings(window: dict[str, Any] | None) -> dict[str, Any]:
    """``window: {split, folds, fold, seed}`` checked and described as a label artifact
    records it (:func:`ltr.features.split.window_description`); ``{}``: the whole log."""
    from ltr.config_schema import validate
    from ltr.features.split import window_description
    from ltr.labels.cli import Window

    if not window:
        return {}
    validate(Window, dict(window), "window")
    return window_description(window.get("split"), int(window.get("folds") or 0),
                              int(window.get("fold") or 0), int(window.get("seed") or 0))


def labelled_window(log, window: dict[str, Any] | None, source: str
                    ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The impressions to label and the window description: the whole log, or with
    ``window: {split, folds, fold, seed}`` exactly the training window ``ltr fit`` with the
    same data settings labels (:func:`ltr.features.split.training_window`)."""
    from ltr.features.split import training_window

    described = window_settings(window)
    if not described:
        return log.impressions, {}
    folds, fold, seed = (int(described.get(k) or 0) for k in ("folds", "fold", "seed"))
    judged = set(log.judgements["query"].astype(str)) if log.judgements is not None else None
    imp = log.impressions.assign(query=log.impressions["query"].astype(str))
    _, train, _ = training_window(imp, judged, described["split"], folds, fold, seed, source)
    return imp[train], described
