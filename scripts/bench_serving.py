"""Latency and throughput of model packages (the README's serving figures).

    python scripts/bench_serving.py                      # trains + exports both packages
    python scripts/bench_serving.py --mmoe runs/packages/mmoe --mmoe-tuned runs/packages/tuned \
        --xgboost runs/packages/xgboost

Without package folders it fits the MMoE and XGBoost of ``configs/benchmark.yaml`` (fold
0 of the bundled sample) and an MMoE that fine-tunes its query tower's top layer
(``mmoe_tuned``: every unseen query goes through the frozen and the tuned encoder, one ONNX
pass over the shared bottom layers), and exports them under ``runs/serving/``. Then, for each
package, it ranks one request of ``--candidates`` catalog products:

* ``cold``: a query the package has never seen (encoded on the fly: query encoding
  included), a fresh query every request;
* ``warm``: a query of the training data (precomputed embedding);

single caller with torch using 1 and 2 threads, then ``--callers`` concurrent callers
(one torch thread each) for throughput. It also times the query encoder alone, and a
randomly initialised encoder of TinyBERT-4L-312D's shape (latency depends on the shape,
not on the weights) for comparison, each in PyTorch and in ONNX Runtime (what a package
uses for unseen texts when it holds an ONNX encoder). Figures are medians and 99th percentiles over
``--requests`` requests after a warm-up, all measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def build_packages(out: Path) -> dict[str, Path]:
    import yaml

    from ltr.rankers.base import make_ranker
    from ltr.serving import export_package
    from ltr.training.datamodule import LtrDataModule

    cfg = yaml.safe_load((ROOT / "configs" / "benchmark.yaml").read_text())
    data = LtrDataModule(**cfg["data"]).prepared
    params = {m["name"]: m.get("params") or {} for m in cfg["models"]}
    params["mmoe_tuned"] = {**(params.get("mmoe") or {}), "trainable_layers": 1,
                            "max_epochs": 2}
    paths = {}
    for name in ("mmoe", "mmoe_tuned", "xgboost"):
        t0 = time.perf_counter()
        kind = "mmoe" if name == "mmoe_tuned" else name
        ranker = make_ranker(kind, params.get(name)).fit(data)
        saved = ranker.save(out / "models" / name)
        paths[name] = export_package(saved, out / name, overwrite=True)
        print(f"   {name}: fitted and exported in {time.perf_counter() - t0:.0f}s", flush=True)
    return paths


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def fresh_queries(service, n: int, seed: int) -> list[str]:
    """Plausible unseen queries: 2-4 words drawn from catalog titles."""
    rng = np.random.default_rng(seed)
    words = [w for t in service.catalog_texts[:2000] for w in t.lower().split()
             if w.isalpha() and len(w) > 2]
    known = set(service.text.query_index) if service.text else set()
    out: list[str] = []
    while len(out) < n:
        q = " ".join(rng.choice(words, size=int(rng.integers(2, 5))))
        if q not in known and q not in out:
            out.append(q)
    return out


def time_requests(service, queries: list[str], products: list, warmup: int = 5) -> list[float]:
    for q in queries[:warmup]:
        service.rank(q, products)
    times = []
    for q in queries[warmup:]:
        t0 = time.perf_counter()
        service.rank(q, products)
        times.append(time.perf_counter() - t0)
    return times


def concurrent(service, queries: list[str], products: list, callers: int) -> tuple[float, list]:
    """``(requests per second, latencies)`` with ``callers`` threads sharing ``queries``."""
    lock = threading.Lock()
    todo = iter(queries)
    times: list[float] = []

    def worker() -> None:
        while True:
            with lock:
                q = next(todo, None)
            if q is None:
                return
            t0 = time.perf_counter()
            service.rank(q, products)
            with lock:
                times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(callers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(times) / (time.perf_counter() - t0), times


def encoder_only(n: int) -> dict[str, float]:
    """p50 ms of the service's encoding call on one short query, PyTorch and ONNX Runtime,
    for the packaged all-MiniLM-L6-v2 and a randomly initialised TinyBERT-4L-312D shape."""
    import tempfile

    from transformers import BertConfig, BertModel

    from ltr.serving.onnx_encoder import OnnxEncoder, export_onnx, onnx_available
    from ltr.serving.text import PackagedText
    from ltr.text import TextEncoder

    out = {}
    mini = TextEncoder.from_pretrained(progress=False)
    shape = BertConfig(vocab_size=30522, hidden_size=312, num_hidden_layers=4,
                       num_attention_heads=12, intermediate_size=1200)
    tiny = TextEncoder(BertModel(shape).eval(), mini.tokenizer, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        for name, enc in (("all-MiniLM-L6-v2 (6x384)", mini),
                          ("TinyBERT-4L-312D shape", tiny)):
            runtimes = [("PyTorch", None)]
            if onnx_available():
                path = Path(tmp) / f"{len(out)}.onnx"
                export_onnx(enc, path)
                runtimes.append(("ONNX Runtime", OnnxEncoder(path)))
            for runtime, onnx in runtimes:
                text = PackagedText(enc, [], np.zeros((0, enc.dim), np.float32), 0, onnx)
                times = []
                for i in range(n):
                    t0 = time.perf_counter()
                    text.encode([f"modern grey sofa {i}"])  # the service's encoding call
                    times.append(time.perf_counter() - t0)
                out[f"{name}, {runtime}"] = percentiles(times[5:])[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mmoe", type=Path)
    ap.add_argument("--mmoe-tuned", type=Path)
    ap.add_argument("--xgboost", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "serving")
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--callers", type=int, default=8)
    args = ap.parse_args()

    import torch

    from ltr.serving import RankingService

    paths = {"mmoe": args.mmoe, "mmoe_tuned": args.mmoe_tuned, "xgboost": args.xgboost}
    if not all(paths.values()):
        print("== fitting and exporting the packages", flush=True)
        torch.set_num_threads(1)
        paths = build_packages(args.out)
    rows = []
    for name, path in paths.items():
        service = RankingService(path)
        rng = np.random.default_rng(0)
        ids = service.catalog.columns["product_id"]
        products = [ids[i] for i in rng.choice(len(ids), args.candidates, replace=False)]
        known = list(service.text.query_index) if service.text else ["sofa"]
        n = args.requests + 5
        for threads in (1, 2):
            service.set_threads(threads)
            cold = time_requests(service, fresh_queries(service, n, threads), products)
            warm = time_requests(service, [known[i % len(known)] for i in range(n)], products)
            rows.append((name, f"1 caller, {threads} thread(s)", *percentiles(cold),
                         *percentiles(warm), 1.0 / statistics.mean(cold),
                         1.0 / statistics.mean(warm)))
        service.set_threads(1)
        qps, times = concurrent(service, fresh_queries(service, 4 * n, 7), products,
                                args.callers)
        qps_warm, warm = concurrent(service, [known[i % len(known)] for i in range(4 * n)],
                                    products, args.callers)
        rows.append((name, f"{args.callers} callers, 1 thread each", *percentiles(times),
                     *percentiles(warm), qps, qps_warm))
        print(f"   {name}: {service.text.encoded if service.text else 0} texts encoded",
              flush=True)
    print(f"\nRanking {args.candidates} catalog products per request "
          f"({args.requests} requests per cell; cold = unseen query, encoding included)\n")
    print("| package | setting | cold p50 ms | cold p99 ms | warm p50 ms | warm p99 ms | "
          "requests/s cold | requests/s warm |")
    print("|---|---|---|---|---|---|---|---|")
    for name, setting, c50, c99, w50, w99, qps, qps_w in rows:
        print(f"| {name} | {setting} | {c50:.1f} | {c99:.1f} | {w50:.1f} | {w99:.1f} | "
              f"{qps:.0f} | {qps_w:.0f} |")
    torch.set_num_threads(1)
    print("\nQuery encoder alone, one short query, 1 torch thread (p50 ms):")
    for name, ms in encoder_only(60).items():
        print(f"  {name}: {ms:.1f}")


if __name__ == "__main__":
    main()
