"""Write an :class:`~ltr.evaluation.evaluate.Evaluation` as a report folder and a table.

Files (all written atomically):

* ``metrics.json``: inputs, settings, input-check counts, per model and metric the mean,
  the number of queries it is over and the excluded counts, the comparisons against the
  baseline, the NDCG@k curve;
* ``metrics.csv``: one row per (model, metric) with the same numbers;
* ``per_query.csv``: one row per evaluated query, one column per (model, metric); empty
  where the query is excluded from that metric;
* ``summary.md``: the side-by-side table with p-values, the counts and the plots;
* ``ndcg_at_k.png``, ``mrr_by_task.png``, ``label_distribution.png``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ltr import __version__
from ltr.evaluation.evaluate import Evaluation
from ltr.io import write_json, write_table, write_text

ALPHA = 0.05


def _f(x: float, digits: int = 4) -> str:
    return "nan" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def to_json(ev: Evaluation) -> dict:
    inputs = ev.inputs
    models = {}
    for model, res in ev.results.items():
        models[model] = {
            "source": inputs.sources[model],
            "queries_with_tied_scores": ev.tied_queries[model],
            "metrics": {
                key: {"mean": _finite(r.mean), "n_queries": r.n_included, "excluded": r.excluded}
                for key, r in res.items()
            },
        }
    comparisons = {
        model: {
            key: {k: (_finite(v) if isinstance(v, float) else v) for k, v in t.as_dict().items()}
            for key, t in tests.items()
        }
        for model, tests in ev.comparisons.items()
    }
    return {
        "ltr_version": __version__,
        "inputs": {
            "labels": inputs.labels_source,
            "predictions": inputs.sources,
            "group_column": inputs.group_col,
            "item_column": inputs.item_col,
            "label_columns": list(inputs.labels),
        },
        "settings": ev.settings,
        "input_checks": inputs.counts,
        "models": models,
        "comparisons": {"baseline": ev.baseline, "alpha": ALPHA, "models": comparisons},
        "ndcg_curve": {
            "label": ev.curve_label,
            "k": list(range(1, len(next(iter(ev.curve.values()))) + 1)),
            "models": {m: [_finite(v) for v in c] for m, c in ev.curve.items()},
        },
        "label_counts": {c: {f"{v:g}": n for v, n in d.items()} for c, d in ev.label_counts.items()},
    }


def to_frame(ev: Evaluation) -> pd.DataFrame:
    rows = []
    for model, res in ev.results.items():
        for key, r in res.items():
            t = ev.comparisons.get(model, {}).get(key)
            rows.append({
                "model": model,
                "metric": key,
                "mean": r.mean,
                "n_queries": r.n_included,
                "n_excluded": r.n_excluded,
                "delta_vs_baseline": t.delta if t else np.nan,
                "p_value": t.p_value if t else np.nan,
                "ci_low": t.ci_low if t else np.nan,
                "ci_high": t.ci_high if t else np.nan,
            })
    return pd.DataFrame(rows)


def per_query_frame(ev: Evaluation) -> pd.DataFrame:
    data: dict[str, np.ndarray] = {ev.inputs.group_col: ev.inputs.keys}
    for model, res in ev.results.items():
        for key, r in res.items():
            data[f"{model}:{key}"] = np.where(r.included, r.values, np.nan)
    return pd.DataFrame(data)


def _table_rows(ev: Evaluation) -> tuple[list[str], list[list[str]]]:
    base = ev.baseline
    others = [m for m in ev.models if m != base]
    header = ["metric", "queries", f"{base} (baseline)"]
    for m in others:
        header += [m, "delta", "p"]
    rows = []
    for key in ev.metric_keys:
        r = ev.results[base][key]
        row = [key, str(r.n_included), _f(r.mean)]
        for m in others:
            t = ev.comparisons[m][key]
            star = "*" if not math.isnan(t.p_value) and t.p_value < ALPHA else ""
            delta = "n/a" if math.isnan(t.delta) else f"{t.delta:+.4f}"
            row += [_f(ev.results[m][key].mean), delta, _p(t.p_value) + star]
        rows.append(row)
    return header, rows


def format_table(ev: Evaluation) -> str:
    """Plain-text side-by-side table: each model's mean, its delta to the baseline, p."""
    header, rows = _table_rows(ev)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def _footnotes(ev: Evaluation) -> list[str]:
    s, c = ev.settings, ev.inputs.counts
    test = (f"paired bootstrap over queries ({s['n_resamples']} resamples, seed {s['seed']})"
            if s["test"] == "bootstrap" else "paired t-test over queries")
    return [
        f"p: two-sided {test} against `{ev.baseline}`; * marks p < {ALPHA} (not corrected "
        "for multiple comparisons).",
        f"NDCG gain: {s['gain']}; discount 1/log2(rank+1); ties: {s['tie_rule']}.",
        f"Queries with no relevant item: {'excluded' if s['exclude_zero_ideal'] else 'included as 0'}"
        "; 'queries' is the number each metric is averaged over.",
        f"Input: {c['label_rows']} label rows in {c['label_queries']} queries; evaluated "
        f"{c['evaluated_queries']} queries ({c['evaluated_rows']} rows); excluded "
        f"{c['unscored_queries']} queries with no predictions and {c['single_item_queries']} "
        "single-item queries.",
    ]


def format_markdown(ev: Evaluation, plots: bool = True) -> str:
    header, rows = _table_rows(ev)
    lines = ["# Evaluation report", ""]
    lines += ["## Metrics", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    lines += [f"- {note}" for note in _footnotes(ev)]
    lines += ["", "## Exclusions per metric", "",
              "| metric | " + " | ".join(["empty", "zero_ideal", "single_class"]) + " |",
              "|---|---:|---:|---:|"]
    for key in ev.metric_keys:
        ex = ev.results[ev.baseline][key].excluded
        lines.append(f"| {key} | " + " | ".join(
            str(ex.get(r, "-")) for r in ("empty", "zero_ideal", "single_class")) + " |")
    lines += ["", "## Models", "", "| model | predictions | queries with tied scores |",
              "|---|---|---:|"]
    for m in ev.models:
        lines.append(f"| {m} | `{ev.inputs.sources[m]}` | {ev.tied_queries[m]} |")
    if not plots:
        return "\n".join(lines + [""])
    lines += ["", "## Plots", "",
              f"![NDCG@k on {ev.curve_label}](ndcg_at_k.png)", "",
              "![MRR per task](mrr_by_task.png)", "",
              "![Label distribution](label_distribution.png)", ""]
    return "\n".join(lines)


def write_report(ev: Evaluation, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Write the report folder; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        write_json(to_json(ev), out / "metrics.json"),
        write_table(to_frame(ev), out / "metrics.csv"),
        write_table(per_query_frame(ev), out / "per_query.csv"),
        write_text(format_markdown(ev, plots), out / "summary.md"),
    ]
    if plots:
        from ltr.evaluation.plots import write_plots

        paths += write_plots(ev, out)
    return paths
