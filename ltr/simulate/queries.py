r"""Synthetic queries over a catalog, their candidates and their true grades.

A benchmark with thousands of queries, built from the catalog text alone, in the spirit of
the synthetic-query papers (Peshevski et al., arXiv 2510.01229; Li et al., arXiv
2509.16717) but with templates instead of an LLM, so that every query has a known intent
and a rule-based true grade.

**Recipes** (:func:`generate_queries`). Every text is accent-folded ("décor" -> "decor"),
lower-cased and tokenised like :func:`ltr.rankers.bm25.tokenize` (runs of ``[a-z0-9]``).

==================  =====================================================  =============
recipe              query text                                             draw weight
==================  =====================================================  =============
``class``           a product class, every word singular, ``&`` -> "and"   ``w(k)``
                    ("Accent Chairs" -> "accent chair")
``modifier_class``  a title word ``t`` of products of class ``k`` + the    ``w(k) c(k,t)
                    class text ("velvet accent chair"); ``t`` is not a     / sum_t c(k,t)``
                    stopword, has >= 3 letters and no digit, is not a
                    class word, and occurs in >= 2 titles of ``k``
``category``        one segment of a category path ("Outdoor Lighting"     ``sum_d [s in
                    -> "outdoor lighting"); ``klass`` is ""                path(d)] / |path(d)|``
``name_ngram``      a 2- or 3-token window of a product title with no      ``sum_d [g in
                    stopword at either edge and no digits-only or          win(d)] / |win(d)|``
                    one-letter token; ``klass`` is ""
``typo``            a query of a clean recipe (chosen by the clean         as its base
                    recipes' shares) with one edit in one word of >= 4
                    letters: swap of two adjacent (different) letters,
                    deletion, insertion or substitution of a letter
==================  =====================================================  =============

``w(k)`` is the number of products of class ``k`` (a product with ``m`` classes, e.g.
``"Bookcases|Wall Mounted Shelves"``, counts ``1/m`` for each); ``c(k, t)`` is the number of
titles of class ``k`` holding ``t``. The weights are those of "draw a product (uniformly) or
a class (by popularity), then a part of it", summed over everything that yields the same
text. Each recipe's candidates are put in a weighted random order without replacement
(Efraimidis-Spirakis keys ``log(u) / w``, ``u ~ U(0, 1)`` from a seeded
``numpy.random.Generator``) and taken in that order, skipping texts already taken and texts
whose typed or intended form is in ``exclude``. Recipe ``r`` is asked for
``round(n * share_r)`` queries (largest remainders, so the total is ``n``); a recipe that runs
out hands its shortfall to the others in proportion to their shares; if all run out, fewer
than ``n`` queries are returned with a warning.

**True grade** (:func:`true_grades`), modelled on the WANDS guideline (Exact 2 / Partial 1 /
Irrelevant 0) and computed on the *intended* query. Let ``T(x)`` be the content tokens of
``x`` (tokens minus stopwords) after plural folding (:func:`singular`), ``P_d`` =
``T(title + product_class + category path)`` of product ``d``, ``C_q = T(intended)``,
``h_q`` the head (last token of ``C_q``, the head noun of an English noun phrase),
``R_q = T(modifiers)`` when the query names a class ``k_q`` and ``R_q = C_q`` otherwise, and
``class_ok = (k_q = "" or k_q in classes(d))``. Then

* grade 2 (exact) iff ``class_ok`` and ``R_q ⊆ P_d``;
* grade 1 (partial) iff not exact and either (``k_q != ""`` and ``k_q in classes(d)``: the
  right kind of product without every asked attribute) or (``h_q in P_d`` and
  ``|C_q ∩ P_d| >= |C_q| / 2``: the same head noun and at least half the words);
* grade 0 otherwise.

So "velvet accent chair" grades a velvet accent chair 2, a leather accent chair 1, a
velvet dining chair 1 (head "chair" and 2 of 3 words), an accent table 0.

**Candidates** (:func:`retrieve_candidates`): the union of each query's top ``k_bm25``
products by BM25 (over ``product_text(products, text_fields)`` through the analyser
:func:`analyze`: accent folding, plural folding, stopwords removed; scored with a sparse
query-term x term-product product, see :func:`bm25_score_matrix`) and top
``k_cosine`` by cosine of text embeddings, for the *typed* query, as a search engine would
see it. At most ``k_bm25 + k_cosine`` candidates per query.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ltr.errors import ConfigError, DataValidationError
from ltr.rankers.bm25 import BM25, tokenize
from ltr.text.lexical import (
    STOPWORDS,
    _incidence,
    analyze,
    content_tokens,
    singular,
    words,
)

RECIPES = ("class", "modifier_class", "category", "name_ngram", "typo")
CLEAN_RECIPES = RECIPES[:-1]
DEFAULT_SHARES: dict[str, float] = {"class": 0.2, "modifier_class": 0.3, "category": 0.1,
                                    "name_ngram": 0.25, "typo": 0.15}
QUERY_COLUMNS = ["query", "intended", "recipe", "klass", "modifiers", "base_recipe"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _norm(text: object) -> str:
    return " ".join(str(text).lower().split())


def product_classes(products: pd.DataFrame) -> list[list[str]]:
    """Each product's classes: ``product_class`` split on ``|`` (or, without that column,
    the last category segment)."""
    if "product_class" in products:
        raw = products["product_class"].astype("string").fillna("")
        return [[c.strip() for c in s.split("|") if c.strip()] for s in raw]
    last = products["category"].astype("string").fillna("").str.split("/").str[-1]
    return [[s.strip()] if s.strip() else [] for s in last.fillna("")]


def category_segments(products: pd.DataFrame) -> list[list[str]]:
    """Each product's category path split on ``/``."""
    raw = products["category"].astype("string").fillna("")
    return [[s.strip() for s in p.split("/") if s.strip()] for p in raw]


