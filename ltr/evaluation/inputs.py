"""Load scored lists and labels into the padded ``[queries, list]`` layout, checking them.

Inputs:

* a **labels** file: group column (``query_id`` by default, or e.g. ``session_id``),
  ``product_id`` and one or more non-negative numeric label columns (``grade`` graded;
  ``clicked``, ``added_to_cart``, ``purchased`` binary);
* one or more **predictions** files: group column, ``product_id``, ``score`` and
  optionally ``model`` (one file may hold several models).

Every bad input is either an error naming the file, column and first offending rows, or
is excluded and counted in :attr:`EvalInputs.counts` (and so in the report), never
silently dropped:

=====================================================  =======================================
input                                                  handling
=====================================================  =======================================
missing column, non-numeric score/label, empty file    error
empty group or product id                              error (rows)
NaN score                                              error (rows); +-inf scores are allowed
NaN or negative label                                  error (rows)
duplicate (group, product) row, labels or predictions  error (rows)
prediction for a query not in the labels               error (rows)
prediction for a product not labelled for its query    error (rows)
labelled product of a scored query without a score     error (labels rows)
query scored by some models but not by others          error (example queries)
labelled query scored by no model                      excluded, counted ``unscored_queries``
query with a single labelled item                      excluded, counted ``single_item_queries``
=====================================================  =======================================

Within a query the items are laid out in ascending product-id order (ids compared as
text), so tied scores are broken by product id, never by the order of the files (which
often is the logged position and would favour a model that outputs constant scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.groups import PaddedGroups, pad_groups
from ltr.errors import ConfigError, DataValidationError
from ltr.io import read_table

KNOWN_LABELS = ("grade", "clicked", "added_to_cart", "purchased")
MAX_ROWS_SHOWN = 5


@dataclass
class EvalInputs:
    """Everything the report needs, in the padded layout.

    Attributes:
        group_col, item_col: names of the group and product columns.
        keys: ``[Q]`` group ids (as text) of the evaluated queries, sorted.
        items: ``[Q, L]`` product ids (as text), ``""`` where padded.
        mask: ``[Q, L]`` True at real items.
        labels: label column -> ``[Q, L]`` float64 labels (0 where padded).
        scores: model -> ``[Q, L]`` float64 scores (0 where padded), models in input order.
        sources: model -> predictions file it came from.
        counts: input checks, e.g. ``{"label_rows": ..., "unscored_queries": ...}``.
    """

    group_col: str
    item_col: str
    keys: np.ndarray
    items: np.ndarray
    mask: np.ndarray
    labels: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    sources: dict[str, str]
    labels_source: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.scores)


def _rows(mask: pd.Series | np.ndarray) -> list[int]:
    """First offending 0-based data-row numbers (the frame index holds the file row)."""
    if isinstance(mask, pd.Series):
        return [int(i) for i in mask.index[mask.to_numpy()][:MAX_ROWS_SHOWN]]
    return [int(i) for i in np.flatnonzero(mask)[:MAX_ROWS_SHOWN]]


def _require_columns(df: pd.DataFrame, source: str, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise DataValidationError(
                source, f"missing column; found {', '.join(map(str, df.columns))}", column=col
            )


def _ids_as_text(df: pd.DataFrame, source: str, col: str) -> pd.Series:
    values = df[col]
    bad = values.isna()
    if bad.any():
        raise DataValidationError(source, "empty id", column=col, rows=_rows(bad))
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype(np.int64)  # 12.0 -> "12", as the other file likely says
    text = values.astype(str)
    bad = text.str.len() == 0
    if bad.any():
        raise DataValidationError(source, "empty id", column=col, rows=_rows(bad))
    return text


def _numeric(df: pd.DataFrame, source: str, col: str, what: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    unparsable = values.isna() & df[col].notna()
    if unparsable.any():
        raise DataValidationError(
            source, f"{what} is not a number", column=col, rows=_rows(unparsable),
            values=df[col][unparsable].head(MAX_ROWS_SHOWN).tolist(),
        )
    if values.isna().any():
        raise DataValidationError(
            source, f"{what} is missing (NaN)", column=col, rows=_rows(values.isna())
        )
    return values.astype(np.float64)


def _check_duplicates(keys: pd.DataFrame, source: str, col: str, what: str) -> None:
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise DataValidationError(
            source, f"duplicate ({what}) rows; each product may appear once per query",
            column=col, rows=_rows(dup),
        )


def load_labels(
    path: str | Path,
    group_col: str = "query_id",
    item_col: str = "product_id",
    label_cols: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read and check a labels file.

    ``label_cols=None`` takes the known label columns present (``grade``, ``clicked``,
    ``added_to_cart``, ``purchased``).

    Returns:
        a frame with columns ``_g``, ``_i`` (ids as text), ``_row`` (file row) and the
        label columns as float64, and the label column names.
    """
    source = str(path)
    df = read_table(path)
    _require_columns(df, source, [group_col, item_col])
    if label_cols is None or len(label_cols) == 0:
        label_cols = [c for c in KNOWN_LABELS if c in df.columns]
        if not label_cols:
            raise ConfigError(
                "label_cols",
                f"{source} has none of the known label columns ({', '.join(KNOWN_LABELS)}); "
                "name them with --label-cols",
            )
    label_cols = list(dict.fromkeys(label_cols))
    _require_columns(df, source, label_cols)
    if len(df) == 0:
        raise DataValidationError(source, "has no rows")
    df = df.reset_index(drop=True)
    out = pd.DataFrame(
        {"_g": _ids_as_text(df, source, group_col), "_i": _ids_as_text(df, source, item_col)}
    )
    for col in label_cols:
        values = _numeric(df, source, col, "label")
        negative = values < 0
        if negative.any():
            raise DataValidationError(
                source, "labels must be >= 0", column=col, rows=_rows(negative),
                values=values[negative].head(MAX_ROWS_SHOWN).tolist(),
            )
        out[col] = values
    _check_duplicates(out[["_g", "_i"]], source, f"{group_col}, {item_col}", "query, product")
    out["_row"] = np.arange(len(out))
    return out, label_cols


