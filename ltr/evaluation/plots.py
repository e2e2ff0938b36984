"""PNG plots of an evaluation, drawn through :mod:`ltr.plotting` (Agg canvas, atomic
writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ltr.evaluation.evaluate import Evaluation
from ltr.plotting import new_figure, save_figure


def plot_ndcg_curve(ev: Evaluation, path: Path) -> Path:
    """NDCG@k for k = 1..20, one line per model."""
    fig = new_figure()
    ax = fig.add_subplot()
    for model, values in ev.curve.items():
        ks = np.arange(1, len(values) + 1)
        ax.plot(ks, values, marker="o", markersize=3, label=model)
    ax.set_xlabel("k")
    ax.set_ylabel(f"NDCG@k ({ev.settings['gain']} gain)")
    ax.set_title(f"NDCG@k on '{ev.curve_label}'")
    ax.set_xticks(np.arange(1, len(next(iter(ev.curve.values()))) + 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_mrr_by_task(ev: Evaluation, path: Path) -> Path:
    """Grouped bars: one group per label column with an MRR metric, one bar per model."""
    keys = [k for k in ev.metric_keys if k.split("/", 1)[1].startswith("mrr")]
    fig = new_figure()
    ax = fig.add_subplot()
    if not keys:
        ax.text(0.5, 0.5, "no MRR metric evaluated", ha="center", va="center")
        ax.set_axis_off()
        return save_figure(fig, path)
    models = ev.models
    width = 0.8 / len(models)
    x = np.arange(len(keys))
    for i, model in enumerate(models):
        heights = [ev.results[model][k].mean for k in keys]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, heights, width, label=model)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    for xi, key in zip(x, keys, strict=True):
        if all(np.isnan(ev.results[m][key].mean) for m in models):
            ax.text(xi, 0.01, "no query with\na positive", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.set_xticks(x)
    ax.set_xticklabels(keys, fontsize=8)
    ax.set_ylabel("MRR")
    ax.set_title("MRR per task")
    ax.legend()
    return save_figure(fig, path)


def plot_label_distribution(ev: Evaluation, path: Path) -> Path:
    """One bar chart per label column: evaluated rows per label value."""
    cols = list(ev.label_counts)
    fig = new_figure(width=max(4.0, 3.2 * len(cols)), height=3.6)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    for ax, col in zip(axes, cols, strict=True):
        counts = ev.label_counts[col]
        names = [f"{v:g}" for v in counts]
        bars = ax.bar(names, list(counts.values()), color="tab:gray")
        ax.bar_label(bars, fontsize=7)
        ax.set_title(col)
        ax.set_xlabel("label")
    axes[0].set_ylabel("rows")
    fig.suptitle(f"Label distribution ({ev.inputs.counts['evaluated_rows']} evaluated rows)")
    return save_figure(fig, path)


def write_plots(ev: Evaluation, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [
        plot_ndcg_curve(ev, out_dir / "ndcg_at_k.png"),
        plot_mrr_by_task(ev, out_dir / "mrr_by_task.png"),
        plot_label_distribution(ev, out_dir / "label_distribution.png"),
    ]