def class_text(name: str) -> str:
    """The query text of a class: its words, each singular ("Accent Chairs" -> "accent
    chair", "Daybeds & Guest Beds" -> "daybed and guest bed")."""
    return " ".join(singular(w) for w in words(name))


# ----------------------------------------------------------------------------- pools
@dataclass
class _Pool:
    """Candidate queries of one recipe in weighted random order: (text, klass, modifiers)."""

    recipe: str
    rows: list[tuple[str, str, str]]
    pos: int = 0

    def next(self) -> tuple[str, str, str] | None:
        if self.pos >= len(self.rows):
            return None
        self.pos += 1
        return self.rows[self.pos - 1]


def _weighted_order(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order without replacement where heavier items tend to come first
    (Efraimidis-Spirakis: sort by ``log(u) / w``, largest first)."""
    u = rng.random(len(weights))
    keys = np.log(np.maximum(u, 1e-300)) / np.maximum(weights, 1e-300)
    return np.argsort(-keys, kind="stable")


def _pool(recipe: str, weights: dict[tuple[str, str, str], float],
          rng: np.random.Generator) -> _Pool:
    items = sorted(weights)  # a fixed order before shuffling: reproducible for a seed
    w = np.array([weights[i] for i in items], dtype=float)
    return _Pool(recipe, [items[i] for i in _weighted_order(w, rng)])


def _class_weights(classes: list[list[str]]) -> Counter[str]:
    weight: Counter[str] = Counter()
    for ks in classes:
        for k in ks:
            weight[k] += 1.0 / len(ks)
    return weight


def _class_items(classes: list[list[str]]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for k, w in _class_weights(classes).items():
        text = class_text(k)
        if text:
            out[(text, k, "")] += w
    return out


def _modifier_ok(token: str, class_tokens: set[str]) -> bool:
    return (len(token) >= 3 and token.isalpha() and token not in STOPWORDS
            and singular(token) not in class_tokens and singular(token) not in STOPWORDS)


def _modifier_items(products: pd.DataFrame, classes: list[list[str]]
                    ) -> dict[tuple[str, str, str], float]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    class_tok = {k: content_tokens(k) for ks in classes for k in ks}
    for title, ks in zip(products["title"].fillna("").astype(str), classes, strict=True):
        toks = set(words(title))
        for k in ks:
            counts[k].update(t for t in toks if _modifier_ok(t, class_tok[k]))
    weight = _class_weights(classes)
    out: dict[tuple[str, str, str], float] = {}
    for k, c in counts.items():
        kept = {t: m for t, m in c.items() if m >= 2}
        total = sum(kept.values())
        for t, m in kept.items():
            out[(f"{t} {class_text(k)}", k, t)] = weight[k] * m / total
    return out


def _category_items(products: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for path in category_segments(products):
        for seg in path:
            toks = words(seg)
            if toks and not any(t.isdigit() for t in toks):
                text = " ".join(toks)
                mods = " ".join(t for t in text.split() if t not in STOPWORDS)
                out[(text, "", mods)] += 1.0 / len(path)
    return out


def title_windows(title: str) -> list[str]:
    """The 2- and 3-token windows of a title usable as ``name_ngram`` queries."""
    toks = words(title)
    bad = [t.isdigit() or len(t) < 2 for t in toks]
    out = []
    for n in (2, 3):
        for i in range(len(toks) - n + 1):
            win = toks[i:i + n]
            if any(bad[i:i + n]) or win[0] in STOPWORDS or win[-1] in STOPWORDS:
                continue
            out.append(" ".join(win))
    return out


def _ngram_items(products: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for title in products["title"].fillna("").astype(str):
        wins = set(title_windows(title))
        for g in wins:
            mods = " ".join(t for t in g.split() if t not in STOPWORDS)
            out[(g, "", mods)] += 1.0 / len(wins)
    return out


def clean_items(products: pd.DataFrame) -> dict[str, dict[tuple[str, str, str], float]]:
    """Every candidate ``(text, klass, modifiers) -> weight`` of each clean recipe."""
    classes = product_classes(products)
    return {
        "class": _class_items(classes),
        "modifier_class": _modifier_items(products, classes),
        "category": _category_items(products),
        "name_ngram": _ngram_items(products),
    }


def _pools(items: dict[str, dict[tuple[str, str, str], float]],
           rng: np.random.Generator) -> dict[str, _Pool]:
    return {r: _pool(r, w, rng) for r, w in items.items()}


# ----------------------------------------------------------------------------- typos
def add_typo(text: str, rng: np.random.Generator) -> str | None:
    """``text`` with one edit (adjacent swap, deletion, insertion or substitution) in one
    word of >= 4 letters; ``None`` if no word qualifies."""
    toks = text.split(" ")
    long = [i for i, w in enumerate(toks) if len(w) >= 4 and w.isalpha()]
    if not long:
        return None
    i = long[int(rng.integers(len(long)))]
    toks[i] = _edit_word(toks[i], rng)
    return " ".join(toks)


def _edit_word(w: str, rng: np.random.Generator) -> str:
    op = ("swap", "delete", "insert", "substitute")[int(rng.integers(4))]
    swaps = [j for j in range(len(w) - 1) if w[j] != w[j + 1]]
    if op == "swap" and swaps:
        j = swaps[int(rng.integers(len(swaps)))]
        return w[:j] + w[j + 1] + w[j] + w[j + 2:]
    if op == "delete":
        j = int(rng.integers(len(w)))
        return w[:j] + w[j + 1:]
    if op == "insert":
        j = int(rng.integers(len(w) + 1))
        return w[:j] + LETTERS[int(rng.integers(26))] + w[j:]
    j = int(rng.integers(len(w)))  # substitution (also the fallback of an impossible swap)
    other = [c for c in LETTERS if c != w[j]]
    return w[:j] + other[int(rng.integers(len(other)))] + w[j + 1:]


@dataclass
class _TypoPool:
    """Typo'd versions of queries drawn from separate orders of the clean pools."""

    bases: dict[str, _Pool]
    weights: dict[str, float]
    rng: np.random.Generator
    recipe: str = "typo"
    last_base: str = field(default="", init=False)

    def next(self) -> tuple[str, str, str, str, str] | None:
        while True:
            open_ = [r for r in self.bases if self.bases[r].pos < len(self.bases[r].rows)]
            if not open_:
                return None
            w = np.array([self.weights[r] for r in open_], dtype=float)
            w = w / w.sum() if w.sum() > 0 else np.full(len(open_), 1.0 / len(open_))
            base = open_[int(self.rng.choice(len(open_), p=w))]
            text, klass, mods = self.bases[base].next()  # type: ignore[misc]
            typo = add_typo(text, self.rng)
            if typo is not None and typo != text:
                return typo, text, klass, mods, base


# ----------------------------------------------------------------------------- drawing
def _targets(n: int, shares: dict[str, float]) -> dict[str, int]:
    """``round(n * share)`` per recipe by largest remainders, summing to ``n``."""
    raw = {r: n * s for r, s in shares.items()}
    out = {r: int(np.floor(v)) for r, v in raw.items()}
    left = n - sum(out.values())
    for r in sorted(raw, key=lambda r: (-(raw[r] - out[r]), RECIPES.index(r)))[:left]:
        out[r] += 1
    return out


def _check_shares(shares: dict[str, float] | None) -> dict[str, float]:
    shares = dict(DEFAULT_SHARES if shares is None else shares)
    for key, value in shares.items():
        if key not in RECIPES:
            raise ConfigError(f"shares.{key}", f"unknown recipe; expected some of {list(RECIPES)}")
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"shares.{key}", f"must be a finite number >= 0, got {value!r}")
    total = sum(shares.values())
    if total <= 0:
        raise ConfigError("shares", "at least one recipe needs a share > 0")
    return {r: shares.get(r, 0.0) / total for r in RECIPES}


