"""Writes a label run: the labels table, the config that made it, and a report folder
(label distribution, propensity curve, signal correlations, agreement with human grades,
disagreements) as PNG, CSV and markdown. The whole set is written to a temporary folder
beside ``out`` and renamed into place at the end (:func:`ltr.io.atomic_dir`): a failed or
killed run leaves the previous set as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.io import atomic_dir, fault_point, write_json, write_table, write_text
from ltr.labels.pipeline import LabelResult
from ltr.markdown import markdown_table
from ltr.plotting import new_figure, save_figure

LABEL_FILES = ("labels.parquet", "label_config.yaml", "label_config.json", "report")
"""What a label run writes in its folder: a folder without a marker that holds only these
is an earlier run's (:func:`ltr.io.check_output_dir`)."""
SIGNALS = ["smoothed_ctr", "smoothed_cart_rate", "smoothed_purchase_rate", "similarity",
           "behaviour", "score", "grade"]


def plot_label_distribution(labels: pd.DataFrame, path: Path) -> Path:
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    counts = labels["grade"].value_counts().sort_index()
    ax.bar(counts.index.astype(str), counts.to_numpy(), color="#4c72b0")
    for x, y in zip(counts.index.astype(str), counts.to_numpy(), strict=True):
        ax.annotate(f"{y:,}", (x, y), ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("derived grade")
    ax.set_ylabel("pairs")
    ax.set_title(f"Label distribution ({len(labels):,} pairs)")
    return save_figure(fig, path)


def plot_propensity(estimated: dict[int, float], truth: np.ndarray | None, path: Path) -> Path:
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    ks = np.array(sorted(estimated))
    ax.plot(ks, [estimated[k] for k in ks], marker="o", label="estimated (PBM, EM)")
    if truth is not None:
        n = min(len(truth), ks.max())
        ax.plot(np.arange(1, n + 1), truth[:n], ls="--", color="k", label="simulator truth")
    ax.set_xlabel("position")
    ax.set_ylabel("examination relative to position 1")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Position bias estimated from the log")
    return save_figure(fig, path)


def plot_correlations(corr: pd.DataFrame, path: Path) -> Path:
    fig = new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(corr)), corr.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(corr)), corr.index, fontsize=8)
    for i in range(len(corr)):
        for j in range(len(corr)):
            ax.text(j, i, f"{corr.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlation between label signals")
    return save_figure(fig, path)


def write_label_run(result: LabelResult, out_dir: str | Path, *, run_config: dict[str, Any],
                    agreement: pd.DataFrame | None = None,
                    confusion: pd.DataFrame | None = None,
                    disagreements: pd.DataFrame | None = None,
                    disagreement_stats: pd.DataFrame | None = None,
                    true_examination: np.ndarray | None = None) -> dict[str, Path]:
    """Write labels.parquet, label_config.yaml and report/ to ``out_dir``, whole or not at
    all; the returned paths are under ``out_dir``.

    Raises:
        ConfigError: ``out`` is a folder that is not an earlier label run's
            (:func:`ltr.io.check_output_dir`).
    """
    out = Path(out_dir)
    with atomic_dir(out, owner="label", main_files=LABEL_FILES) as tmp:
        paths = _write_set(result, tmp, run_config, agreement, confusion, disagreements,
                           disagreement_stats, true_examination)
    return {name: out / path.relative_to(tmp) for name, path in paths.items()}


def _write_set(result: LabelResult, out: Path, run_config: dict[str, Any],
               agreement: pd.DataFrame | None, confusion: pd.DataFrame | None,
               disagreements: pd.DataFrame | None, disagreement_stats: pd.DataFrame | None,
               true_examination: np.ndarray | None) -> dict[str, Path]:
    import yaml

    rep = out / "report"
    labels = result.labels
    paths: dict[str, Path] = {}
    paths["labels"] = write_table(labels, out / "labels.parquet")
    paths["config"] = write_text(yaml.safe_dump(run_config, sort_keys=False), out /
                                 "label_config.yaml")
    fault_point("between-files", "label")
    curve = result.position_bias.curve()
    paths["propensity_csv"] = write_table(
        pd.DataFrame({"position": list(curve), "examination": list(curve.values())}),
        rep / "propensity.csv")
    paths["distribution_png"] = plot_label_distribution(labels, rep / "label_distribution.png")
    paths["propensity_png"] = plot_propensity(curve, true_examination, rep / "propensity.png")
    cols = [c for c in SIGNALS if c in labels and labels[c].notna().any()]
    corr = labels[cols].corr(method="spearman")
    paths["correlations_png"] = plot_correlations(corr, rep / "signal_correlations.png")
    priors = {name: {str(b): {"alpha": p.alpha, "beta": p.beta} for b, p in ps.items()}
              for name, ps in result.priors.items()}
    summary: dict[str, Any] = {
        "pairs": len(labels),
        "queries": int(labels["query"].nunique()),
        "grade_counts": labels["grade"].value_counts().sort_index().to_dict(),
        "position_bias": {"curve": curve, "iterations": result.position_bias.iterations,
                          "converged": result.position_bias.converged,
                          "identifiable": result.position_bias.identifiable,
                          "note": result.position_bias.note},
        "priors_by_cell": priors,
        "notes": result.notes,
    }
    md = ["# Label report", "",
          f"{len(labels):,} (query, product) pairs over {labels['query'].nunique()} queries.",
          "", "## Grades", "",
          markdown_table(labels["grade"].value_counts().sort_index().rename_axis("grade")
                    .reset_index(name="pairs")),
          "", "![distribution](label_distribution.png)", "",
          "## Position bias", "", result.position_bias.note, "",
          markdown_table(pd.DataFrame({"position": list(curve)[:20],
                                  "examination": list(curve.values())[:20]})),
          "", "![propensity](propensity.png)", "",
          "## Signal correlations (Spearman)", "", "![correlations](signal_correlations.png)",
          ""]
    if result.notes:
        md += ["## Notes and fallbacks", ""] + [f"- {n}" for n in result.notes] + [""]
    if agreement is not None:
        paths["agreement_csv"] = write_table(agreement, rep / "agreement.csv")
        summary["agreement"] = agreement.to_dict("records")
        md += ["## Agreement with human judgements", "", markdown_table(agreement), "",
               "Weighted kappa: quadratic weights, derived scores cut to the human scale by "
               "quantile matching. NDCG@10: each query's judged pool ranked by the label score.",
               ""]
    if confusion is not None:
        paths["confusion_csv"] = write_table(confusion.reset_index(), rep / "confusion.csv")
        md += ["### Confusion (rows: derived grade, columns: human grade)", "",
               markdown_table(confusion.reset_index().astype(object)), ""]
    if disagreements is not None:
        paths["disagreements"] = write_table(disagreements, rep / "disagreements.parquet")
        summary["disagreements"] = len(disagreements)
        md += ["## Click vs text disagreements", "",
               f"{len(disagreements):,} pairs with enough evidence where the normalised click "
               "signal and the normalised similarity differ by more than the threshold "
               "(exported to `disagreements.parquet` for review).", ""]
        if disagreement_stats is not None:
            md += [markdown_table(disagreement_stats), ""]
        if "top_category" in disagreements and len(disagreements):
            top = (disagreements.groupby(["direction", "top_category"]).size()
                   .rename("pairs").reset_index().sort_values("pairs", ascending=False).head(10))
            md += ["Top categories among disagreements:", "", markdown_table(top), ""]
    paths["summary_json"] = write_json(summary, rep / "summary.json")
    paths["report_md"] = write_text("\n".join(md) + "\n", rep / "report.md")
    return paths
