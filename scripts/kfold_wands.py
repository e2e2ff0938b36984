"""Query-level k-fold evaluation of the MMoE and its ablations on the bundled sample.

Run: python scripts/kfold_wands.py [--folds 5] [--variants full,tabular_only,...]

For each fold, the fold's ~8 queries are held out: none of their clicks, labels or
history features reach training (ltr.training.prepare). Each variant is trained on the
other queries (early stopping on val/ndcg@10 of training-query validation sessions) and
evaluated on
* the held-out queries' judged pools against the human WANDS grades (NDCG@10,
  exponential and linear gain), customer unknown;
* every session of the held-out queries (per-task MRR@10).
References that need no training are scored on the same pools: zero-shot encoder cosine
(product name only, and name + product class) and BM25 over the product name.

Writes docs/results/kfold_wands.csv and .md (mean +- std over folds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ltr.labels.similarity import pair_similarity
from ltr.markdown import markdown_table
from ltr.metrics import ndcg, neutral_order, reorder
from ltr.rankers.base import pair_cosine
from ltr.rankers.bm25 import BM25
from ltr.training.datamodule import LtrDataModule
from ltr.training.experiment import fit_and_test

ROOT = Path(__file__).resolve().parents[1]
TEXT = {"model_name": "all-MiniLM-L6-v2", "product_fields": ["product_class"],
        "cache_dir": str(ROOT / ".cache" / "ltr-text"), "progress": False}
BASE = {"tasks": ["click", "add_to_cart", "purchase", "relevance"],
        "score_weights": {"click": 0.5, "add_to_cart": 0.5, "purchase": 0.5, "relevance": 1.0},
        "lr": 0.002}
VARIANTS = {
    "full": {},
    "tabular_only": {"use_text": False},
    "no_relevance_task": {"tasks": ["click", "add_to_cart", "purchase"],
                          "score_weights": {"click": 1.0, "add_to_cart": 1.0, "purchase": 1.0}},
    "no_interactions": {"interactions": ["concat"]},
    "uniform_sampling": {"_sampling": "uniform"},
    "finetune_top1": {"trainable_layers": 1},
    "cosine_interaction": {"interactions": ["cosine"]},
    "regularised": {"lr": 0.0005, "dropout": 0.3, "weight_decay": 0.001},
    "no_class_feature": {"_features": "no_product_class"},
    "relevance_score": {"score_weights": {"click": 0.0, "add_to_cart": 0.0, "purchase": 0.0,
                                          "relevance": 1.0}},
    "cosine_relevance_score": {"interactions": ["cosine"],
                               "score_weights": {"click": 0.0, "add_to_cart": 0.0,
                                                 "purchase": 0.0, "relevance": 1.0}},
}


def references(dm: LtrDataModule, products: pd.DataFrame) -> dict[str, float]:
    """NDCG@10 of the no-training references on the fold's judged pools."""
    data = dm.prepared
    pools = data.pools
    human = np.nan_to_num(pools.labels["human"])
    valid = pools.mask & np.isfinite(pools.labels["human"])
    queries = np.array(data.query_texts, dtype=object)[pools.query_text]
    slot_queries = np.broadcast_to(queries[:, None], pools.mask.shape)[pools.mask]
    name_cos = np.zeros(pools.mask.shape)
    name_cos[pools.mask] = pair_similarity(dm._encoder, products, slot_queries,
                                           pools.product_id[pools.mask])  # title only
    bm25 = BM25(products["product_id"].tolist(), products["title"].astype(str).tolist())
    bm25_scores = np.stack([bm25.score(q, row.tolist()) for q, row in
                            zip(queries, pools.product_id, strict=True)])
    out = {}
    order = neutral_order(pools.tie_key, pools.mask)  # ties: never the file order
    human, valid = reorder(order, human, valid)
    for label, scores in (("cosine_name", name_cos),
                          ("cosine_name_class", pair_cosine(pools, data)),
                          ("bm25_name", bm25_scores)):
        (scores,) = reorder(order, scores)
        for gain in ("exponential", "linear"):
            out[f"{label}/ndcg@10_{gain}"] = float(ndcg(scores, human, valid, k=10,
                                                        gain=gain).mean)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--only-fold", type=int, default=None,
                        help="run just this fold (e.g. for slow variants)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "kfold_wands"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    from ltr.io import read_table

    products = read_table(ROOT / "data_samples" / "wands" / "products.parquet")
    rows = []
    folds = range(args.folds) if args.only_fold is None else [args.only_fold]
    for fold in folds:
        t0 = time.perf_counter()
        dm = LtrDataModule(data_dir=str(ROOT / "data_samples" / "wands"), tasks=BASE["tasks"],
                           text=TEXT, folds=args.folds, fold=fold, seed=0)
        dm.setup()
        ref = references(dm, products)
        for name, value in ref.items():
            model, metric = name.split("/")
            rows.append({"fold": fold, "model": model, "metric": metric, "value": value})
        for variant in args.variants.split(","):
            spec = {**BASE, **VARIANTS[variant]}
            sampling = spec.pop("_sampling", "diverse")
            variant_dm = dm
            if spec.pop("_features", None) == "no_product_class":
                from ltr.features.defaults import DEFAULT_FEATURES

                features = {**DEFAULT_FEATURES, "categorical": [
                    c for c in DEFAULT_FEATURES["categorical"] if c != "product_class"]}
                variant_dm = LtrDataModule(data_dir=dm.hparams.data_dir, tasks=BASE["tasks"],
                                           text=TEXT, folds=args.folds, fold=fold, seed=0,
                                           features=features)
            res = fit_and_test(variant_dm, spec, max_epochs=args.max_epochs, sampling=sampling)
            # the human-grade NDCG with linear gain too
            for metric, value in res.items():
                rows.append({"fold": fold, "model": variant, "metric": metric, "value": value})
            print(f"fold {fold} {variant}: " + json.dumps({k: round(v, 4) for k, v in res.items()}),
                  flush=True)
        print(f"fold {fold} done in {time.perf_counter() - t0:.0f}s", flush=True)
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    table = df.groupby(["model", "metric"])["value"].agg(["mean", "std", "count"]).reset_index()
    keep = ["test/human_ndcg@10", "test/human_ndcg@10_linear", "test/mrr@10_click",
            "test/mrr@10_add_to_cart",
            "test/mrr@10_purchase", "ndcg@10_exponential", "ndcg@10_linear", "train_seconds"]
    table = table[table["metric"].isin(keep)]
    wide = table.assign(cell=table["mean"].map("{:.3f}".format) + " ± " +
                        table["std"].fillna(0).map("{:.3f}".format)) \
        .pivot(index="model", columns="metric", values="cell").fillna("")
    md = markdown_table(wide.reset_index())
    out.with_suffix(".md").write_text(f"# Query-level {args.folds}-fold results on the WANDS "
                                      f"sample\n\n`python scripts/kfold_wands.py`\n\n{md}\n")
    print(wide.to_string())


if __name__ == "__main__":
    main()