@dataclass
class _Drawer:
    """Takes queries from the pools, de-duplicated and with excluded texts skipped."""

    exclude: set[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def fill(self, pool: Any, need: int) -> bool:
        """Take up to ``need`` new queries from ``pool``; True if the pool ran out."""
        added = 0
        while added < need:
            item = pool.next()
            if item is None:
                return True
            if pool.recipe == "typo":
                typed, intended, klass, mods, base = item
            else:
                (typed, klass, mods), intended, base = item, item[0], pool.recipe
            if typed in self.seen or _norm(typed) in self.exclude or \
                    _norm(intended) in self.exclude:
                continue
            self.seen.add(typed)
            self.rows.append({"query": typed, "intended": intended, "recipe": pool.recipe,
                              "klass": klass, "modifiers": mods, "base_recipe": base})
            added += 1
        return False


def generate_queries(products: pd.DataFrame, n: int, seed: int = 0,
                     exclude: Iterable[str] = (),
                     shares: dict[str, float] | None = None) -> pd.DataFrame:
    """``n`` distinct synthetic queries over ``products`` (recipes and weights: module doc).

    Args:
        products: catalog with product_id, title, category and (preferably) product_class.
        n: number of queries wanted.
        seed: seed of the ``numpy.random.Generator`` behind every draw.
        exclude: texts never to produce, compared lower-cased with collapsed spaces; a typo
            query is dropped too when its intended text is excluded.
        shares: recipe -> share (normalised to sum 1); default :data:`DEFAULT_SHARES`.

    Returns:
        One row per query: ``query`` (as typed), ``intended`` (without typo), ``recipe``,
        ``klass`` (the class named, or ""), ``modifiers`` (space-joined content tokens besides
        the class), ``base_recipe`` (the clean recipe a typo was made from). Fewer than ``n``
        rows, with a ``UserWarning``, when the catalog cannot yield ``n`` distinct queries.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError("n", f"must be a positive integer, got {n!r}")
    for col in ("title", "category"):
        if col not in products:
            raise DataValidationError("products", "is needed to generate queries", column=col)
    shares = _check_shares(shares)
    rng = np.random.default_rng(seed)
    items = clean_items(products)
    pools: dict[str, Any] = _pools(items, rng)
    pools["typo"] = _TypoPool(_pools(items, rng), {r: shares[r] for r in CLEAN_RECIPES}, rng)
    drawer = _Drawer({_norm(q) for q in exclude})
    need = _targets(int(n), shares)
    open_ = [r for r in RECIPES if shares[r] > 0]
    while open_ and sum(need.values()) > 0:
        for r in open_:
            before = len(drawer.rows)
            if drawer.fill(pools[r], need[r]):
                open_ = [o for o in open_ if o != r]
            need[r] -= len(drawer.rows) - before
        short = sum(need.values())
        total = sum(shares[r] for r in open_)
        need = _targets(short, {r: shares[r] / total for r in open_}) if open_ and short \
            else {r: 0 for r in RECIPES}
    out = pd.DataFrame(drawer.rows, columns=QUERY_COLUMNS)
    if len(out) < n:
        note = f"only {len(out)} distinct queries could be made from this catalog (asked {n})"
        out.attrs["note"] = note
        warnings.warn(note, stacklevel=2)
    return out


# ----------------------------------------------------------------------------- grading
def _overlap(a: sparse.csr_matrix, b: sparse.csr_matrix, ai: np.ndarray,
             bi: np.ndarray) -> np.ndarray:
    """Per pair ``k``: ``|set a[ai[k]] ∩ set b[bi[k]]|``."""
    return np.asarray(a[ai].multiply(b[bi]).sum(axis=1)).ravel()


def _query_sets(queries: pd.DataFrame) -> tuple[list[set[str]], list[set[str]], list[str]]:
    """``C_q``, ``R_q`` and ``h_q`` of each query (module docstring)."""
    intended = queries["intended"] if "intended" in queries else queries["query"]
    klass = queries["klass"].fillna("").astype(str) if "klass" in queries else \
        pd.Series("", index=queries.index)
    mods = queries["modifiers"] if "modifiers" in queries else pd.Series("", index=queries.index)
    c_sets, r_sets, heads = [], [], []
    for text, k, m in zip(intended.astype(str), klass, mods, strict=True):
        c = content_tokens(text)
        m = " ".join(m) if isinstance(m, list | tuple | np.ndarray) else str(m or "")
        c_sets.append(c)
        r_sets.append(content_tokens(m) if k.strip() else c)
        toks = [s for s in map(singular, words(text)) if s not in STOPWORDS]
        heads.append(toks[-1] if toks else "")
    return c_sets, r_sets, heads


def _grading_text(products: pd.DataFrame, classes: list[list[str]]) -> list[str]:
    """``title + classes + category path`` of each product: the text behind ``P_d``."""
    titles = products["title"].fillna("").astype(str)
    paths = products["category"].astype("string").fillna("").astype(str)
    return [f"{t} {' '.join(k)} {c}" for t, k, c in zip(titles, classes, paths, strict=True)]


def true_grades(queries: pd.DataFrame, candidates: pd.DataFrame,
                products: pd.DataFrame) -> np.ndarray:
    """Grade 0/1/2 of each candidate row (query, product_id), by the rule of the module
    docstring, on the intended query.

    ``queries`` needs ``query`` and (optional) ``intended``, ``klass``, ``modifiers``;
    ``candidates`` needs ``query`` (typed, as in ``queries``) and ``product_id``.
    """
    for col in ("query", "product_id"):
        if col not in candidates:
            raise DataValidationError("candidates", "is needed to grade", column=col)
    q_index = pd.Index(queries["query"])
    qi = q_index.get_indexer(candidates["query"])
    di = pd.Index(products["product_id"]).get_indexer(candidates["product_id"])
    for idx, col in ((qi, "query"), (di, "product_id")):
        bad = np.flatnonzero(idx < 0)
        if len(bad):
            where = "queries" if col == "query" else "products"
            raise DataValidationError("candidates", f"values not in the {where} table",
                                      column=col, rows=bad[:5].tolist(),
                                      values=candidates[col].iloc[bad[:5]].tolist())
    c_sets, r_sets, heads = _query_sets(queries)
    vocab = {t: j for j, t in enumerate(sorted(set().union(*c_sets, *r_sets, heads) - {""}))}
    classes = product_classes(products)
    p_mat = _incidence([content_tokens(t) for t in _grading_text(products, classes)], vocab)
    c_hit = _overlap(_incidence(c_sets, vocab), p_mat, qi, di)
    r_hit = _overlap(_incidence(r_sets, vocab), p_mat, qi, di)
    h_hit = _overlap(_incidence([[h] for h in heads], vocab), p_mat, qi, di) > 0
    c_len = np.array([len(s) for s in c_sets])[qi]
    r_len = np.array([len(s) for s in r_sets])[qi]
    klass = (queries["klass"].fillna("").astype(str).str.strip().str.casefold()
             if "klass" in queries else pd.Series("", index=queries.index)).to_numpy()
    k_vocab = {k: j for j, k in enumerate(sorted(set(klass) - {""}))}
    k_match = _overlap(_incidence([[k] for k in klass], k_vocab),
                       _incidence([[c.casefold() for c in ks] for ks in classes], k_vocab),
                       qi, di) > 0
    named = klass[qi] != ""
    exact = (~named | k_match) & (r_hit >= r_len) & (c_len > 0)
    partial = (named & k_match) | (h_hit & (2 * c_hit >= c_len) & (c_len > 0))
    return np.where(exact, 2, np.where(partial, 1, 0)).astype(np.int64)


# ----------------------------------------------------------------------------- retrieval
def bm25_score_matrix(bm25: BM25, queries: Sequence[str]) -> sparse.csr_matrix:
    """``[n_queries, n_docs]`` BM25 scores, equal to :meth:`BM25.score` for every pair.

    ``S = Q W`` with ``Q[q, t]`` the count of term ``t`` in query ``q`` and
    ``W[t, d] = idf_t f_td (k1 + 1) / (f_td + k1 (1 - b + b |d| / avgdl))``: only products
    sharing a term with the query get a non-zero score.
    """
    vocab = {t: j for j, t in enumerate(sorted(bm25.idf))}
    rows, cols, vals = [], [], []
    avg = max(bm25.avg_len, 1e-9)
    for d, doc in enumerate(bm25.docs):
        norm = bm25.k1 * (1 - bm25.b + bm25.b * bm25.lengths[d] / avg)
        for t, f in doc.items():
            rows.append(vocab[t])
            cols.append(d)
            vals.append(bm25.idf[t] * f * (bm25.k1 + 1) / (f + norm))
    w = sparse.csr_matrix((vals, (rows, cols)), shape=(len(vocab), bm25.n_docs))
    q_rows, q_cols = [], []
    for i, q in enumerate(queries):
        for t in tokenize(q):
            j = vocab.get(t)
            if j is not None:
                q_rows.append(i)
                q_cols.append(j)
    q = sparse.csr_matrix((np.ones(len(q_rows)), (q_rows, q_cols)),
                          shape=(len(queries), len(vocab)))  # duplicates add up: counts
    return (q @ w).tocsr()


def _top_k_sparse(scores: sparse.csr_matrix, k: int) -> list[np.ndarray]:
    """Per row, the column indices of the (up to) ``k`` largest non-zero scores, best
    first; ties by column order."""
    out = []
    for i in range(scores.shape[0]):
        lo, hi = scores.indptr[i], scores.indptr[i + 1]
        cols, vals = scores.indices[lo:hi], scores.data[lo:hi]
        keep = vals > 0
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:k]
        out.append(cols[order])
    return out


def _top_k_cosine(q_emb: np.ndarray, p_emb: np.ndarray, k: int,
                  chunk: int = 1024) -> list[np.ndarray]:
    """Per query, the ``k`` products of largest cosine, best first (matrix product over
    the whole catalog, ``chunk`` queries at a time)."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    q_emb, p_emb = unit(q_emb), unit(p_emb)
    k = min(k, len(p_emb))
    out: list[np.ndarray] = []
    for s in range(0, len(q_emb), chunk):
        sims = q_emb[s:s + chunk] @ p_emb.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
            np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
        top_s = np.take_along_axis(sims, top, axis=1)
        out.extend(np.take_along_axis(top, np.argsort(-top_s, axis=1, kind="stable"), axis=1))
    return out


def _hits_frame(texts: Sequence[str], hits: list[np.ndarray], pid: np.ndarray) -> pd.DataFrame:
    lengths = np.array([len(h) for h in hits], dtype=int)
    idx = np.concatenate(hits) if hits else np.zeros(0, dtype=int)
    return pd.DataFrame({"query": np.repeat(np.asarray(texts, dtype=object), lengths),
                         "product_id": pid[idx.astype(int)]})


def retrieve_candidates(queries: pd.DataFrame | Sequence[str], products: pd.DataFrame,
                        k_bm25: int = 50, k_cosine: int = 50, encoder: Any = None,
                        text_fields: Sequence[str] = ("product_class",)) -> pd.DataFrame:
    """Each query's candidates: top ``k_bm25`` by BM25 ∪ top ``k_cosine`` by cosine.

    Args:
        queries: a table with a ``query`` column (the typed text), or the texts.
        products: the catalog; product text = ``ltr.text.product_text(products,
            text_fields)`` (title + fields); BM25 indexes it through :func:`analyze`.
        k_bm25, k_cosine: list lengths of the two retrievers (0 turns one off).
        encoder: an ``ltr.text.TextEncoder``; ``None`` = BM25 only.

    Returns:
        Columns ``query``, ``product_id``, ``retriever`` (``bm25``, ``cosine`` or ``both``),
        BM25 hits first in rank order, then cosine-only hits in rank order.
    """
    from ltr.text import product_text

    texts = list(dict.fromkeys(
        (queries["query"] if isinstance(queries, pd.DataFrame) else pd.Series(queries))
        .astype(str)))
    for name, k in (("k_bm25", k_bm25), ("k_cosine", k_cosine)):
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ConfigError(name, f"must be an integer >= 0, got {k!r}")
    pid = products["product_id"].to_numpy()
    ptext = product_text(products.reset_index(drop=True), tuple(text_fields))
    frames = []
    if k_bm25 > 0:
        bm25 = BM25(list(range(len(pid))), [analyze(t) for t in ptext])
        scores = bm25_score_matrix(bm25, [analyze(t) for t in texts])
        frames.append(_hits_frame(texts, _top_k_sparse(scores, k_bm25), pid)
                      .assign(retriever="bm25"))
    if encoder is not None and k_cosine > 0:
        p_emb = encoder.encode_texts(list(ptext)).rows()
        q_emb = encoder.encode_texts(texts).rows()
        frames.append(_hits_frame(texts, _top_k_cosine(q_emb, p_emb, k_cosine), pid)
                      .assign(retriever="cosine"))
    if not frames:
        return pd.DataFrame({"query": [], "product_id": [], "retriever": []})
    both = pd.concat(frames, ignore_index=True)
    n_src = both.groupby(["query", "product_id"], sort=False)["retriever"].transform("size")
    both.loc[n_src > 1, "retriever"] = "both"
    return both.drop_duplicates(["query", "product_id"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- together
def synthetic_query_candidates(
    products: pd.DataFrame, n: int, seed: int = 0, exclude: Iterable[str] = (),
    encoder: Any = None, k_bm25: int = 50, k_cosine: int = 50,
    shares: dict[str, float] | None = None, text_fields: Sequence[str] = ("product_class",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate queries, retrieve their candidates and grade them.

    Returns:
        ``(candidates, queries)``: candidates (query, product_id, grade, relevance =
        grade / 2, retriever) of the kept queries; queries = :func:`generate_queries` plus
        ``n_candidates``, ``n_exact``, ``n_partial`` and ``kept`` (False for a query none of
        whose candidates has grade >= 1: nothing to find, dropped from the candidates).
    """
    queries = generate_queries(products, n, seed=seed, exclude=exclude, shares=shares)
    if queries.empty:
        raise DataValidationError("products", "yield no synthetic query")
    cand = retrieve_candidates(queries, products, k_bm25=k_bm25, k_cosine=k_cosine,
                               encoder=encoder, text_fields=text_fields)
    cand["grade"] = true_grades(queries, cand, products)
    per_q = cand.groupby("query", sort=False)["grade"]
    queries["n_candidates"] = queries["query"].map(per_q.size()).fillna(0).astype("int64")
    queries["n_exact"] = queries["query"].map(per_q.agg(lambda g: int((g == 2).sum()))) \
        .fillna(0).astype("int64")
    queries["n_partial"] = queries["query"].map(per_q.agg(lambda g: int((g == 1).sum()))) \
        .fillna(0).astype("int64")
    queries["kept"] = (queries["n_exact"] + queries["n_partial"]) > 0
    if not queries["kept"].any():
        raise DataValidationError("products", "no synthetic query has a candidate of grade >= 1")
    cand = cand[cand["query"].isin(queries.loc[queries["kept"], "query"])].copy()
    cand["relevance"] = cand["grade"] / 2.0
    cols = ["query", "product_id", "grade", "relevance", "retriever"]
    return cand[cols].reset_index(drop=True), queries
