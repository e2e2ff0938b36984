r"""Feature preprocessing fitted on the training split only, saved as JSON, reused at
inference.

* numeric column ``x``: optional ``log1p`` (for counts and prices, negative values clipped
  to 0 first), then standardised :math:`(x - \mu) / \sigma` with :math:`\mu, \sigma` from
  the training rows; missing values become 0 (the training mean) and, for columns that
  had missing values in training, a 0/1 missing indicator column is appended.
* categorical column: vocabulary of training values seen at least ``min_category_count``
  times, indexed from 2; index 1 is *unknown* (a value not in the vocabulary, seen at
  inference), index 0 is *missing*. Unseen categories never raise at inference: they
  share the unknown embedding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError
from ltr.features.spec import FeatureSpec
from ltr.io import write_json

MISSING, UNKNOWN = 0, 1
FORMAT_VERSION = 1


@dataclass
class Preprocessor:
    spec: FeatureSpec
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    indicators: list[str] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, rows: pd.DataFrame, spec: FeatureSpec, source: str = "training rows"
            ) -> Preprocessor:
        """Fit statistics and vocabularies on the training rows."""
        pre = cls(spec)
        pre._check_columns(rows, source)
        for col in spec.numeric_inputs:
            x = pre._numeric_raw(rows, col, source)
            finite = x[np.isfinite(x)]
            pre.means[col] = float(finite.mean()) if finite.size else 0.0
            std = float(finite.std()) if finite.size else 0.0
            pre.stds[col] = std if std > 1e-12 else 1.0
            if finite.size < len(x):
                pre.indicators.append(col)
        for col in spec.categorical_inputs:
            counts = rows[col].dropna().astype(str).value_counts()
            keep = counts[counts >= spec.min_category_count].index
            pre.vocabularies[col] = sorted(keep.tolist())
        return pre

    # ------------------------------------------------------------------ transforming
    @property
    def numeric_width(self) -> int:
        return len(self.spec.numeric_inputs) + len(self.indicators)

    @property
    def numeric_names(self) -> list[str]:
        return self.spec.numeric_inputs + [f"{c}__missing" for c in self.indicators]

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table size per categorical column (vocabulary + missing + unknown)."""
        return [len(self.vocabularies[c]) + 2 for c in self.spec.categorical_inputs]

    def transform(self, rows: pd.DataFrame, source: str = "rows"
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric [n, numeric_width] float32, categorical [n, n_cat] int64)``."""
        self._check_columns(rows, source)
        n = len(rows)
        numeric = np.zeros((n, self.numeric_width), dtype=np.float32)
        for j, col in enumerate(self.spec.numeric_inputs):
            x = self._numeric_raw(rows, col, source)
            z = (x - self.means[col]) / self.stds[col]
            numeric[:, j] = np.where(np.isfinite(z), z, 0.0)
        base = len(self.spec.numeric_inputs)
        for j, col in enumerate(self.indicators):
            numeric[:, base + j] = ~np.isfinite(self._numeric_raw(rows, col, source))
        categorical = np.zeros((n, len(self.spec.categorical_inputs)), dtype=np.int64)
        for j, col in enumerate(self.spec.categorical_inputs):
            index = {v: i + 2 for i, v in enumerate(self.vocabularies[col])}
            values = rows[col]
            codes = values.astype(str).map(index).fillna(UNKNOWN).to_numpy(np.int64)
            categorical[:, j] = np.where(values.isna().to_numpy(), MISSING, codes)
        return numeric, categorical

    def _numeric_raw(self, rows: pd.DataFrame, col: str, source: str) -> np.ndarray:
        values = pd.to_numeric(rows[col], errors="coerce")
        bad = values.isna().to_numpy() & rows[col].notna().to_numpy()
        if bad.any():
            idx = np.flatnonzero(bad)[:5]
            raise DataValidationError(source, "numeric feature holds non-numbers", column=col,
                                      rows=idx.tolist(), values=rows[col].iloc[idx].tolist())
        x = values.to_numpy(dtype=np.float64)
        if col in self.spec.log1p:
            x = np.log1p(np.clip(x, 0.0, None))
        return x

    def _check_columns(self, rows: pd.DataFrame, source: str) -> None:
        needed = self.spec.numeric_inputs + self.spec.categorical_inputs
        missing = [c for c in needed if c not in rows.columns]
        if missing:
            raise DataValidationError(source, f"feature column(s) {missing} missing (the "
                                      "feature spec names them)", column=missing[0])

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "spec": self.spec.to_dict(),
                "means": self.means, "stds": self.stds, "indicators": self.indicators,
                "vocabularies": self.vocabularies}

    @classmethod
    def from_dict(cls, state: dict[str, Any], source: str = "preprocessor") -> Preprocessor:
        if state.get("format_version") != FORMAT_VERSION:
            raise DataValidationError(source, f"preprocessor format "
                                      f"{state.get('format_version')!r} is not {FORMAT_VERSION}")
        return cls(FeatureSpec.from_dict(state["spec"]), dict(state["means"]),
                   dict(state["stds"]), list(state["indicators"]),
                   {k: list(v) for k, v in state["vocabularies"].items()})

    def save(self, path: str | Path) -> Path:
        return write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        path = Path(path)
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataValidationError(str(path), f"cannot be read as JSON: {exc}") from exc
        return cls.from_dict(state, str(path))
