r"""The ranking score, chosen on validation lists instead of fixed by hand.

A multi-task ranker has several outputs per slot: the zero-shot query-product cosine
:math:`o_0` and one output per task :math:`o_1..o_K` (click, add-to-cart and purchase
logits, the relevance score). Its ranking score is a non-negative mix

.. math::
    s = \sum_k w_k\, o_k,

with one weight vector per *case*: ``cold`` lists (the query has no (query, product)
history: a new query) and ``warm`` lists (it has). The weights are fitted to maximise the
mean NDCG@10 of the validation lists of the case against their target (derived relevance
labels of queries never trained on for ``cold``; labels from the validation window only for
``warm``), as follows:

1. each output is scaled by its standard deviation :math:`\sigma_k` over the case's
   valid slots, :math:`z_k = o_k / \sigma_k`, so that weights are comparable;
2. start from the best single output :math:`k^*` (weight 1; ties go to the earlier
   output, the cosine first);
3. coordinate ascent: for ``passes`` rounds, for each other output try every weight of
   ``grid`` and keep a change only if it raises the mean NDCG@10 by more than ``min_gain``;
4. the case's *reference* output is kept alone unless the selected mix
   beats it by more than ``min_se`` standard errors of the per-list differences
   :math:`d_g = \mathrm{NDCG}_g(\text{mix}) - \mathrm{NDCG}_g(\text{reference})`:
   :math:`\bar d > \texttt{min\_se} \cdot \mathrm{sd}(d) / \sqrt{n}` (default 2,
   about a one-sided 5% test; the gain is measured on the lists the mix was fitted on, so
   it is optimistic, and the margin pays for that). With a handful of validation queries a
   mix has to win clearly; with thousands, small gains count. The reference of ``cold``
   lists is the zero-shot text similarity (the cosine, plus the query-term coverage
   weighted as in the labels, :mod:`ltr.text.lexical`); that of ``warm`` lists the
   history label (the label rule
   applied to the query's own log), so that a known query is ranked at least as its labels
   rank it unless validation clearly says otherwise. With fewer than ``min_lists``
   validation lists (default 30) the reference is kept without a search: a handful of
   queries says too little about the next ones (on the 40-query sample, 5 validation
   queries picked mixes that beat the cosine on all 5 by 3 standard errors and lost to it
   on the 8 held-out test queries).

The weights returned apply to the raw outputs: :math:`w_k / \sigma_k`. If no mix beats
the reference clearly on a case's validation lists, the score of that case *is* the
reference: new queries are not ranked worse than by zero-shot text on validation, known
ones not worse than by their labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltr.metrics import ndcg

CASES = ("cold", "warm")
# the reference of each case: the first of these the model has
REFERENCES = {"cold": ("text_similarity", "cosine"),
              "warm": ("history_label", "text_similarity", "cosine")}
GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Selection:
    """Fitted weights of one case and how they were found."""

    weights: np.ndarray  # [K] weights on the raw outputs
    ndcg: float  # mean NDCG@10 of the selected score on the validation lists
    single: dict[str, float]  # mean NDCG@10 of each output alone
    lists: int  # validation lists with a non-zero ideal DCG
    gain: float = float("nan")  # mean NDCG@10 gain of the best mix over the reference
    gain_se: float = float("nan")  # its standard error
    kept_reference: bool = False  # the mix did not beat the reference clearly

    def describe(self, names: list[str]) -> str:
        parts = [f"{n}={w:.3g}" for n, w in zip(names, self.weights, strict=True) if w]
        return ", ".join(parts) or "none"


def _mean_ndcg(score: np.ndarray, target: np.ndarray, valid: np.ndarray, k: int) -> float:
    r = ndcg(score, target, valid, k=k)
    return float(r.mean) if r.included.any() else float("nan")


def select_weights(outputs: list[np.ndarray], target: np.ndarray, valid: np.ndarray,
                   names: list[str], k: int = 10, grid: tuple[float, ...] = GRID,
                   passes: int = 2, min_gain: float = 1e-4, reference: str | None = "cosine",
                   min_se: float = 2.0, min_lists: int = 30) -> Selection | None:
    """Fit the weights of one case (see the module docstring).

    Args:
        outputs: one ``[G, L]`` array per output, in ``names`` order.
        target: ``[G, L]`` graded target; ``valid`` ``[G, L]`` marks the slots that count.
        reference: the output kept alone unless a mix beats it clearly (step 4); ``None``
            or a name not in ``names``: no such rule.
    Returns:
        the selection, or ``None`` when no list has a non-zero ideal DCG (nothing to fit).
    """
    if not len(outputs) or not valid.any():
        return None
    target = np.nan_to_num(target)
    z = []
    for o in outputs:
        v = o[valid]
        sd = float(np.std(v)) if v.size > 1 else 0.0
        z.append((np.nan_to_num(o) / sd if sd > 1e-12 else np.zeros_like(o), sd))
    scaled = [a for a, _ in z]
    sds = np.array([s if s > 1e-12 else 1.0 for _, s in z])
    single = {n: _mean_ndcg(a, target, valid, k) for n, a in zip(names, scaled, strict=True)}
    finite = {n: v for n, v in single.items() if np.isfinite(v)}
    if not finite:
        return None
    best_name = max(finite, key=lambda n: (finite[n], -names.index(n)))
    n_lists = int(ndcg(scaled[0], target, valid, k=k).included.sum())
    if reference in finite and n_lists < min_lists:
        w = np.zeros(len(outputs))
        w[names.index(reference)] = 1.0
        return Selection(weights=w / sds, ndcg=finite[reference], single=single,
                         lists=n_lists, kept_reference=True)
    w = np.zeros(len(outputs))
    anchor = names.index(best_name)
    w[anchor] = 1.0
    best = finite[best_name]

    def evaluate(weights: np.ndarray) -> float:
        s = sum(wk * a for wk, a in zip(weights, scaled, strict=True) if wk)
        return _mean_ndcg(s, target, valid, k)

    for _ in range(passes):
        changed = False
        for j in range(len(outputs)):
            if j == anchor:
                continue
            for value in grid:
                if value == w[j]:
                    continue
                trial = w.copy()
                trial[j] = value
                got = evaluate(trial)
                if got > best + min_gain:
                    best, w, changed = got, trial, True
        if not changed:
            break
    out = Selection(weights=w / sds, ndcg=best, single=single, lists=n_lists)
    if reference in names and np.isfinite(single[reference]):
        ref = names.index(reference)
        mix = ndcg(sum(wk * a for wk, a in zip(w, scaled, strict=True) if wk), target, valid,
                   k=k)
        alone = ndcg(scaled[ref], target, valid, k=k)
        d = (mix.values - alone.values)[mix.included]
        out.gain = float(d.mean())
        out.gain_se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
        if not out.gain > min_se * out.gain_se:
            w = np.zeros(len(outputs))
            w[ref] = 1.0
            out.weights, out.ndcg, out.kept_reference = w / sds, single[reference], True
    return out
