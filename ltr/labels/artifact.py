"""Labels as an artifact: what ``ltr label`` writes and ``ltr fit`` trains on.

A label folder holds ``labels.parquet`` and ``label_config.yaml``; the config records the
label settings, the coverage weight the similarity was made with, the *window* the labels
come from (the split and query hold-out of a training run, or the whole log) and the
**fingerprint** of that window's impressions. ``ltr fit``, ``ltr benchmark`` and
``ltr sweep`` take such a folder as ``data.labels: PATH`` and refuse it unless its
fingerprint equals that of their own training window, naming both: one definition of a
label, checked, instead of two places that each make their own.

The fingerprint is the SHA-256 (first 32 hex digits) of pandas' row hashes of the
window's impressions (session, position, query, product, click, add-to-cart, purchase,
as text, ordered by session and position): the same rows give the same fingerprint
whatever the file format or row order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ltr.errors import ConfigError, DataValidationError
from ltr.labels.config import LabelConfig

FINGERPRINT_COLUMNS = ["session_id", "position", "query", "product_id", "clicked",
                       "added_to_cart", "purchased"]
LABELS_FILE = "labels.parquet"
CONFIG_FILE = "label_config.yaml"


def window_fingerprint(impressions: pd.DataFrame) -> str:
    """Fingerprint of a set of impressions (module docstring)."""
    cols = [c for c in FINGERPRINT_COLUMNS if c in impressions.columns]
    rows = impressions[cols].astype(str).sort_values(["session_id", "position"],
                                                     kind="stable")
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


@dataclass
class LabelArtifact:
    """A label folder, read back."""

    path: Path
    labels: pd.DataFrame
    config: LabelConfig
    lexical_weight: float
    fingerprint: str
    window: dict[str, Any] = field(default_factory=dict)
    impressions: int = 0

    def check(self, fingerprint: str, window: dict[str, Any], impressions: int,
              key: str = "data.labels") -> None:
        """Refuse labels made from another window than the training run's."""
        if fingerprint != self.fingerprint:
            raise ConfigError(key, f"{self.path} holds labels of {describe(self.window)} "
                              f"({self.impressions:,} impressions, fingerprint "
                              f"{self.fingerprint}); this run trains on {describe(window)} "
                              f"({impressions:,} impressions, fingerprint {fingerprint}). "
                              "Label the same window: ltr label --config ... --set "
                              "window.split=... (docs/labels.md), or leave data.labels out")


def describe(window: dict[str, Any]) -> str:
    if not window:
        return "the whole log"
    text = f"the training window of split {window.get('split')}"
    if (window.get("folds") or 0) > 1:
        text += f", fold {window.get('fold')} of {window.get('folds')} held out " \
                f"(seed {window.get('seed', 0)})"
    return text


def artifact_fields(result: Any, fingerprint: str, window: dict[str, Any],
                    impressions: int) -> dict[str, Any]:
    """The entries ``label_config.yaml`` adds for the artifact."""
    return {"window": window, "fingerprint": fingerprint, "impressions": int(impressions),
            "lexical_weight": float(result.lexical_weight)}


def read_labels(path: str | Path) -> LabelArtifact:
    """Read a label folder written by ``ltr label``."""
    import yaml

    from ltr.io import read_table

    folder = Path(path)
    if not (folder / LABELS_FILE).exists() or not (folder / CONFIG_FILE).exists():
        raise DataValidationError(str(folder), f"is not a label folder of ltr label (needs "
                                  f"{LABELS_FILE} and {CONFIG_FILE})")
    try:
        cfg = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataValidationError(str(folder / CONFIG_FILE), f"cannot be read as YAML: "
                                  f"{exc}") from exc
    if "fingerprint" not in cfg:
        raise DataValidationError(str(folder / CONFIG_FILE), "records no window fingerprint "
                                  "(written by an older ltr label): label again",
                                  column="fingerprint")
    labels = read_table(folder / LABELS_FILE)
    for col in ("query", "product_id", "grade", "score"):
        if col not in labels.columns:
            raise DataValidationError(str(folder / LABELS_FILE), "column missing", column=col)
    config = LabelConfig.from_dict(dict(cfg.get("labels") or {}))
    return LabelArtifact(folder, labels.assign(query=labels["query"].astype(str)), config,
                         float(cfg.get("lexical_weight", 0.0)), str(cfg["fingerprint"]),
                         dict(cfg.get("window") or {}), int(cfg.get("impressions", 0)))
