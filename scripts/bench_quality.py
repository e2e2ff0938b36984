"""Ranking quality where it counts: queries the log knows and queries it has never seen.

Run: python scripts/bench_quality.py [--quick] [--rankers default|all|a,b,...]
                                     [--variants finetune,lce,distill,...]

Two benchmarks, one table (NDCG@10 against graded relevance, linear and 2^g - 1 gain):

* **Synthetic queries over the WANDS catalog** (``ltr simulate --synthetic-queries``):
  2,000 queries generated from the catalog text (product class, category path, name
  n-grams, typos; none equal to a WANDS query), candidates retrieved by BM25 + cosine,
  graded by the documented lexical rule, sessions simulated over them. Every ranker trains
  on this log (time split) and is evaluated on
  - ``synthetic/new: WANDS``: the 40 human-judged WANDS queries, none in the log (their
    judged pools, the human grades);
  - ``synthetic/known``: the judged pools (simulated truth) of the synthetic queries the
    log covers, beside the training labels themselves (``labels``);
  - ``synthetic/new: synthetic``: generated queries that never reached the log.
  The two synthetic-truth cases grade with the same word-level rule the lexical features
  use, which flatters them; the WANDS human grades do not.
* **WANDS query-level k-fold** on the bundled sample: ``wands/new`` pools every fold's
  held-out queries (each query once), ``wands/known`` the training queries' pools (each
  query once per fold it trained in).

Per case, every ranker's per-query NDCG@10 is compared with the *best zero-shot
reference* of that case (the best of the MiniLM cosine, BM25 and query-term coverage,
picked on the case itself): mean difference and its paired bootstrap 95% interval over
queries. ``hybrid`` (cosine + w x coverage, w calibrated on clicks) is learned, not
zero-shot. Every figure comes from the one evaluation engine
(:mod:`ltr.evaluation.engine`): ties in a ranker's scores fall in the neutral order of
:mod:`ltr.metrics.ties`, never in the order the lists were stored in (logged position,
judgement file).

Writes docs/results/quality.md, quality.csv and per-query scores (quality_queries.csv).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ltr.cli import main as ltr
from ltr.evaluation.engine import per_list
from ltr.evaluation.significance import paired_bootstrap
from ltr.markdown import markdown_table
from ltr.rankers.base import make_ranker
from ltr.training.datamodule import LtrDataModule

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"
TEXT = {"model_name": "all-MiniLM-L6-v2", "product_fields": ["product_class"],
        "cache_dir": str(ROOT / ".cache" / "ltr-text"), "progress": False}
ZERO_SHOT = ("cosine", "bm25", "lexical")
OUTPUTS = False  # --outputs: also score each MMoE's relevance, click and tuned cosine alone
REFERENCES = (*ZERO_SHOT, "hybrid")
DEFAULT_RANKERS = ("mmoe", "mmoe_tabular", "xgboost", "dcnv2")
ALL_RANKERS = (*DEFAULT_RANKERS, "tabnet", "ft_transformer")
VARIANTS: dict[str, dict[str, Any]] = {  # MMoE variants for the text-learning study
    "finetune": {"trainable_layers": 1},
    "lce": {"trainable_layers": 1, "lce_weight": 1.0},
    "shared": {"trainable_layers": 1, "tuned_tower": "shared"},
    "distill": {"distill": {"rounds": 2, "alpha": 0.5, "every": 2}},
    "fixed_score": {"score_selection": "fixed",
                    "score_weights": {"click": 0.5, "add_to_cart": 0.5, "purchase": 0.5,
                                      "relevance": 1.0}},
}


# ----------------------------------------------------------------------------- data
def synthetic_log(out: Path, n_queries: int, n_sessions: int, rebuild: bool) -> Path:
    """The synthetic-query log over the sample catalog, with judgements = the WANDS human
    grades (40 queries, never in the log) + the simulated truth of the synthetic queries."""
    if rebuild and out.exists():
        shutil.rmtree(out)
    if not (out / "impressions.parquet").exists():
        rc = ltr(["simulate", "--catalog", str(SAMPLE / "products.parquet"),
                  "--synthetic-queries", str(n_queries),
                  "--exclude-queries", str(SAMPLE / "judgements.parquet"),
                  "--config", str(ROOT / "configs" / "simulate_wands.yaml"),
                  "--set", f"n_sessions={n_sessions}", "--text-cache", TEXT["cache_dir"],
                  "--out", str(out)])
        if rc != 0:
            raise SystemExit(rc)
    human = pd.read_parquet(SAMPLE / "judgements.parquet")[["query", "product_id", "grade"]]
    truth = pd.read_parquet(out / "ground_truth" / "relevance.parquet")
    truth = truth[["query", "product_id", "grade"]].astype({"query": str})
    if set(human["query"]) & set(truth["query"]):
        raise SystemExit("a WANDS query was generated as a synthetic query")
    judged = pd.concat([human, truth], ignore_index=True).astype({"grade": "int64"})
    judged.to_parquet(out / "judgements.parquet", index=False)
    return out


# ----------------------------------------------------------------------------- scoring
def evaluate_case(case: str, lists, data, rankers: dict[str, Any], rows: list[dict],
                  extra: dict[str, np.ndarray] | None = None, unit: str = "") -> None:
    """Score ``lists`` (judged pools, labels["human"]) with every ranker; append one row per
    (ranker, query) to ``rows``."""
    queries = np.asarray(data.query_texts, dtype=object)[lists.query_text]
    scored = {name: r.score(lists, data) for name, r in rankers.items()}
    if OUTPUTS:  # each learned or tuned output of the MMoEs alone
        for name, r in rankers.items():
            if hasattr(r, "all_outputs"):
                outs = r.all_outputs(lists, data)
                scored.update({f"{name}/{k}": v for k, v in outs.items()
                               if k in ("relevance", "tuned_cosine", "click")})
    scored.update(extra or {})
    for name, scores in scored.items():  # the one evaluation engine, neutral ties
        linear = per_list(scores, lists, "human_ndcg@10_linear")
        exp = per_list(scores, lists, "human_ndcg@10")
        for i, q in enumerate(queries):
            if np.isfinite(linear[i]):
                rows.append({"case": case, "ranker": name, "query": f"{unit}{q}",
                             "ndcg@10": linear[i], "ndcg@10_exp": exp[i]})


def fit_rankers(data, names: list[str], variants: list[str], max_epochs: int, log
                ) -> dict[str, Any]:
    out = {}
    for name in [*REFERENCES, *names, *variants]:
        params = {} if name not in VARIANTS else dict(VARIANTS[name])
        kind = "mmoe" if name in VARIANTS else name
        if kind in ("mmoe", "mmoe_tabular"):
            params["max_epochs"] = max_epochs
        t0 = time.perf_counter()
        out[name] = make_ranker(kind, params).fit(data)
        log(f"  {name}: fitted in {time.perf_counter() - t0:.0f}s")
        module = getattr(out[name], "module_", None)
        if module is not None and getattr(module, "selection_report", None):
            weights = {case: {k: round(v, 3) for k, v in r["weights"].items() if v}
                       for case, r in module.selection_report.items()}
            log(f"    score: {json.dumps(weights)}")
    return out


# ----------------------------------------------------------------------------- summary
def summarise(rows: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    out = []
    for case, part in rows.groupby("case", sort=False):
        wide = part.pivot_table(index="query", columns="ranker", values="ndcg@10")
        wide_exp = part.pivot_table(index="query", columns="ranker", values="ndcg@10_exp")
        wide = wide.dropna(axis=0, how="any")
        refs = [r for r in ZERO_SHOT if r in wide]
        best = max(refs, key=lambda r: wide[r].mean())
        for ranker in wide.columns:
            test = paired_bootstrap(wide[ranker].to_numpy(), wide[best].to_numpy(),
                                    n_resamples=n_boot, seed=0)
            out.append({"case": case, "ranker": ranker, "queries": len(wide),
                        "ndcg@10": wide[ranker].mean(),
                        "ndcg@10 (2^g-1)": wide_exp.loc[wide.index, ranker].mean(),
                        "best zero-shot": best, "delta": test.delta,
                        "ci95": f"[{test.ci_low:+.4f}, {test.ci_high:+.4f}]",
                        "p": test.p_value})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="600 synthetic queries, 12,000 sessions, 3 folds, 3 epochs")
    parser.add_argument("--synthetic-queries", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=40000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rankers", default="default",
                        help="default, all, or a comma-separated list of ranker names")
    parser.add_argument("--variants", default="",
                        help=f"MMoE variants to add: {', '.join(VARIANTS)}")
    parser.add_argument("--skip", default="", help="synthetic and/or wands")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--bootstrap", type=int, default=5000)
    parser.add_argument("--rebuild", action="store_true", help="simulate the log again")
    parser.add_argument("--outputs", action="store_true",
                        help="also score each MMoE's relevance, click and tuned-cosine "
                             "outputs alone (rows 'name/output')")
    parser.add_argument("--work", default=str(ROOT / "runs" / "quality"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "quality"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    global OUTPUTS
    OUTPUTS = args.outputs
    if args.quick:
        args.synthetic_queries, args.sessions, args.folds = 600, 12000, 3
        args.max_epochs = 3
    names = list(DEFAULT_RANKERS if args.rankers == "default" else ALL_RANKERS
                 if args.rankers == "all" else [r for r in args.rankers.split(",") if r])
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variant(s) {bad}; known: {list(VARIANTS)}")
    skip = set(args.skip.split(","))
    work = Path(args.work)
    rows: list[dict] = []
    t_all = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    if "synthetic" not in skip:
        folder = synthetic_log(work / f"synthetic_{args.synthetic_queries}_{args.sessions}",
                               args.synthetic_queries, args.sessions, args.rebuild)
        t0 = time.perf_counter()
        data = LtrDataModule(data_dir=str(folder), text=TEXT, seed=0).prepared
        log(f"synthetic benchmark prepared in {time.perf_counter() - t0:.0f}s: "
            f"{json.dumps(data.info)}")
        rankers = fit_rankers(data, names, variants, args.max_epochs, log)
        wands = set(pd.read_parquet(SAMPLE / "judgements.parquet")["query"])
        pools = data.pools
        q = np.asarray(data.query_texts, dtype=object)[pools.query_text]
        is_wands = np.array([x in wands for x in q])
        evaluate_case("synthetic/new: WANDS human", pools.subset(np.flatnonzero(is_wands)),
                      data, rankers, rows)
        if (~is_wands).any():
            evaluate_case("synthetic/new: synthetic", pools.subset(np.flatnonzero(~is_wands)),
                          data, rankers, rows)
        known = data.known_pools
        evaluate_case("synthetic/known", known, data, rankers, rows,
                      {"labels": np.where(np.isfinite(known.labels["label"]),
                                          known.labels["label"], -1.0)})
    if "wands" not in skip:
        for fold in range(args.folds):
            t0 = time.perf_counter()
            data = LtrDataModule(data_dir=str(SAMPLE), text=TEXT, folds=args.folds,
                                 fold=fold, seed=0).prepared
            log(f"WANDS fold {fold}: prepared in {time.perf_counter() - t0:.0f}s")
            rankers = fit_rankers(data, names, variants, args.max_epochs, log)
            evaluate_case("wands/new", data.pools, data, rankers, rows)
            known = data.known_pools
            evaluate_case("wands/known", known, data, rankers, rows,
                          {"labels": np.where(np.isfinite(known.labels["label"]),
                                              known.labels["label"], -1.0)},
                          unit=f"fold{fold}:")
    frame = pd.DataFrame(rows)
    table = summarise(frame, args.bootstrap)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out.with_name(out.name + "_queries.csv"), index=False)
    table.to_csv(out.with_suffix(".csv"), index=False)
    shown = table.assign(**{c: table[c].map("{:.4f}".format)
                            for c in ("ndcg@10", "ndcg@10 (2^g-1)", "p")},
                         delta=table["delta"].map("{:+.4f}".format))
    md = (f"# Ranking quality on known and new queries\n\n`python scripts/bench_quality.py "
          f"{' '.join(a for a in ('--quick' if args.quick else '',) if a)}"
          f"{' --variants ' + args.variants if args.variants else ''}"
          f"{' --rankers ' + args.rankers if args.rankers != 'default' else ''}"
          f"{' --outputs' if args.outputs else ''}`"
          f" ({time.perf_counter() - t_all:.0f} s)\n\n"
          "NDCG@10 per query (linear gain unless marked), `delta` = mean difference to the "
          "case's best zero-shot reference, paired bootstrap 95% interval over queries.\n\n"
          + markdown_table(shown) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
