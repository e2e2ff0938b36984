"""Rows -> padded list tensors: the one data contract from loader to model.

A :class:`ListData` holds ``G`` lists (search sessions, or a query's candidate pool) of up
to ``L`` slots, padded and masked, with every model input and every task label laid out
``[G, L, ...]`` by :func:`ltr.data.pad_groups`. Labels that are unknown for a slot (e.g.
clicks for a never-shown candidate) are NaN; losses and metrics mask them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ltr.data.groups import pad_groups
from ltr.features.preprocess import Preprocessor
from ltr.features.spec import TASK_COLUMNS

OUTCOMES = ("none", "click", "cart", "purchase", "pool")
WARM_COLUMN = "hist_pair_impressions"  # a list is warm when a row has this history


@dataclass
class ListData:
    keys: np.ndarray  # [G] list ids (session_id or query)
    numeric: np.ndarray  # [G, L, F] float32
    categorical: np.ndarray  # [G, L, C] int64
    query_text: np.ndarray  # [G] int64 index into the query text table
    product_text: np.ndarray  # [G, L] int64 index into the product text table (0 if padded)
    position: np.ndarray  # [G, L] int64, 1-based, 0 = unknown
    mask: np.ndarray  # [G, L] bool
    product_id: np.ndarray  # [G, L] product ids (object), None where padded
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # task -> [G, L] float32
    customer_id: np.ndarray | None = None  # [G] the list's customer (None: anonymous/unknown)
    # [G] True where some row of the list has (query, product) history (a *warm* list);
    # None: all cold
    warm: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.warm is None:
            self.warm = np.zeros(len(self.keys), dtype=bool)
        self._tie_key: np.ndarray | None = None

    @property
    def tie_key(self) -> np.ndarray:
        """``[G, L]`` tie key of each slot's product (:mod:`ltr.metrics.ties`)."""
        if self._tie_key is None:
            from ltr.metrics.ties import tie_keys

            self._tie_key = tie_keys(self.product_id)
        return self._tie_key

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray | list[int], width: int | None = None) -> ListData:
        """Lists ``index`` (and only the first ``width`` slots, if given)."""
        idx = np.asarray(index)
        w = slice(None) if width is None else slice(0, width)
        return ListData(keys=self.keys[idx], numeric=self.numeric[idx, w],
                        categorical=self.categorical[idx, w], query_text=self.query_text[idx],
                        product_text=self.product_text[idx, w], position=self.position[idx, w],
                        mask=self.mask[idx, w], product_id=self.product_id[idx, w],
                        labels={k: v[idx, w] for k, v in self.labels.items()},
                        customer_id=None if self.customer_id is None
                        else self.customer_id[idx], warm=self.warm[idx])

    def in_neutral_order(self) -> ListData:
        """A copy with each list's slots in the neutral tie order (:mod:`ltr.metrics.ties`):
        for code that ranks with row-order ties (training losses, early stopping)."""
        from ltr.metrics.ties import neutral_order, reorder

        order = neutral_order(self.tie_key, self.mask)

        def take(a: np.ndarray) -> np.ndarray:
            return reorder(order, a)[0]

        return ListData(keys=self.keys, numeric=take(self.numeric),
                        categorical=take(self.categorical), query_text=self.query_text,
                        product_text=take(self.product_text), position=take(self.position),
                        mask=take(self.mask), product_id=take(self.product_id),
                        labels={k: take(v) for k, v in self.labels.items()},
                        customer_id=self.customer_id, warm=self.warm)

    @property
    def list_size(self) -> int:
        return int(self.mask.shape[1]) if self.mask.ndim == 2 else 0

    def outcomes(self) -> np.ndarray:
        """Best outcome of each list: 0 none, 1 click only, 2 add-to-cart, 3 purchase;
        4 for candidate-pool lists (no behaviour: clicks unknown)."""
        out = np.zeros(len(self), dtype=np.int64)
        if "click" in self.labels:
            unknown = ~np.isfinite(self.labels["click"]).any(axis=1)
            out = np.where(unknown, 4, out)
        for level, task in ((1, "click"), (2, "add_to_cart"), (3, "purchase")):
            if task in self.labels:
                hit = np.nan_to_num(self.labels[task], nan=0.0).max(axis=1) > 0
                out = np.where(hit, level, out)
        return out

    def engagement(self) -> np.ndarray:
        """Graded engagement per slot (see :func:`engagement_grade`)."""
        return engagement_grade(self.labels, self.mask.shape)


def concat_lists(parts: list[ListData]) -> ListData:
    """The lists of ``parts`` (all of one width) one after another."""
    if len(parts) == 1:
        return parts[0]
    cat = np.concatenate
    first = parts[0]
    return ListData(
        keys=cat([p.keys for p in parts]), numeric=cat([p.numeric for p in parts]),
        categorical=cat([p.categorical for p in parts]),
        query_text=cat([p.query_text for p in parts]),
        product_text=cat([p.product_text for p in parts]),
        position=cat([p.position for p in parts]), mask=cat([p.mask for p in parts]),
        product_id=cat([p.product_id for p in parts]),
        labels={t: cat([p.labels[t] for p in parts]) for t in first.labels},
        customer_id=None if first.customer_id is None else
        cat([p.customer_id for p in parts]),
        warm=None if first.warm is None else cat([p.warm for p in parts]))


