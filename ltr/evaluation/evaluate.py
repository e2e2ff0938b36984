"""Compute every metric for every model and label, and compare models to a baseline.

Metric keys are ``"<label column>/<metric>"``, e.g. ``"grade/ndcg@10"`` or
``"clicked/mrr@10"``. Defaults, per label column: graded columns (any value other than 0
and 1) get ``ndcg@1, ndcg@5, ndcg@10, ndcg@20, err@10``; binary columns get
``mrr@10, map@10, recall@10, ndcg@10, auc``. ERR's ``gmax`` defaults to the largest value
of its label column over the evaluated rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltr.errors import ConfigError
from ltr.evaluation.inputs import EvalInputs
from ltr.evaluation.significance import TESTS, PairedTest, paired_test
from ltr.metrics import MetricResult, compute_metrics, parse_metric, rank_lists

GRADED_DEFAULT = ("ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "err@10")
BINARY_DEFAULT = ("mrr@10", "map@10", "recall@10", "ndcg@10", "auc")
CURVE_MAX_K = 20
TIE_RULE = (
    "descending score; ties broken by the tie key, the CRC-32 of the product id's text "
    "(ltr.metrics.ties: the rule of every evaluation in the library)"
)


@dataclass
class Evaluation:
    """All results of one ``ltr evaluate`` run.

    Attributes:
        metric_keys: ``"label/metric"`` keys in display order.
        results: model -> key -> per-query :class:`~ltr.metrics.MetricResult`.
        comparisons: model (not the baseline) -> key -> paired test against the baseline.
        curve: model -> NDCG@k for k = 1..``len(curve)`` on ``curve_label``.
        tied_queries: model -> number of queries with at least two equal scores.
        label_counts: label column -> {label value: number of evaluated rows}.
    """

    inputs: EvalInputs
    metric_keys: list[str]
    results: dict[str, dict[str, MetricResult]]
    comparisons: dict[str, dict[str, PairedTest]]
    baseline: str
    curve_label: str
    curve: dict[str, list[float]]
    tied_queries: dict[str, int]
    label_counts: dict[str, dict[float, int]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.results)


def is_binary(labels: np.ndarray, mask: np.ndarray) -> bool:
    values = labels[mask]
    return bool(np.isin(values, (0.0, 1.0)).all())


def resolve_metrics(
    inputs: EvalInputs, specs: Sequence[str] | None
) -> dict[str, list[str]]:
    """Label column -> metric specs. ``specs`` items are ``"metric"`` (every label column)
    or ``"label:metric"`` (that column only); ``None`` or empty gives the defaults."""
    out: dict[str, list[str]] = {}
    if not specs:
        for col, y in inputs.labels.items():
            out[col] = list(BINARY_DEFAULT if is_binary(y, inputs.mask) else GRADED_DEFAULT)
        return out
    for spec in specs:
        col, sep, metric = spec.rpartition(":")
        cols = [col] if sep else list(inputs.labels)
        if sep and col not in inputs.labels:
            raise ConfigError(
                "metrics", f"'{spec}': no label column '{col}' (have {', '.join(inputs.labels)})"
            )
        name, k = parse_metric(metric)
        key = name if k is None else f"{name}@{k}"
        for c in cols:
            if key not in out.setdefault(c, []):
                out[c].append(key)
    return out


def evaluate(
    inputs: EvalInputs,
    *,
    metrics: Sequence[str] | None = None,
    gain: str = "exponential",
    exclude_zero_ideal: bool = True,
    baseline: str | None = None,
    test: str = "bootstrap",
    n_resamples: int = 2000,
    seed: int = 0,
    err_gmax: float | None = None,
    curve_label: str | None = None,
    curve_max_k: int = CURVE_MAX_K,
) -> Evaluation:
    """Score every model on every label column and test each model against ``baseline``.

    Args:
        metrics: metric specs (see :func:`resolve_metrics`); default per label type.
        gain: NDCG gain, ``"exponential"`` (``2^rel - 1``) or ``"linear"`` (``rel``).
        exclude_zero_ideal: exclude (and count) queries with no relevant item.
        baseline: model the others are compared to; default the first model.
        test: ``"bootstrap"`` (paired bootstrap) or ``"ttest"`` (paired t-test).
        err_gmax: ERR's largest grade; default the largest value of each label column.
        curve_label: label column for the NDCG@1..``curve_max_k`` curve; default the first
            graded column, else the first column.
    """
    models = inputs.models
    if baseline is None:
        baseline = models[0]
    if baseline not in models:
        raise ConfigError("baseline", f"no model '{baseline}' (have {', '.join(models)})")
    if test not in TESTS:
        raise ConfigError("test", f"must be one of {', '.join(TESTS)}, got '{test}'")
    if gain not in ("exponential", "linear"):
        raise ConfigError("gain", f"must be 'exponential' or 'linear', got '{gain}'")
    per_label = resolve_metrics(inputs, metrics)
    if curve_label is None:
        graded = [c for c, y in inputs.labels.items() if not is_binary(y, inputs.mask)]
        curve_label = graded[0] if graded else next(iter(inputs.labels))
    if curve_label not in inputs.labels:
        raise ConfigError("curve_label", f"no label column '{curve_label}'")
    curve_specs = [f"ndcg@{k}" for k in range(1, curve_max_k + 1)]

    gmax = {
        col: float(err_gmax) if err_gmax is not None else float(y[inputs.mask].max())
        for col, y in inputs.labels.items()
    }
    keys = [f"{col}/{spec}" for col, specs in per_label.items() for spec in specs]
    results: dict[str, dict[str, MetricResult]] = {}
    curve: dict[str, list[float]] = {}
    tied: dict[str, int] = {}
    for model, scores in inputs.scores.items():
        results[model] = {}
        for col, y in inputs.labels.items():
            ranked = rank_lists(scores, y, inputs.mask)
            wanted = list(per_label.get(col, []))
            if col == curve_label:
                wanted += [s for s in curve_specs if s not in wanted]
            if not wanted:
                continue
            res = compute_metrics(
                ranked, spec=wanted, gain=gain, exclude_zero_ideal=exclude_zero_ideal,
                gmax=gmax[col],
            )
            for spec in per_label.get(col, []):
                results[model][f"{col}/{spec}"] = res[spec]
            if col == curve_label:
                curve[model] = [res[s].mean for s in curve_specs]
            if model not in tied:
                s = ranked.scores
                tied[model] = int((s[:, 1:] == s[:, :-1]).any(axis=1).sum())

    comparisons: dict[str, dict[str, PairedTest]] = {}
    for model in models:
        if model == baseline:
            continue
        comparisons[model] = {}
        for key in keys:
            a, b = results[model][key], results[baseline][key]
            if not np.array_equal(a.included, b.included):  # depends on labels only
                raise AssertionError(f"{key}: included queries differ between models")
            inc = b.included
            comparisons[model][key] = paired_test(
                a.values[inc], b.values[inc], test, n_resamples=n_resamples, seed=seed
            )

    label_counts = {}
    for col, y in inputs.labels.items():
        values, counts = np.unique(y[inputs.mask], return_counts=True)
        label_counts[col] = {float(v): int(c) for v, c in zip(values, counts, strict=True)}

    settings = {
        "gain": gain,
        "discount": "log2(rank + 1)",
        "exclude_zero_ideal": exclude_zero_ideal,
        "tie_rule": TIE_RULE,
        "binary_relevance": "label > 0",
        "ap_denominator": "min(k, R)",
        "err_gmax": gmax,
        "test": test,
        "n_resamples": n_resamples if test == "bootstrap" else None,
        "seed": seed if test == "bootstrap" else None,
        "baseline": baseline,
        "curve_label": curve_label,
    }
    return Evaluation(
        inputs=inputs, metric_keys=keys, results=results, comparisons=comparisons,
        baseline=baseline, curve_label=curve_label, curve=curve, tied_queries=tied,
        label_counts=label_counts, settings=settings,
    )
