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
   process, started from another working directory, timed by wall clock (and CPU time,
   steadier on a shared machine) with its peak RSS read from ``wait4``: the largest
   resident set of the process and of any child it waited for (export starts none, so
   this is its whole footprint). The default export runs ``--repeat`` times: the median
   time and the largest peak are reported, with the range.

    python scripts/bench_export.py --repeat 5 --no-config   # only the default export
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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


def run(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float]:
    """``(seconds, peak RSS in GiB, CPU seconds)`` of one child process; raises when it
    fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    # ru_maxrss is in KiB on Linux
    return seconds, usage.ru_maxrss / 2**20, usage.ru_utime + usage.ru_stime


def row(name: str, runs: list[tuple[float, float, float]]) -> str:
    """A table row: median seconds and CPU seconds, largest peak (GiB and GB), with the
    range when there are several runs."""
    secs = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    peak = max(r[1] for r in runs)
    spread = "1" if len(runs) == 1 else (
        f"{len(runs)}: {min(r[0] for r in runs):.1f}-{max(r[0] for r in runs):.1f} s, "
        f"{min(r[1] for r in runs):.3f}-{peak:.3f} GiB")
    return (f"| {name} | {secs:.1f} | {cpu:.1f} | {peak:.2f} ({peak * 2**30 / 1e9:.2f} GB) "
            f"| {spread} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--sessions", type=int, default=40000)
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_export"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the default export (median time, largest peak)")
    parser.add_argument("--no-config", action="store_true",
                        help="leave out the export that prepares the data again")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    ltr = [sys.executable, "-m", "ltr.cli"]
    log_dir = work / f"log_{args.copies}x_{args.queries}_{args.sessions}"
    if not (log_dir / "impressions.parquet").exists():
        catalog = build_catalog(work / f"catalog_{args.copies}x", args.copies)
        t, rss, _ = run([*ltr, "--quiet", "simulate", "--catalog", str(catalog),
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
        t, rss, _ = run([sys.executable, "-c", code, str(config), str(model)])
        print(f"prepared and fitted the MMoE in {t:.0f}s (peak {rss:.1f} GiB)", flush=True)

    elsewhere = Path(tempfile.mkdtemp(prefix="ltr-export-cwd-"))  # not the project folder
    out = work / "package"
    first = run([*ltr, "--quiet", "export", "--checkpoint", str(model), "--out", str(out),
                 "--overwrite"], cwd=elsewhere)
    pipeline = [run([*ltr, "--quiet", "export", "--checkpoint", str(model), "--out",
                     str(out), "--overwrite"], cwd=elsewhere)
                for _ in range(max(1, args.repeat))]
    again = None if args.no_config else run(
        [*ltr, "--quiet", "export", "--checkpoint", str(model), "--out", str(out),
         "--overwrite", "--config", str(config)], cwd=elsewhere)
    shutil.rmtree(elsewhere, ignore_errors=True)
    print(f"\ncatalog {n_products:,} products, log {n_impressions:,} impressions "
          f"({args.queries} synthetic queries, {args.sessions:,} sessions); MMoE with text")
    print("| export | seconds | CPU seconds | peak RSS GiB (GB) | runs |")
    print("|---|---|---|---|---|")
    print(row("first export (encodes the catalog products training never saw)", [first]))
    print(row("from the fitted pipeline (default)", pipeline))
    if again is not None:
        print(row("preparing the data again (`--config`, as before)", [again]))
        secs, peak = statistics.median(r[0] for r in pipeline), max(r[1] for r in pipeline)
        print(f"ratio (prepare again / pipeline): time {again[0] / secs:.1f}x, "
              f"memory {again[1] / peak:.1f}x")


if __name__ == "__main__":
    main()
