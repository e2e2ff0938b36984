"""The main job on the bundled sample data (run by `make demo`).

1. validate and summarise the bundled WANDS sample log;
2. simulate a fresh log over the same catalog and load it back (the simulator works);
3. derive relevance labels from the sample log (`ltr label`), with agreement to the human
   WANDS grades;
4. train the multi-task MMoE with the queries of fold 0 held out (`ltr fit`), and test it
   on the held-out queries' sessions (per-task MRR), their judged pools (new queries:
   NDCG@10 against the human grades, customer unknown) and the judged pools of the
   queries it trained on (known queries), beside the training labels on the same pools;
5. score the held-out pools (`ltr predict`) and compare with the zero-shot encoder cosine
   (`ltr evaluate`: side-by-side table, paired bootstrap p-values).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from ltr.cli import main as ltr

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"
RUNS = ROOT / "runs" / "demo"


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ ltr {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = ltr(argv)
    if rc != 0:
        sys.exit(rc)
    print(f"({time.perf_counter() - t0:.1f}s)", flush=True)


def cosine_predictions(pred: pd.DataFrame, out: Path) -> Path:
    """Zero-shot encoder cosine (title + product class) for the same (query, product)s."""
    from ltr.io import read_table
    from ltr.labels.similarity import pair_similarity
    from ltr.text import TextConfig, TextEncoder

    enc = TextEncoder.from_config(TextConfig(product_fields=("product_class",),
                                             cache_dir=str(ROOT / ".cache" / "ltr-text"),
                                             progress=False))
    products = read_table(SAMPLE / "products.parquet")
    cos = pair_similarity(enc, products, pred["query"].to_numpy(), pred["product_id"].to_numpy(),
                          ("product_class",))
    frame = pred[["query", "product_id"]].assign(score=cos)
    frame.to_parquet(out, index=False)
    return out


def print_score_choice(checkpoint: Path) -> None:
    """The ranking score the MMoE chose on its validation lists (saved with its weights)."""
    from ltr.rankers.mmoe import from_lightning_checkpoint

    module = from_lightning_checkpoint(checkpoint).module_
    for case in ("cold", "warm"):
        w = getattr(module, f"score_weights_{case}").tolist()
        mix = " + ".join(f"{v:.3g} x {n}" for n, v in zip(module.output_names, w, strict=True)
                         if v) or "none"
        what = "new queries" if case == "cold" else "known queries"
        print(f"ranking score for {what} ({case}), chosen on validation: {mix}")


def rank_with_package(package: Path, pred: pd.DataFrame) -> None:
    """What a ranking service does: load the package, rank one held-out query's
    candidates for a known customer, plus a product the catalog has never seen."""
    from ltr.serving import RankingService

    print("\n== 7. rank a request with the package (ltr.serving.RankingService)", flush=True)
    service = RankingService(package)
    query = sorted(pred["query"].unique())[0]
    candidates = pred.loc[pred["query"] == query, "product_id"].tolist()[:30]
    new = {"product_id": "new-1", "title": f"{query} (new arrival)"}
    customer = service.assembler.customers.columns["customer_id"][0]
    t0 = time.perf_counter()
    ranking = service.rank(query, [*candidates, new], customer=customer, top_k=5)
    ms = 1000 * (time.perf_counter() - t0)
    print(f"query {query!r}, {len(candidates) + 1} candidates, customer {customer}: "
          f"top 5 in {ms:.1f} ms")
    for item in ranking.products:
        tasks = ", ".join(f"{k}={v:.2f}" for k, v in item.outputs.items())
        print(f"  {str(item.product_id):>8}  score={item.score:.3f}  ({tasks})")


def main() -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    step("1. the bundled sample log", ["summary", "--data", str(SAMPLE)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim"
        step("2. simulate a log over the sample catalog",
             ["simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--judgements", str(SAMPLE / "judgements.parquet"),
              "--config", str(ROOT / "configs" / "simulate_wands.yaml"),
              "--set", "n_sessions=2000", "--set", "seed=1", "--out", str(out)])
        step("   ... and load it back", ["summary", "--data", str(out)])
    step("3. relevance labels from clicks, positions and text",
         ["label", "--config", str(ROOT / "configs" / "labels" / "wands.yaml"),
          "--set", f"out={RUNS / 'labels'}"])
    cfg = str(ROOT / "configs" / "mmoe.yaml")
    common = ["--config", cfg, "--data.folds", "5", "--data.fold", "0"]
    started = time.time()
    step("4. train the MMoE with fold 0's queries held out", ["fit", *common])
    # the checkpoint callback of configs/mmoe.yaml writes under runs/mmoe/
    best = max((p for p in (ROOT / "runs" / "mmoe").rglob("best-*.ckpt")
                if p.stat().st_mtime >= started), key=lambda p: p.stat().st_mtime)
    step("   test: held-out sessions (MRR), judged pools of the held-out (new) queries and "
         "of the trained-on (known) queries, against the human grades",
         ["test", *common, "--ckpt_path", str(best)])
    print_score_choice(best)
    pred_path = ROOT / "runs" / "mmoe" / "predictions.parquet"  # configs/mmoe.yaml
    step("5. score the held-out judged pools",
         ["predict", *common, "--ckpt_path", str(best), "--data.predict_split", "pools"])
    pred = pd.read_parquet(pred_path)
    cos_path = cosine_predictions(pred, RUNS / "pools_cosine.parquet")
    labels = pd.read_parquet(SAMPLE / "judgements.parquet")
    labels = labels[labels["query"].isin(pred["query"].unique())][["query", "product_id",
                                                                    "grade"]]
    labels_path = RUNS / "pools_human_grades.parquet"
    labels.to_parquet(labels_path, index=False)
    step("   compare with the zero-shot encoder cosine on the human grades",
         ["evaluate", "--labels", str(labels_path), "--group-col", "query",
          "--predictions", f"mmoe={pred_path}", "--predictions", f"cosine={cos_path}",
          "--baseline", "cosine", "--gain", "linear", "--out", str(RUNS / "report")])
    package = RUNS / "package"
    step("6. export the trained model as a package for ranking services",
         ["export", "--checkpoint", str(best), "--out", str(package), "--overwrite"])
    rank_with_package(package, pred)
    print(f"\nreports: {RUNS / 'labels' / 'report' / 'report.md'}, "
          f"{RUNS / 'report'}; model package: {package}")


if __name__ == "__main__":
    main()
