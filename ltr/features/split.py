"""Splits: by time (history / train / valid / test windows) and by query (k folds).

Time windows are whole days counted from the first session: the first ``history_days``
feed history features only; the last ``test_days`` are the test set; the ``valid_days``
before them are the validation set; the rest is training. A session belongs to the window
of its timestamp, so no session is split.

Query folds hold whole queries out (``query_folds``): a held-out query contributes
nothing to training — not its clicks, not its labels, not its history features.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field

from ltr.checks import Range
from ltr.config_schema import section
from ltr.errors import ConfigError, DataValidationError

Days = Annotated[float, Range(ge=0)]


@section("data.split")
class Split:
    """The ``data.split`` section (and ``window.split`` of ``ltr label``): whole days
    counted from the first session of the log."""

    history_days: Days = Field(7, description="first days: feed history features only")
    valid_days: Days = Field(3, description="days before the test days: validation")
    test_days: Days = Field(4, description="last days: test")

WINDOWS = ("history", "train", "valid", "test")


def time_windows(impressions: pd.DataFrame, history_days: float, valid_days: float,
                 test_days: float, source: str = "impressions") -> pd.Series:
    """Window name per impression row (``history``/``train``/``valid``/``test``)."""
    Split(history_days=history_days, valid_days=valid_days, test_days=test_days)  # ranges
    ts = impressions["timestamp"]
    start = ts.min().normalize()
    days = (ts - start).dt.total_seconds().to_numpy() / 86_400.0
    span = float(np.ceil(days.max() + 1e-9))
    t_test = span - test_days
    t_valid = t_test - valid_days
    if t_valid <= history_days:
        raise ConfigError("data.split", f"the log spans {span:.0f} days: history "
                          f"({history_days}) + valid ({valid_days}) + test ({test_days}) "
                          "leave no training days")
    out = np.select([days < history_days, days >= t_test, days >= t_valid],
                    ["history", "test", "valid"], default="train")
    windows = pd.Series(out, index=impressions.index, name="window")
    counts = windows.value_counts()
    if counts.get("train", 0) == 0:
        raise DataValidationError(source, "no impression falls in the training window",
                                  column="timestamp")
    return windows


def query_folds(queries: np.ndarray | list[str], k: int, seed: int = 0) -> dict[str, int]:
    """Assign each distinct query to one of ``k`` folds, balanced and seeded.

    The order is a seeded shuffle of the queries sorted by a stable hash, so the
    assignment does not depend on the order queries appear in the log."""
    uniq = sorted({str(q) for q in queries}, key=lambda q: (zlib.crc32(q.encode()), q))
    if k < 2 or k > len(uniq):
        raise ConfigError("data.folds", f"must be between 2 and the number of queries "
                          f"({len(uniq)}), got {k}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    return {uniq[i]: int(j % k) for j, i in enumerate(order)}


def held_out_queries(queries: list[str] | set[str], folds: int, fold: int,
                     seed: int) -> set[str]:
    """The queries of fold ``fold`` of a ``folds``-fold split (none without folds)."""
    if not folds or folds <= 1:
        return set()
    if not 0 <= fold < folds:
        raise ConfigError("data.fold", f"must be in [0, {folds}), got {fold}")
    assignment = query_folds(sorted(set(queries)), folds, seed)
    return {q for q, f in assignment.items() if f == fold}


DEFAULT_SPLIT = dataclasses.asdict(Split())


def full_split(split: dict[str, Any] | None) -> dict[str, Any]:
    """``split`` checked (:class:`Split`: unknown keys and negative days refused) with
    the defaults filled in."""
    from ltr.config_schema import validate

    return dataclasses.asdict(validate(Split, dict(split or {}), "data.split"))


def window_description(split: dict[str, Any] | None, folds: int = 0, fold: int = 0,
                       seed: int = 0) -> dict[str, Any]:
    """The settings that define a training window (what a label artifact records):
    the full split, and the fold, fold count and seed when queries are held out."""
    out: dict[str, Any] = {"split": full_split(split)}
    if folds and folds > 1:
        out.update(folds=folds, fold=fold, seed=seed)
    return out


def no_training_rows(source: str) -> DataValidationError:
    """The error of a split and query hold-out that leave no training impression."""
    return DataValidationError(source, "no training impressions left after the split and "
                               "the query hold-out", column="timestamp")


def training_window(impressions: pd.DataFrame, judged_queries: set[str] | None,
                    split: dict[str, Any] | None, folds: int = 0, fold: int = 0,
                    seed: int = 0, source: str = "impressions"
                    ) -> tuple[pd.Series, pd.Series, set[str]]:
    """``(windows, train_mask, held_out)``: the window of every impression, the rows the
    relevance labels of a training run come from (the training window, held-out queries
    excepted) and the held-out queries. One definition for ``ltr fit`` and ``ltr label``,
    so that a label file made for a training window can be checked against it."""
    split = full_split(split)
    windows = time_windows(impressions, split["history_days"], split["valid_days"],
                           split["test_days"], source)
    queries = set(impressions["query"].astype(str)) | set(judged_queries or ())
    held_out = held_out_queries(queries, folds, fold, seed)
    train = (windows == "train") & ~impressions["query"].astype(str).isin(held_out)
    return windows, train, held_out