def engagement_grade(labels: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """0 none, 1 click, 2 add-to-cart, 3 purchase per slot; NaN where no behaviour label
    is known (candidate pools). ``labels`` maps task names to ``[G, L]`` arrays."""
    grade = np.zeros(shape, dtype=np.float32)
    known = np.zeros(shape, dtype=bool)
    for level, task in ((1, "click"), (2, "add_to_cart"), (3, "purchase")):
        if task in labels:
            y = labels[task]
            known |= np.isfinite(y)
            grade = np.where(np.nan_to_num(y) > 0, float(level), grade)
    return np.where(known, grade, np.nan)


def build_lists(rows: pd.DataFrame, group_col: str, pre: Preprocessor,
                query_index: dict[str, int], product_index: dict[object, int],
                tasks: list[str], source: str = "rows",
                extra_labels: dict[str, str] | None = None,
                list_size: int | None = None) -> ListData:
    """Lay out rows as lists grouped by ``group_col``, keeping row order inside a list
    (sort rows by position first for sessions). Labels: one per task (its column from
    :data:`TASK_COLUMNS`) plus ``extra_labels`` (name -> column), NaN where absent.
    ``list_size`` fixes the padded width (longer lists are truncated)."""
    rows = rows.reset_index(drop=True)
    groups = pad_groups(rows[group_col].to_numpy(), max_len=list_size)
    numeric, categorical = pre.transform(rows, source)
    q_idx = rows["query"].astype(str).map(query_index).to_numpy(np.int64)
    p_idx = rows["product_id"].map(product_index).fillna(0).to_numpy(np.int64)
    position = rows["position"].fillna(0).to_numpy(np.int64) if "position" in rows else \
        np.zeros(len(rows), np.int64)
    first = groups.index[:, 0]
    warm = np.zeros(len(groups.keys), dtype=bool)
    if WARM_COLUMN in rows:
        has = groups.gather(rows[WARM_COLUMN].notna().to_numpy(), fill=False)
        warm = has.any(axis=1)
    labels = {}
    for task, col in {**{t: TASK_COLUMNS[t] for t in tasks}, **(extra_labels or {})}.items():
        y = rows[col].to_numpy(np.float32) if col in rows else np.full(len(rows), np.nan,
                                                                      np.float32)
        labels[task] = groups.gather(y, fill=np.nan)
    return ListData(
        keys=groups.keys,
        numeric=groups.gather(numeric, fill=0.0),
        categorical=groups.gather(categorical, fill=0),
        query_text=q_idx[first],
        product_text=groups.gather(p_idx, fill=0),
        position=groups.gather(position, fill=0),
        mask=groups.mask,
        product_id=groups.gather(rows["product_id"].to_numpy().astype(object), fill=None),
        labels=labels,
        customer_id=_customers(rows, first),
        warm=warm,
    )


def _customers(rows: pd.DataFrame, first: np.ndarray) -> np.ndarray | None:
    """``[G]`` customer id of each list (its first row), None where missing."""
    if "customer_id" not in rows:
        return None
    ids = rows["customer_id"].to_numpy(dtype=object)[first]
    return np.array([None if pd.isna(v) else v for v in ids], dtype=object)


class ListDataset(Dataset):
    """One item per list: a dict of tensors, all ``[L, ...]`` (labels under ``y_<task>``)."""

    def __init__(self, data: ListData) -> None:
        self.data = data
        self.numeric = torch.from_numpy(data.numeric)
        self.categorical = torch.from_numpy(data.categorical)
        self.query_text = torch.from_numpy(data.query_text)
        self.product_text = torch.from_numpy(data.product_text)
        self.position = torch.from_numpy(data.position)
        self.mask = torch.from_numpy(data.mask)
        self.warm = torch.from_numpy(np.asarray(data.warm, dtype=bool))
        self.tie_key = torch.from_numpy(data.tie_key)
        self.labels = {t: torch.from_numpy(y) for t, y in data.labels.items()}

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, rows: int | slice) -> dict[str, torch.Tensor]:
        """The model inputs and labels of list ``rows`` (an int: one list, ``[L, ...]``;
        a slice: a batch, ``[B, L, ...]``, as the default collate would stack them)."""
        item = {"numeric": self.numeric[rows], "categorical": self.categorical[rows],
                "query_text": self.query_text[rows], "product_text": self.product_text[rows],
                "position": self.position[rows], "mask": self.mask[rows],
                "warm": self.warm[rows], "tie_key": self.tie_key[rows]}
        for t, y in self.labels.items():
            item[f"y_{t}"] = y[rows]
        return item

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**self.batch(i), "index": i}


class OutcomeSampler(Sampler[int]):
    """Draws lists so that each outcome class (none / click / cart / purchase / pool) makes up a
    configured share of an epoch, with replacement; classes absent from the data are
    skipped and the other shares renormalised. ``rates=None`` is uniform sampling without
    replacement (a plain shuffle)."""

    def __init__(self, outcomes: np.ndarray, rates: dict[str, float] | None, seed: int = 0,
                 num_samples: int | None = None) -> None:
        self.outcomes = np.asarray(outcomes)
        self.rates = rates
        self.seed = seed
        self.epoch = 0
        self.num_samples = num_samples or len(self.outcomes)
        if rates is not None:
            counts = np.bincount(self.outcomes, minlength=len(OUTCOMES)).astype(float)
            share = np.array([rates.get(name, 0.0) for name in OUTCOMES]) * (counts > 0)
            if share.sum() <= 0:
                share = (counts > 0).astype(float)
            share /= share.sum()
            self.weights = share[self.outcomes] / np.maximum(counts[self.outcomes], 1.0)
            self.weights /= self.weights.sum()

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        if self.rates is None:
            return iter(rng.permutation(len(self.outcomes))[: self.num_samples].tolist())
        return iter(rng.choice(len(self.outcomes), size=self.num_samples, replace=True,
                               p=self.weights).tolist())