def parse_prediction_args(specs: Sequence[str]) -> list[tuple[str | None, str]]:
    """``["base=a.csv", "b.parquet"] -> [("base", "a.csv"), (None, "b.parquet")]``.

    A spec that names an existing file is a path even if it contains ``=`` (so
    ``runs/lr=0.1/pred.csv`` works); otherwise ``NAME=PATH`` splits at the first ``=``.
    """
    out: list[tuple[str | None, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name and path and not Path(spec).exists():
            out.append((name.strip(), path))
        else:
            out.append((None, spec))
    return out


def load_predictions(
    specs: Sequence[tuple[str | None, str]],
    group_col: str = "query_id",
    item_col: str = "product_id",
    score_col: str = "score",
    model_col: str = "model",
) -> dict[str, tuple[str, pd.DataFrame]]:
    """Read predictions files into ``{model: (source, frame[_g, _i, score, _row])}``.

    A file given without a name becomes one model per value of its ``model`` column, or a
    single model named after the file stem when it has none. A file given as
    ``NAME=PATH`` must not have a ``model`` column (which name would win is ambiguous).
    """
    if not specs:
        raise ConfigError("predictions", "give at least one predictions file")
    models: dict[str, tuple[str, pd.DataFrame]] = {}
    for name, path in specs:
        source = str(path)
        df = read_table(path)
        _require_columns(df, source, [group_col, item_col, score_col])
        if len(df) == 0:
            raise DataValidationError(source, "has no rows")
        df = df.reset_index(drop=True)
        frame = pd.DataFrame(
            {
                "_g": _ids_as_text(df, source, group_col),
                "_i": _ids_as_text(df, source, item_col),
                "score": _numeric(df, source, score_col, "score"),
                "_row": np.arange(len(df)),
            }
        )
        if model_col in df.columns:
            if name is not None:
                raise ConfigError(
                    "predictions",
                    f"{source} has a '{model_col}' column; pass it without NAME= to use it",
                )
            bad = df[model_col].isna()
            if bad.any():
                raise DataValidationError(source, "empty model name", column=model_col,
                                          rows=_rows(bad))
            names = df[model_col].astype(str)
            parts = [(m, frame[names == m]) for m in dict.fromkeys(names)]
        else:
            parts = [(name if name is not None else Path(source).stem, frame)]
        for model, part in parts:
            if model in models:
                raise ConfigError(
                    "predictions",
                    f"model name '{model}' given twice ({models[model][0]} and {source}); "
                    "name them with NAME=PATH",
                )
            _check_duplicates(
                part[["_g", "_i"]], source, f"{group_col}, {item_col}",
                f"query, product of model '{model}'",
            )
            models[model] = (source, part)
    return models


def _align(
    labels: pd.DataFrame, model: str, source: str, preds: pd.DataFrame,
    group_col: str, item_col: str, labels_source: str,
) -> pd.Series:
    """Scores of one model for every labelled row of the queries it scored (index: label row)."""
    known_q = preds["_g"].isin(labels["_g"].unique())
    if not known_q.all():
        bad = ~known_q
        raise DataValidationError(
            source, f"model '{model}': predictions for queries that are not in the labels "
            f"({int(bad.sum())} rows)", column=group_col, rows=preds.loc[bad, "_row"].head(
                MAX_ROWS_SHOWN).tolist(), values=preds.loc[bad, "_g"].head(MAX_ROWS_SHOWN).tolist(),
        )
    scored = labels[labels["_g"].isin(preds["_g"].unique())]
    merged = scored[["_g", "_i", "_row"]].merge(
        preds[["_g", "_i", "score", "_row"]], on=["_g", "_i"], how="outer",
        suffixes=("_label", "_pred"), indicator=True,
    )
    extra = merged["_merge"] == "right_only"
    if extra.any():
        rows = merged.loc[extra, "_row_pred"].astype(int)
        raise DataValidationError(
            source, f"model '{model}': predictions for products that are not labelled for "
            f"their query ({int(extra.sum())} rows)", column=item_col,
            rows=rows.head(MAX_ROWS_SHOWN).tolist(),
            values=merged.loc[extra, "_i"].head(MAX_ROWS_SHOWN).tolist(),
        )
    missing = merged["_merge"] == "left_only"
    if missing.any():
        rows = merged.loc[missing, "_row_label"].astype(int)
        raise DataValidationError(
            labels_source, f"model '{model}' ({source}) has no score for "
            f"{int(missing.sum())} labelled products of queries it scored",
            column=item_col, rows=rows.head(MAX_ROWS_SHOWN).tolist(),
            values=merged.loc[missing, "_i"].head(MAX_ROWS_SHOWN).tolist(),
        )
    return pd.Series(merged["score"].to_numpy(), index=merged["_row_label"].astype(int).to_numpy())


def load_inputs(
    labels_path: str | Path,
    predictions: Sequence[tuple[str | None, str]],
    *,
    group_col: str = "query_id",
    item_col: str = "product_id",
    score_col: str = "score",
    model_col: str = "model",
    label_cols: Sequence[str] | None = None,
) -> EvalInputs:
    """Read, check and lay out labels and predictions (see the module docstring)."""
    labels, label_cols = load_labels(labels_path, group_col, item_col, label_cols)
    labels_source = str(labels_path)
    models = load_predictions(predictions, group_col, item_col, score_col, model_col)

    aligned: dict[str, pd.Series] = {}
    scored_queries: dict[str, set[str]] = {}
    for model, (source, preds) in models.items():
        aligned[model] = _align(labels, model, source, preds, group_col, item_col, labels_source)
        scored_queries[model] = set(preds["_g"].unique())

    first = next(iter(models))
    for model in models:
        only_first = scored_queries[first] - scored_queries[model]
        only_this = scored_queries[model] - scored_queries[first]
        if only_first or only_this:
            who, other, diff = (model, first, only_first) if only_first else (
                first, model, only_this)
            examples = sorted(diff)[:MAX_ROWS_SHOWN]
            raise DataValidationError(
                models[who][0], f"model '{who}' scores no item of {len(diff)} queries that "
                f"model '{other}' scores (e.g. {', '.join(examples)}); models must be compared "
                "on the same queries", column=group_col,
            )

    scored = labels["_g"].isin(scored_queries[first])
    counts = {
        "label_rows": len(labels),
        "label_queries": int(labels["_g"].nunique()),
        "unscored_queries": int(labels.loc[~scored, "_g"].nunique()),
    }
    labels = labels[scored]
    sizes = labels.groupby("_g")["_i"].transform("size")
    single = sizes == 1
    counts["single_item_queries"] = int(single.sum())
    labels = labels[~single]
    counts["evaluated_queries"] = int(labels["_g"].nunique())
    counts["evaluated_rows"] = len(labels)
    if counts["evaluated_queries"] == 0:
        raise DataValidationError(
            labels_source, "no query left to evaluate: "
            f"{counts['unscored_queries']} labelled queries have no predictions and "
            f"{counts['single_item_queries']} scored queries have a single item",
        )

    # each query's items in tie-key order (ltr.metrics.ties: CRC-32 of the product id's
    # text, then the id): the one neutral tie rule of every evaluation
    from ltr.metrics.ties import tie_keys

    labels = labels.assign(_tie=tie_keys(labels["_i"].to_numpy(dtype=object)))
    labels = labels.sort_values(["_g", "_tie", "_i"], kind="mergesort") \
        .drop(columns="_tie").reset_index(drop=True)
    layout: PaddedGroups = pad_groups(labels["_g"].to_numpy())
    scores = {
        model: layout.gather(s.reindex(labels["_row"].to_numpy()).to_numpy(np.float64), 0.0)
        for model, s in aligned.items()
    }
    return EvalInputs(
        group_col=group_col,
        item_col=item_col,
        keys=np.asarray(layout.keys).astype(str),
        items=layout.gather(labels["_i"].to_numpy(dtype=object), ""),
        mask=layout.mask,
        labels={c: layout.gather(labels[c].to_numpy(np.float64), 0.0) for c in label_cols},
        scores=scores,
        sources={m: src for m, (src, _) in models.items()},
        labels_source=labels_source,
        counts=counts,
    )
