"""Time and peak memory of ``ltr export`` on a large catalog: from the fitted feature
pipeline (the default) versus preparing the training data again (``--config``, what every
export did before the pipeline existed).

    python scripts/bench_export.py                       # 8 x the WANDS sample catalog
    python scripts/bench_export.py --copies 2 --sessions 5000   # a quick run

Steps, all in this one run:

1. A catalog of ``--copies`` x the 6,482 products of ``data_samples/wands`` (51,856 for 8):
   each copy gets new product ids and its names a copy suffix, so every product text is
   distinct.
2. ``ltr simulate --synthetic-queries`` over it (BM25 candidates only) with
   ``--sessions`` sessions.
3. An MMoE with text (the data section of ``configs/benchmark.yaml``, this data folder) fitted
   for one epoch and saved as a ranker folder (with its ``pipeline/``).
4. One warm-up export (it encodes the catalog products training never saw into the text
   cache; its time is printed as ``first export``), then each way of exporting in a fresh
   process, started from another working directory, timed by wall clock with its peak
   RSS read from ``wait4``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"


def build_catalog(out: Path, copies: int) -> Path:
    """``copies`` x the sample catalog with new ids and distinct names."""
    products = pd.read_parquet(SAMPLE / "products.parquet")
    step = int(pd.to_numeric(products["product_id"]).max()) + 1
    parts = []
    for k in range(copies):
        part = products.copy()
        part["product_id"] = pd.to_numeric(part["product_id"]) + k * step
        if k:
            part["title"] = part["title"].astype(str) + f" series {k}"
        parts.append(part)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "catalog.parquet"
    pd.concat(parts, ignore_index=True).to_parquet(path, index=False)
    return path


def run(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """``(seconds, peak RSS in GiB)`` of one child process; raises when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--sessions", type=int, default=40000)
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_export"))
    args = parser.parse_args()
    work = Path(args.work).resolve()
    ltr = [sys.executable, "-m", "ltr.cli"]
    log_dir = work / f"log_{args.copies}x_{args.queries}_{args.sessions}"
    if not (log_dir / "impressions.parquet").exists():
        catalog = build_catalog(work / f"catalog_{args.copies}x", args.copies)
        t, rss = run([*ltr, "--quiet", "simulate", "--catalog", str(catalog),
                      "--synthetic-queries", str(args.queries), "--text-model", "none",
                      "--set", f"n_sessions={args.sessions}", "--out", str(log_dir)])
        print(f"simulated the log in {t:.0f}s", flush=True)
    n_products = len(pd.read_parquet(log_dir / "products.parquet"))
    n_impressions = len(pd.read_parquet(log_dir / "impressions.parquet", columns=["query"]))

    cfg = yaml.safe_load((ROOT / "configs" / "benchmark.yaml").read_text())
    data_cfg = {**cfg["data"], "data_dir": str(log_dir), "folds": 0,
                "text": {**cfg["data"]["text"], "cache_dir": str(ROOT / ".cache" / "ltr-text"),
                         "progress": False}}
    model = work / "model"
    config = work / "data.yaml"
    config.write_text(yaml.safe_dump({"data": data_cfg}))
    if not (model / "ranker.json").exists():
        code = ("import sys, yaml; from ltr.training.datamodule import LtrDataModule; "
                "from ltr.rankers.base import make_ranker; "
                "d = LtrDataModule(**yaml.safe_load(open(sys.argv[1]))['data']).prepared; "
                "make_ranker('mmoe', {'max_epochs': 1}).fit(d).save(sys.argv[2])")
        t, rss = run([sys.executable, "-c", code, str(config), str(model)])
        print(f"prepared and fitted the MMoE in {t:.0f}s (peak {rss:.1f} GiB)", flush=True)

    elsewhere = Path(tempfile.mkdtemp(prefix="ltr-export-cwd-"))  # not the project folder
    out = work / "package"
    first = run([*ltr, "--quiet", "export", "--checkpoint", str(model), "--out", str(out),
                 "--overwrite"], cwd=elsewhere)
    pipeline = run([*ltr, "--quiet", "export", "--checkpoint", str(model), "--out", str(out),
                    "--overwrite"], cwd=elsewhere)
    again = run([*ltr, "--quiet", "export", "--checkpoint", str(model), "--out", str(out),
                 "--overwrite", "--config", str(config)], cwd=elsewhere)
    shutil.rmtree(elsewhere, ignore_errors=True)
    print(f"\ncatalog {n_products:,} products, log {n_impressions:,} impressions "
          f"({args.queries} synthetic queries, {args.sessions:,} sessions); MMoE with text")
    print("| export | seconds | peak RSS (GiB) |")
    print("|---|---|---|")
    print(f"| first export (encodes the catalog products training never saw) | "
          f"{first[0]:.1f} | {first[1]:.2f} |")
    print(f"| from the fitted pipeline (default) | {pipeline[0]:.1f} | {pipeline[1]:.2f} |")
    print(f"| preparing the data again (`--config`, as before) | {again[0]:.1f} | "
          f"{again[1]:.2f} |")
    print(f"ratio (prepare again / pipeline): time {again[0] / pipeline[0]:.1f}x, "
          f"memory {again[1] / pipeline[1]:.1f}x")


if __name__ == "__main__":
    main()
