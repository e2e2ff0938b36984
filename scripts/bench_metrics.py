"""Time NDCG@10 over 8,000 queries x 40 items on the CPU.

Prints the median of several runs (after a warm-up) for NumPy and torch inputs; the target
is at most 50 ms. If torchmetrics is installed, also times its
``retrieval_normalized_dcg`` looped over the queries (the way it has to be called on
ragged lists), once, in the same run, for the ratio.

Usage::

    .venv/bin/python scripts/bench_metrics.py [--queries 8000] [--items 40] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

TARGET_MS = 50.0


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=8000)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-torchmetrics", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from ltr.metrics import ndcg

    rng = np.random.default_rng(args.seed)
    shape = (args.queries, args.items)
    scores = rng.normal(size=shape).astype(np.float32)
    labels = rng.choice(5, size=shape, p=[0.5, 0.2, 0.15, 0.1, 0.05]).astype(np.float32)
    mask = np.ones(shape, dtype=bool)
    t_scores, t_labels, t_mask = map(torch.from_numpy, (scores, labels, mask))

    print(f"NDCG@10 over {args.queries} queries x {args.items} items, median of {args.repeat}")
    print(f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    ms_np = _median_ms(lambda: ndcg(scores, labels, mask, k=10), args.repeat)
    ms_t = _median_ms(lambda: ndcg(t_scores, t_labels, t_mask, k=10), args.repeat)
    value = ndcg(scores, labels, mask, k=10).mean
    print(f"  ltr.metrics.ndcg, numpy input : {ms_np:8.1f} ms   (NDCG@10 = {value:.4f})")
    print(f"  ltr.metrics.ndcg, torch input : {ms_t:8.1f} ms")
    ok = max(ms_np, ms_t) <= TARGET_MS
    print(f"  target <= {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")

    if not args.skip_torchmetrics:
        try:
            from torchmetrics.functional.retrieval import retrieval_normalized_dcg
        except ImportError:
            print("  torchmetrics not installed: skipping the comparison")
        else:
            p = torch.from_numpy(rng.normal(size=shape))  # continuous: no ties to disagree on
            y = t_labels.long()
            t0 = time.perf_counter()
            tm = torch.stack(
                [retrieval_normalized_dcg(p[q], y[q], top_k=10) for q in range(args.queries)]
            )
            ms_tm = (time.perf_counter() - t0) * 1000.0
            ours = ndcg(p, y, k=10, gain="linear", exclude_zero_ideal=False).values
            diff = float(np.abs(tm.numpy() - ours).max())
            print(f"  torchmetrics retrieval_normalized_dcg, looped over queries (1 run): "
                  f"{ms_tm:8.1f} ms  -> {ms_tm / ms_t:.0f}x the torch-input time")
            print(f"  agreement with torchmetrics (linear gain, no ties): max |diff| = {diff:.1e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
