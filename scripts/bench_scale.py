"""Scale benchmark: simulate -> label -> prepare -> one training epoch, per log size.

Run: python scripts/bench_scale.py [--impressions 1000000 5000000 20000000]
     [--steps simulate labels_pandas labels_duckdb prepare train_mmoe train_xgboost]
     [--json PATH] [--max-mb 12000] [--max-step-s S] [--memory-limit 2GB] [--work DIR]
     python scripts/bench_scale.py --engines PARQUET   # DuckDB vs Polars on one log

Steps, each in a fresh child process so that its peak RSS (``ru_maxrss``, which includes
the interpreter and the imported libraries) is its own:

``simulate``
    ``ltr simulate`` over the sample catalog and its judgements with
    configs/simulate_wands.yaml and ``n_sessions = N / 20`` (20 products a list), written
    as Parquet.
``labels_pandas`` / ``labels_duckdb``
    ``ltr label`` on that log (configs/labels/wands.yaml settings, the MiniLM text cache
    of .cache/ltr-text) with ``engine: pandas`` (the log loaded whole) and ``engine:
    duckdb`` (checked and aggregated in SQL, ``memory_limit`` from ``--memory-limit``);
    reports included.
``prepare``
    ``LtrDataModule(**data).prepared`` with the data settings of configs/mmoe.yaml (pandas,
    as today): the training lists, saved for the two training steps.
``prepare_stream``
    the same with ``data.stream_dir`` and ``data.engine: duckdb`` (``memory_limit`` from
    ``--memory-limit``): the log is checked and queried in SQL, only aggregates,
    sessions and one chunk of lists at a time reach pandas; the training rows are joined
    a chunk of whole lists at a time and written as Parquet row groups (what training at
    scale reads), the validation and test lists built chunk by chunk.
``train_mmoe``
    one epoch of the MMoE of configs/mmoe.yaml over the training lists (forward, losses,
    backward, AdamW step per batch; no validation).
``train_xgboost``
    XGBoost LambdaMART on the same lists, 10 boosting rounds (each a pass over the rows),
    no early stopping.

Memory guard: a child whose RSS passes ``--max-mb`` is killed and reported; a step whose
peak, extrapolated from smaller sizes of the same run (affine through the two largest;
from one size linearly, skipped only past twice the cap), would pass it is skipped
with the reason printed (e.g. pandas preparation at 20M: ~1.7 KB per impression); with
``--max-step-s`` the same for the time.
``--json PATH`` writes ``{"<N>": {"<step>": {"seconds": s, "peak_mb": m}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"
STEPS = ("simulate", "labels_pandas", "labels_duckdb", "prepare", "prepare_stream",
         "train_mmoe", "train_xgboost")
TEXT = {"model_name": "all-MiniLM-L6-v2", "product_fields": ["product_class"],
        "cache_dir": str(ROOT / ".cache" / "ltr-text"), "progress": False}


# ---------------------------------------------------------------------------- children
def _data_settings(log: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "mmoe.yaml"))["data"]
    data["data_dir"] = str(log)
    data["text"] = {**data["text"], "cache_dir": TEXT["cache_dir"], "progress": False}
    return data


def step_simulate(work: Path, n: int) -> dict[str, Any]:
    from ltr.cli import main as ltr

    out = work / "log"
    if out.exists():
        shutil.rmtree(out)
    rc = ltr(["--quiet", "simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--judgements", str(SAMPLE / "judgements.parquet"),
              "--config", str(ROOT / "configs" / "simulate_wands.yaml"),
              "--set", f"n_sessions={n // 20}", "--out", str(out)])
    shutil.copy(SAMPLE / "judgements.parquet", out / "judgements.parquet")
    return {"rc": rc}


def step_labels(work: Path, engine: str, memory_limit: str) -> dict[str, Any]:
    import yaml

    from ltr.labels.run import label_run

    labels = yaml.safe_load((ROOT / "configs" / "labels" / "wands.yaml").read_text())
    out = work / f"labels_{engine}"
    if out.exists():
        shutil.rmtree(out)
    raw = {**labels, "data": str(work / "log"), "out": str(out),
           "ground_truth": str(work / "log" / "ground_truth"), "text": TEXT,
           "engine": engine, "memory_limit": memory_limit}
    raw.pop("window", None)
    summary = label_run(raw)
    return {"summary": summary.splitlines()[0]}


def step_prepare(work: Path) -> dict[str, Any]:
    from ltr.training.datamodule import LtrDataModule

    dm = LtrDataModule(**_data_settings(work / "log"))
    prepared = dm.prepared
    prepared.encoder = None  # the frozen embeddings are in the prepared data
    with open(work / "prepared.pkl", "wb") as fh:
        pickle.dump(prepared, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"train_lists": int(len(prepared.train.mask)) if prepared.train is not None else 0}


def step_prepare_stream(work: Path, memory_limit: str) -> dict[str, Any]:
    from ltr.training.datamodule import LtrDataModule

    stream = work / "stream"
    if stream.exists():
        shutil.rmtree(stream)
    prepared = LtrDataModule(**_data_settings(work / "log"), stream_dir=str(stream),
                             engine="duckdb", memory_limit=memory_limit).prepared
    import pyarrow.parquet as pq

    return {"train_row_groups": pq.ParquetFile(prepared.train_stream.path).num_row_groups}


def _load_prepared(work: Path):
    from ltr.training.datamodule import LtrDataModule

    with open(work / "prepared.pkl", "rb") as fh:
        prepared = pickle.load(fh)
    data = _data_settings(work / "log")
    data.pop("data_dir")
    return LtrDataModule.from_prepared(prepared, **{k: v for k, v in data.items()
                                                    if k != "tasks"})


def step_train_mmoe(work: Path) -> dict[str, Any]:
    import torch
    from omegaconf import OmegaConf

    from ltr.training.module import LtrModule

    torch.manual_seed(0)
    dm = _load_prepared(work)
    model_cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "mmoe.yaml"))["model"]
    model_cfg["tasks"] = dm.tasks
    model = LtrModule(feature_dims=dm.feature_dims, **model_cfg)
    if model.use_text:
        model.attach_text(dm.text_branch(0))
    opt = model.configure_optimizers()
    opt = opt[0][0] if isinstance(opt, tuple) else opt
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    model.train()
    batches = rows = 0
    for batch in dm.train_dataloader():
        out = model(batch)
        loss = model.weighting(model._losses(batch, out))
        opt.zero_grad()
        loss.backward()
        opt.step()
        batches += 1
        rows += int(batch["mask"].sum())
    return {"batches": batches, "rows": rows}


def step_train_xgboost(work: Path) -> dict[str, Any]:
    from ltr.rankers.xgboost import XGBoostRanker

    dm = _load_prepared(work)
    ranker = XGBoostRanker(n_estimators=10, early_stopping_rounds=None)
    ranker.fit(dm.prepared)
    return {"rounds": 10}


def child(step: str, work: Path, n: int, memory_limit: str) -> None:
    t0 = time.perf_counter()
    if step == "simulate":
        extra = step_simulate(work, n)
    elif step.startswith("labels_"):
        extra = step_labels(work, step.removeprefix("labels_"), memory_limit)
    elif step == "prepare":
        extra = step_prepare(work)
    elif step == "prepare_stream":
        extra = step_prepare_stream(work, memory_limit)
    elif step == "train_mmoe":
        extra = step_train_mmoe(work)
    elif step == "train_xgboost":
        extra = step_train_xgboost(work)
    else:
        raise SystemExit(f"unknown step {step}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"seconds": seconds, "peak_mb": peak, **extra}), flush=True)


# ---------------------------------------------------------------------------- parent
def run_step(step: str, work: Path, n: int, max_mb: float, memory_limit: str
             ) -> dict[str, Any]:
    """Run one step in a child; kill it if its RSS passes ``max_mb``."""
    import psutil

    log = work / f"{step}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, __file__, "--child", step, "--work", str(work),
                                 "--impressions", str(n), "--memory-limit", memory_limit],
                                stdout=fh, stderr=subprocess.STDOUT,
                                cwd=ROOT)
        ps, killed = psutil.Process(proc.pid), False
        while proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
            except psutil.Error:
                rss = 0
            if rss > max_mb * 2**20:
                proc.kill()
                killed = True
            time.sleep(0.2)
    text = log.read_text()
    if killed:
        return {"error": f"killed: RSS passed --max-mb {max_mb:.0f}"}
    for line in text.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = " | ".join(text.strip().splitlines()[-3:])
    return {"error": f"exit {proc.returncode}: {tail[-300:]}"}


def skip_reason(step: str, n: int, results: dict[int, dict[str, Any]], max_mb: float,
                done: set[str], max_s: float | None = None) -> str | None:
    needs = {"labels_pandas": "simulate", "labels_duckdb": "simulate", "prepare": "simulate", "prepare_stream": "simulate",
             "train_mmoe": "prepare", "train_xgboost": "prepare"}
    if step in needs and needs[step] not in done:
        return f"needs {needs[step]}, which did not complete at this size"
    smaller = [m for m in sorted(results) if m < n and "peak_mb" in results[m].get(step, {})]
    if smaller:
        m = smaller[-1]
        peak, seconds = results[m][step]["peak_mb"], results[m][step]["seconds"]
        if len(smaller) > 1:  # affine through the two largest sizes: fixed cost + slope
            k = smaller[-2]
            slope = (peak - results[k][step]["peak_mb"]) / (m - k)
            estimate, how = peak + max(slope, 0.0) * (n - m), f"from {k:,} and {m:,}"
            limit = max_mb
        else:  # one size: linear from 0 over-states (fixed costs), so skip only at 2x
            estimate, how = peak * n / m, f"{peak:.0f} MB at {m:,} x {n / m:g}"
            limit = 2 * max_mb
        if estimate > limit:
            return (f"estimated peak {estimate / 1024:.1f} GB ({how}) > "
                    f"{limit / 1024:.1f} GB (--max-mb {max_mb:.0f}{', x2' if limit > max_mb else ''})")
        if max_s is not None and seconds * n / m > max_s:
            return (f"estimated {seconds * n / m:.0f} s ({seconds:.0f} s at {m:,} "
                    f"x {n / m:g}) > --max-step-s {max_s:.0f}")
    return None


def table(results: dict[int, dict[str, Any]]) -> str:
    lines = ["| impressions | step | seconds | peak RSS MB | us / impression | "
             "KB / impression |", "|---|---|---|---|---|---|"]
    for n, steps in results.items():
        for step, r in steps.items():
            if "seconds" in r:
                lines.append(f"| {n:,} | {step} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} | "
                             f"{1e6 * r['seconds'] / n:.2f} | {1024 * r['peak_mb'] / n:.3f} |")
            else:
                lines.append(f"| {n:,} | {step} | - | - | - | {r.get('skipped') or r['error']}"
                             " |")
    return "\n".join(lines)


def compare_engines(path: str) -> None:
    """DuckDB vs Polars: the label GROUP BY (query, product, position) on one Parquet log,
    each three times in a fresh process; wall time and peak RSS."""
    code = {
        "duckdb": (
            "import duckdb; c = duckdb.connect(); c.execute(\"SET memory_limit='2GB'\"); "
            "df = c.execute(\"SELECT query, product_id, position, COUNT(*) AS n, "
            "SUM(clicked) AS c, SUM(added_to_cart) AS a, SUM(purchased) AS p FROM "
            "read_parquet('{p}') GROUP BY query, product_id, position\").fetch_df()"),
        "polars": (
            "import polars as pl; df = (pl.scan_parquet('{p}').group_by(['query', "
            "'product_id', 'position']).agg(pl.len().alias('n'), pl.col('clicked').sum(), "
            "pl.col('added_to_cart').sum(), pl.col('purchased').sum())"
            ".collect(engine='streaming').to_pandas())"),
    }
    wrap = ("import time, resource; t0 = time.perf_counter(); {body}; "
            "print(len(df), time.perf_counter() - t0, "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    print("| engine | cells | seconds (3 runs) | peak RSS MB |\n|---|---|---|---|")
    for name, body in code.items():
        runs = []
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", wrap.format(body=body.format(p=path))],
                                 capture_output=True, text=True, check=True).stdout.split()
            runs.append((int(out[0]), float(out[1]), float(out[2])))
        print(f"| {name} | {runs[0][0]:,} | {', '.join(f'{r[1]:.2f}' for r in runs)} | "
              f"{max(r[2] for r in runs):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, nargs="+",
                        default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    parser.add_argument("--max-mb", type=float, default=12_000,
                        help="kill or skip a step whose RSS passes this (MB)")
    parser.add_argument("--max-step-s", type=float, default=None,
                        help="skip a step whose time, extrapolated from a smaller size, "
                        "passes this (seconds)")
    parser.add_argument("--memory-limit", default="2GB",
                        help="memory_limit of the SQL engine (labels_duckdb, prepare_stream)")
    parser.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--engines", default=None, metavar="PARQUET",
                        help="only compare DuckDB and Polars on this impression file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engines:
        compare_engines(args.engines)
        return
    if args.child:
        child(args.child, Path(args.work), args.impressions[0], args.memory_limit)
        return
    base = Path(args.work or f"/tmp/ltr-bench-scale-{os.getpid()}")
    results: dict[int, dict[str, Any]] = {}
    for n in sorted(args.impressions):
        work = base / str(n)
        work.mkdir(parents=True, exist_ok=True)
        results[n], done = {}, set()
        if "simulate" not in args.steps and (work / "log" / "impressions.parquet").exists():
            done.add("simulate")  # a log of this size from an earlier run with --work
        for step in args.steps:
            reason = skip_reason(step, n, results, args.max_mb, done, args.max_step_s)
            if reason:
                results[n][step] = {"skipped": f"skipped: {reason}"}
                print(f"{n:>11,} {step:14s} skipped: {reason}", flush=True)
                continue
            r = run_step(step, work, n, args.max_mb, args.memory_limit)
            results[n][step] = r
            if "seconds" in r:
                done.add(step)
                print(f"{n:>11,} {step:14s} {r['seconds']:8.1f} s {r['peak_mb']:9,.0f} MB "
                      f"{1e6 * r['seconds'] / n:7.2f} us/imp", flush=True)
            else:
                print(f"{n:>11,} {step:14s} {r['error']}", flush=True)
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(results))
    if args.json:
        out = {str(n): {s: {"seconds": r["seconds"], "peak_mb": r["peak_mb"]}
                        for s, r in steps.items() if "seconds" in r}
               for n, steps in results.items()}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"figures -> {args.json}")


if __name__ == "__main__":
    main()
